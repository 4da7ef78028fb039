"""An information-plane experiment: train the rows (conditions x seeds) of an MLP as one
program and measure the information plane of every layer on both splits at scheduled epochs;
resumable.

Epoch conventions: "epoch e" is the network after e epochs of updates. Loss and accuracy at
epoch e come from the forward pass that starts epoch e (for full batch: the train step's own,
before its update); information at epoch e is measured on that same network. With full batch
the training-set activations are the train step's own; with minibatches they come from a
forward pass of the whole training set. `mi_epochs` may include `epochs` itself: the final
network, measured after the last update.

The pieces live by concern: `rows` (conditions x seeds, labels, input bank), `sharding` (mesh,
groups, padding), `program` (the compiled functions), `checkpoint`, `workdir` (the output folder
and its lock) and `results` (the contract and its one writer). This module holds the config,
the schedule and the run loop, and re-exports the names users import from it.
"""

import dataclasses
import json
import math
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging

from ib_jax import checkpoint, data, errors, estimators, program, results, rows, sharding
from ib_jax import train as train_lib
from ib_jax.checkpoint import Record
from ib_jax.results import GRADIENT_KEYS, epochs_to_fit, versions
from ib_jax.rows import CONDITIONS, LABEL_CONDITIONS, conditions_of, parse_condition, row_labels, seed_labels
from ib_jax.sharding import host, put
from ib_jax.workdir import LOCK, check_output_dir, prepare_output_dir

DATASETS = tuple(data.DATASETS)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run's results. Defaults: the reimplemented project's MNIST
    experiment (full-batch Adam 1e-3, summed loss, 4,000 epochs, MI every 20 epochs, bin 0.5).

    `seed` and `num_seeds`: seeds seed, ..., seed + num_seeds - 1, each its own initialisation
    and batch order. `data_seed` draws the subsets, the 12-bit split and the random labels, so
    all seeds of a run see the same data; with `per_seed_labels`, each seed s randomises the
    training labels with its own generator seeded by (data_seed, s).
    `mi_every` k measures at epochs 0, k, 2k, ... and at `epochs`; `mi_log_points` n > 0
    instead measures at n log-spaced epochs between 1 and `epochs` (rounded down, duplicates
    dropped; n = 400 gives IDNNs' 274 epochs for 8,000), and at 0 and `epochs`.
    `conditions` (empty: the one condition that `random_labels` / `label_corruption` describe)
    makes a sweep: rows = conditions x seeds, condition-major, each row its own seed, training
    labels and inputs, all in one program. A condition is "true", "labels:p" (Zhang's partial
    corruption with probability p), "permuted" (one permutation of the labels) or an input
    corruption from `data.INPUT_CORRUPTIONS`; label randomisations and input corruptions are
    drawn from `data_seed` (from (data_seed, seed) with `per_seed_labels`). A row's
    epochs-to-fit is the first epoch whose training accuracy reaches `fit_threshold`.
    `gradient_stats`: at every scheduled epoch, per layer, the norms of the mean and of the
    standard deviation of the kernel gradients over the epoch's minibatches (full batch:
    `gradient_sub_batches` parts of the batch at the epoch's parameters) and |W|_F; see
    `train.train_epoch`.
    `estimators`: names from `ib_jax.estimators.ESTIMATORS`, all measured at every scheduled
    epoch; the first is the run's main estimator (the unprefixed keys of results.npz). `binning`
    is the "binned" estimator's, `kde_noise_variance` the KDE bounds', `adaptive_bins` the
    adaptive binnings'.
    """

    dataset: str = "mnist"
    train: train_lib.TrainConfig = train_lib.TrainConfig()
    epochs: int = 4000
    mi_every: int = 20
    mi_log_points: int = 0
    binning: estimators.Binning = estimators.Binning(bin_size=0.5)
    estimators: tuple[str, ...] = ("binned",)
    kde_noise_variance: float = 0.1
    adaptive_bins: int = 30
    train_size: int = 0
    test_size: int = 0
    test_fraction: float = 0.2
    evaluate_on_all: bool = False
    random_labels: bool = False
    label_corruption: float = 0.0
    per_seed_labels: bool = False
    conditions: tuple[str, ...] = ()
    fit_threshold: float = 0.99
    gradient_stats: bool = True
    gradient_sub_batches: int = 16
    seed: int = 0
    num_seeds: int = 1
    data_seed: int = 0

    def __post_init__(self):
        data.check_dataset_name(self.dataset)
        if self.epochs < 1:
            raise errors.ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.mi_every < 1:
            raise errors.ConfigError(f"mi_every must be >= 1, got {self.mi_every}")
        if self.mi_log_points < 0:
            raise errors.ConfigError(f"mi_log_points must be >= 0, got {self.mi_log_points}")
        if self.num_seeds < 1:
            raise errors.ConfigError(f"num_seeds must be >= 1, got {self.num_seeds}")
        if self.train_size < 0 or self.test_size < 0:
            raise errors.ConfigError("train_size and test_size must be >= 0 (0 = all)")
        if self.seed < 0 or self.data_seed < 0:
            raise errors.ConfigError("seeds must be >= 0")
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if self.conditions and (self.random_labels or self.label_corruption):
            raise errors.ConfigError("give conditions, or random_labels / label_corruption, not both")
        if len(set(self.conditions)) != len(self.conditions):
            raise errors.ConfigError(f"conditions are listed twice: {', '.join(self.conditions)}")
        parsed = [parse_condition(c) for c in conditions_of(self)]
        if self.per_seed_labels and not any(name in ("labels", "permuted") for name, _ in parsed):
            raise errors.ConfigError("per_seed_labels needs random_labels or label_corruption (a label condition)")
        if self.gradient_sub_batches < 2:
            raise errors.ConfigError(f"gradient_sub_batches must be >= 2, got {self.gradient_sub_batches}")
        if not 0.0 < self.fit_threshold <= 1.0:
            raise errors.ConfigError(f"fit_threshold must be in (0, 1], got {self.fit_threshold}")
        object.__setattr__(self, "estimators", tuple(self.estimators))
        if not self.estimators:
            raise errors.ConfigError("give at least one estimator")
        if len(set(self.estimators)) != len(self.estimators):
            raise errors.ConfigError(f"estimators are listed twice: {', '.join(self.estimators)}")
        try:
            estimators.KDE(self.kde_noise_variance)  # checked even when not measured
            estimators.AdaptiveBinning(self.adaptive_bins)
            measured_estimators(self)
        except ValueError as e:
            raise errors.ConfigError(str(e)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measured_estimators(config: ExperimentConfig) -> tuple[estimators.Estimator, ...]:
    """The estimator objects of `config.estimators`, in order."""
    return tuple(
        estimators.by_name(
            name, binning=config.binning, noise_variance=config.kde_noise_variance, num_bins=config.adaptive_bins
        )
        for name in config.estimators
    )


def estimator_settings(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Each estimator's name, type and parameters, as config.json lists them."""
    return results.build_config(name="", settings={}, estimators=measured_estimators(config), complete=False)[
        "estimators"
    ]


def mi_epochs(config: ExperimentConfig) -> np.ndarray:
    """The sorted epochs at which the information plane is measured."""
    if config.mi_log_points:
        log = np.logspace(0, math.log10(config.epochs), config.mi_log_points).astype(np.int64)
        return np.unique(np.concatenate([[0], log, [config.epochs]]))
    return np.unique(np.concatenate([np.arange(0, config.epochs, config.mi_every), [config.epochs]]))


def load_dataset(config: ExperimentConfig, data_dir: str | os.PathLike | None = None) -> data.Dataset:
    """The run's data with its true labels (the subsets drawn); rows randomise labels and
    corrupt inputs themselves (`rows.build`)."""
    dataset = data.load_named(
        config.dataset,
        data_dir,
        test_fraction=config.test_fraction,
        seed=config.data_seed,
        evaluate_on_all=config.evaluate_on_all,
    )
    return data.prepare(dataset, train_size=config.train_size, test_size=config.test_size, seed=config.data_seed)


class RunStopped(Exception):
    """A run stopped before its end (interrupt or non-finite loss); what it measured is saved."""


class _Run:
    """One run's state between calls: its rows on the devices, the compiled program, the
    training states and the record of what was measured, and how to write them."""

    def __init__(self, config: ExperimentConfig, dataset: data.Dataset, out: pathlib.Path, seeds_per_device: int):
        self.config, self.dataset, self.out = config, dataset, out
        self.schedule = mi_epochs(config)
        num_rows = len(conditions_of(config)) * config.num_seeds
        self.layout = sharding.layout(num_rows, seeds_per_device)
        self.rows = rows.build(config, dataset, self.layout.order)
        self.chosen = measured_estimators(config)
        self.program = program.Program(config, dataset, self.rows, self.layout, self.chosen, self.schedule)
        self.per_row = sharding.put(self.rows.per_row, self.layout.sharding)
        self.config_json = json.dumps(config.to_dict(), sort_keys=True)
        self.writer = jax.process_index() == 0  # one process writes files
        self.states = self.program.init(self.per_row)
        self.record = checkpoint.Record()
        self.checkpoint = out / results.CHECKPOINT
        if self.checkpoint.is_file():
            self.states, self.record = checkpoint.load(
                self.checkpoint, self.config_json, self.states, self.layout.sharding
            )
            logging.info("resuming %s from epoch %d", out, self.record.epoch)

    def results(self, complete: bool) -> dict[str, Any]:
        r, num_layers, record = self.rows.num_rows, len(self.program.widths), self.record
        return results.build_results(
            mi_epochs=self.schedule[: len(record.mi)],
            information=record.information(len(self.chosen), r, num_layers),
            estimators=self.config.estimators,
            metrics=record.metric_curves(r),
            layer_widths=self.program.widths,
            seeds=self.rows.seed,
            h_y_train_rows=self.rows.h_y_train_rows,
            h_y_test=rows.entropy_bits(self.dataset.y_test),
            n_train=len(self.dataset.y_train),
            n_test=len(self.dataset.y_test),
            test_name=self.dataset.test_name,
            complete=complete,
            final_metrics=record.final_metrics,
            conditions=[parse_condition(c) for c in self.rows.condition],
            fit_threshold=self.config.fit_threshold,
            gradients=record.gradients(r, num_layers) if self.config.gradient_stats else None,
        )

    def save(self, complete: bool = False) -> None:
        """Partial results and the checkpoint (or, `complete`, the final results)."""
        if self.writer:
            results.save_results(self.out, self.results(complete))
            if not complete:
                checkpoint.save(self.checkpoint, self.config_json, self.states, self.record)
        elif not complete:
            jax.tree.map(host, self.states)  # every process takes part in the gathers

    def _keep(self, information, gradients) -> None:
        r = self.rows.num_rows
        self.record.mi.append(np.transpose(host(information)[:r], (1, 2, 0, 3)))  # [M, 4, R, L]
        self.record.grads.append(np.moveaxis(host(gradients)[:r], 1, 0))  # [3, R, L]

    def measured_epoch(self) -> list[np.ndarray]:
        """Trains the scheduled epoch `record.epoch`, measuring the entering network."""
        self.states, metrics, information, gradients = self.program.measured_epoch(
            self.states, self.per_row, self.record.epoch
        )
        self._keep(information, gradients)
        return [host(metrics)[: self.rows.num_rows].T]

    def epochs(self, count: int) -> list[np.ndarray]:
        """Trains `count` unmeasured epochs from `record.epoch` in one call."""
        self.states, buffer = self.program.epochs(self.states, self.per_row, self.record.epoch, count)
        return list(np.transpose(host(buffer)[: self.rows.num_rows, :count], (1, 2, 0)))  # count x [4, R]

    def final(self) -> None:
        """Measures the final network (information too, when the last epoch is scheduled)."""
        final_metrics, information, gradients = self.program.final(self.states, self.per_row)
        self.record.final_metrics = host(final_metrics)[: self.rows.num_rows].T
        if self.config.epochs in set(int(e) for e in self.schedule):
            self._keep(information, gradients)

    def next_call(self, seconds_per_epoch: float | None) -> int:
        """How many epochs the next training call runs: up to the next scheduled epoch, in
        calls of about 5 s so that progress shows and a signal is answered soon; the first call
        (one epoch, compilation included) measures the pace."""
        following = [e for e in self.schedule if e > self.record.epoch]
        count = min(following[0] if following else self.config.epochs, self.config.epochs) - self.record.epoch
        return min(count, max(1, int(5.0 / seconds_per_epoch)) if seconds_per_epoch else 1)


def _log_progress(run: _Run, start_time: float, start_epoch: int, now: float) -> None:
    record, epochs = run.record, run.config.epochs
    rate = (now - start_time) / max(record.epoch - start_epoch, 1)
    m = record.metrics[-1]
    logging.info(
        "epoch %d/%d  loss %.4f  acc %.4f  test loss %.4f  test acc %.4f  (mean of %d rows)  ETA %.0f s",
        *(record.epoch, epochs, m[0].mean(), m[1].mean(), m[2].mean(), m[3].mean(), run.rows.num_rows),
        rate * (epochs - record.epoch),
    )


def run(
    config: ExperimentConfig,
    dataset: data.Dataset,
    output_dir: str | os.PathLike,
    *,
    checkpoint_every_s: float = 120.0,
    progress_every_s: float = 5.0,
    should_stop: Callable[[], bool] = lambda: False,
    seeds_per_device: int = 0,
    extra_config: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Runs (or resumes) an experiment in `output_dir`, which `prepare_output_dir` has made.

    `seeds_per_device` bounds how many rows each device runs at once (0 = all): see
    `sharding.Layout`. Writes `checkpoint.msgpack` and partial `results.npz` every
    `checkpoint_every_s` and when `should_stop()` turns true; at the end `results.npz`
    (complete) and `config.json`, and removes the checkpoint. Rerunning with the same config
    resumes from the checkpoint and ends with the same results as an uninterrupted run.

    Raises:
      RunStopped: `should_stop()` turned true, or the training loss became NaN or infinite;
        everything measured so far is saved first.
    """
    out = pathlib.Path(output_dir)
    extra = dict(extra_config or {})
    run_ = _Run(config, dataset, out, seeds_per_device)
    execution = {
        "seeds_per_device": run_.layout.group,
        "padded_seeds": run_.layout.padded,
        "processes": jax.process_count(),
    }
    meta = results.build_config(
        name=extra.pop("name", ""),
        settings=config.to_dict(),
        estimators=run_.chosen,
        complete=False,
        execution=execution,
        **extra,
    )
    if run_.writer:
        results.save_json(out / results.CONFIG, meta)
    schedule, record = set(int(e) for e in run_.schedule), run_.record
    start_time = last_save = last_log = time.monotonic()
    start_epoch, seconds_per_epoch = record.epoch, None
    while record.epoch < config.epochs:
        if record.epoch in schedule:
            new_metrics = run_.measured_epoch()
        else:
            count, call_start = run_.next_call(seconds_per_epoch), time.monotonic()
            new_metrics = run_.epochs(count)
            seconds_per_epoch = (time.monotonic() - call_start) / count
        record.metrics.extend(new_metrics)
        record.epoch += len(new_metrics)
        losses = np.stack(new_metrics)[:, 0]
        if not np.all(np.isfinite(losses)):
            bad = record.epoch - len(new_metrics) + int(np.argmax(~np.isfinite(losses).all(axis=1)))
            run_.save()
            raise RunStopped(f"training loss became non-finite at epoch {bad}; results so far are in {out}")
        now = time.monotonic()
        if now - last_log >= progress_every_s:
            last_log = now
            _log_progress(run_, start_time, start_epoch, now)
        if should_stop():
            run_.save()
            raise RunStopped(f"stopped at epoch {record.epoch}; rerun the same command to resume")
        if now - last_save >= checkpoint_every_s:
            run_.save()
            last_save = time.monotonic()
    run_.final()
    out_results = run_.results(complete=True)
    if run_.writer:
        results.save_results(out, out_results)
        results.save_json(
            out / results.CONFIG, {**meta, "complete": True, "wall_time_s": time.monotonic() - start_time}
        )
        run_.checkpoint.unlink(missing_ok=True)
    return out_results


__all__ = [
    "CONDITIONS",
    "DATASETS",
    "GRADIENT_KEYS",
    "LABEL_CONDITIONS",
    "LOCK",
    "ExperimentConfig",
    "Record",
    "RunStopped",
    "check_output_dir",
    "conditions_of",
    "epochs_to_fit",
    "estimator_settings",
    "host",
    "load_dataset",
    "measured_estimators",
    "mi_epochs",
    "parse_condition",
    "prepare_output_dir",
    "put",
    "row_labels",
    "run",
    "seed_labels",
    "versions",
]
