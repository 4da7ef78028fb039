"""An information-plane experiment: train the rows (conditions x seeds) of a network as one
program and measure the information plane of every layer on both splits at scheduled epochs;
resumable.

Epoch conventions: "epoch e" is the network after e epochs of updates. Loss and accuracy at
epoch e come from the forward pass that starts epoch e (for full batch: the train step's own,
before its update); information at epoch e is measured on that same network. With full batch
the training-set activations are the train step's own; with minibatches they come from a
forward pass of the whole training set. `mi_epochs` may include `epochs` itself: the final
network, measured after the last update.

The pieces live by concern: `config` (ExperimentConfig, its estimators, the schedule), `rows`
(conditions x seeds, labels, input bank), `sharding` (mesh, groups, padding), `program` (the
compiled functions), `checkpoint` (saved states, resuming and continuing), `progress` (the ETA
and the progress line), `workdir` (the output folder and its lock) and `results` (the contract
and its one writer). This module holds the run loop and re-exports the names users import from
it.
"""

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging

from ib_jax import checkpoint, data, errors, models, program, progress, results, rows, sharding
from ib_jax import estimators as estimators_lib
from ib_jax.checkpoint import Record, can_continue, check_continuation, prepare_run_dir
from ib_jax.config import (
    ExperimentConfig,
    check_against_data,
    check_sample_counts,
    estimator_settings,
    measured_estimators,
    mi_epochs,
)
from ib_jax.progress import estimate_eta
from ib_jax.results import GRADIENT_KEYS, epochs_to_fit, versions
from ib_jax.rows import CONDITIONS, LABEL_CONDITIONS, conditions_of, parse_condition, row_labels, seed_labels
from ib_jax.sharding import host, put
from ib_jax.workdir import LOCK, check_output_dir, prepare_output_dir

DATASETS = tuple(data.DATASETS)


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
    check_sample_counts(config, dataset)
    return data.prepare(dataset, train_size=config.train_size, test_size=config.test_size, seed=config.data_seed)


class RunStopped(Exception):
    """A run stopped before its end (interrupt or non-finite loss); what it measured is saved.
    `interrupted`: stopped on request (`should_stop`), not by a non-finite loss."""

    def __init__(self, message: str, interrupted: bool = False):
        super().__init__(message)
        self.interrupted = interrupted


class _Run:
    """One run's state between calls: its rows on the devices, the compiled program, the
    training states and the record of what was measured, and how to write them."""

    def __init__(self, config: ExperimentConfig, dataset: data.Dataset, out: pathlib.Path, seeds_per_device: int):
        self.config, self.dataset, self.out = config, dataset, out
        self.schedule = mi_epochs(config)
        self.measured = set(int(e) for e in self.schedule)
        # Seconds per epoch of the training and the measuring calls, compiling excluded: the ETA,
        # and the length of the next training call.
        self.paces: dict[str, float] = {}
        self._calls = {"train": 0, "measure": 0}
        num_rows = len(conditions_of(config)) * config.num_seeds
        rows_at_once = seeds_per_device or models.rows_at_once(config.train.model, jax.default_backend())
        self.layout = sharding.layout(num_rows, rows_at_once)
        self.rows = rows.build(config, dataset, self.layout.order)
        for split, labels, subset in (
            ("training", dataset.y_train, self.rows.train_subset),
            (dataset.test_name, dataset.y_test, self.rows.test_subset),
        ):
            if config.mi_subset and subset is None:
                logging.warning(
                    "--mi_subset %d is not below the %d samples of the %s split: its information is measured on "
                    "all of them",
                    *(config.mi_subset, len(labels), split),
                )
        self.chosen = measured_estimators(config)
        if "exact" in config.estimators and not config.train.quantize_bits:
            logging.warning(
                "--estimators exact counts distinct rows: without --quantize_bits every row of a float layer is "
                "distinct, so it reads log2 N and H(Y) in every layer (docs/estimators.md#exact)"
            )
        self.program = program.Program(config, dataset, self.rows, self.layout, self.chosen, self.schedule)
        self.program.on_compile = self._compiling
        self.per_row = sharding.put(self.rows.per_row, self.layout.sharding)
        self.config_json = json.dumps(config.to_dict(), sort_keys=True)
        self.writer = jax.process_index() == 0  # one process writes files
        self.record = checkpoint.Record()
        self.checkpoint = out / results.CHECKPOINT
        self.final_state = out / results.FINAL_STATE
        # A checkpoint resumes an unfinished run; without one, a finished run's final state
        # continues it to a larger --epochs (`workdir.prepare_output_dir` let it through). It is
        # read and checked before anything compiles: a bad one is one line, said at once.
        source = next((p for p in (self.checkpoint, self.final_state) if p.is_file()), None)
        saved = None if source is None else checkpoint.read(source, self._check_saved)
        self.states = self.program.init(self.per_row)
        if saved is not None:
            self.states, self.record = checkpoint.restore(saved, self.states, self.layout.sharding)
            verb = "resuming" if source == self.checkpoint else "continuing the finished run in"
            logging.info("%s %s from epoch %d (to %d)", verb, out, self.record.epoch, config.epochs)

    def _check_saved(self, saved_json: str, epoch: int) -> None:
        """ConfigError unless the saved run (its settings, `epoch` trained) can be taken up by
        this one: the same settings, but for a larger --epochs (`check_continuation`)."""
        check_continuation(json.loads(saved_json), self.config, epoch, self.out)

    def config_file(self, extra: dict[str, Any]) -> dict[str, Any]:
        """config.json of this run (not yet complete); `extra` may name the run ("name")."""
        extra = dict(extra)
        execution = {
            "seeds_per_device": self.layout.group,
            "padded_seeds": self.layout.padded,
            "processes": jax.process_count(),
        }
        return results.build_config(
            name=extra.pop("name", ""),
            settings=self.config.to_dict(),
            estimators=self.chosen,
            complete=False,
            execution=execution,
            **extra,
        )

    @staticmethod
    def _measured(labels: np.ndarray, subset: np.ndarray | None) -> np.ndarray:
        return labels if subset is None else labels[subset]

    def results(self, complete: bool) -> dict[str, Any]:
        r, num_layers, record = self.rows.num_rows, len(self.program.widths), self.record
        confidence, convergence = self.config.confidence.active, self.config.convergence != "none"
        channels = estimators_lib.channels.extra_channels(self.chosen, confidence, convergence)
        information = record.information(len(self.chosen) + len(channels), r, num_layers)  # [M + C, 4, R, E, L]
        n_train = len(self._measured(self.dataset.y_train, self.rows.train_subset))
        n_test = len(self._measured(self.dataset.y_test, self.rows.test_subset))
        unpacked = estimators_lib.channels.unpack_channels(
            information, self.chosen, self.config.plane_x, confidence, convergence
        )
        sizes = estimators_lib.confidence.convergence_sizes
        return results.build_results(
            epochs=self.config.epochs,
            num_classes=self.dataset.num_classes,
            mi_epochs=self.schedule[: len(record.mi)],
            **unpacked,
            convergence_sizes=(sizes(n_train), sizes(n_test)) if convergence else None,
            estimators=self.config.estimators,
            metrics=record.metric_curves(r),
            layer_widths=self.program.widths,
            layer_names=self.program.layer_names,
            seeds=self.rows.seed,
            h_y_train_rows=self.rows.h_y_train_rows,
            h_y_test=rows.entropy_bits(self._measured(self.dataset.y_test, self.rows.test_subset)),
            n_train=n_train,
            n_test=n_test,
            test_name=self.dataset.test_name,
            complete=complete,
            final_metrics=record.final_metrics,
            conditions=[parse_condition(c) for c in self.rows.condition],
            fit_threshold=self.config.fit_threshold,
            gradients=record.gradients(r, num_layers) if self.config.gradient_stats else None,
        )

    def save(self, complete: bool = False, state: bool = True) -> None:
        """Partial results and (`state`) the checkpoint; or, `complete`, the final results."""
        if self.writer:
            results.save_results(self.out, self.results(complete))
        if state and not complete:
            self.save_state(self.checkpoint)

    def save_state(self, path: pathlib.Path) -> None:
        """The rows' training states and the record so far, as a checkpoint at `path`."""
        if self.writer:
            checkpoint.save(path, self.config_json, self.states, self.record)
        else:
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
        start = time.monotonic()
        logging.info("measuring the final network (%s)", self._measurement_text())
        final_metrics, information, gradients = self.program.final(self.states, self.per_row)
        self.record.final_metrics = host(final_metrics)[: self.rows.num_rows].T
        if self.config.epochs in self.measured:
            self._keep(information, gradients)
        compiled = self.program.compile_seconds.get("final", 0.0)
        logging.info("compiled in %.1f s; measured in %.2f s", compiled, time.monotonic() - start - compiled)

    def advance(self) -> None:
        """Trains from `record.epoch` to the next call's end (a measured epoch, or a call of
        unmeasured ones) and keeps its metrics. RunStopped, after saving, on a non-finite loss."""
        record = self.record
        call_start = time.monotonic()
        if record.epoch in self.measured:
            kind = "measure"
            if not self._calls[kind]:
                logging.info("measuring epoch %d (%s)", record.epoch, self._measurement_text())
            new_metrics, count = self.measured_epoch(), 1
        else:
            kind, count = "train", self.next_call()
            new_metrics = self.epochs(count)
        compiled = self.program.compile_seconds.get(kind, 0.0) if not self._calls[kind] else 0.0
        self.paces[kind] = (time.monotonic() - call_start - compiled) / count  # compiling excluded
        if not self._calls[kind]:
            logging.info("compiled in %.1f s; %s ran in %.2f s", compiled, self._what(kind), self.paces[kind] * count)
        self._calls[kind] += 1
        record.metrics.extend(new_metrics)
        record.epoch += len(new_metrics)
        losses = np.stack(new_metrics)[:, 0]
        if not np.all(np.isfinite(losses)):
            # A diverged run is finished business: its results are kept (`diverged_epoch` says
            # where), its NaN states are not, and a rerun is refused (`workdir.prepare_output_dir`).
            bad = record.epoch - len(new_metrics) + int(np.argmax(~np.isfinite(losses).all(axis=1)))
            self.save(state=False)
            if self.writer:
                self.checkpoint.unlink(missing_ok=True)
            raise RunStopped(
                f"training loss became non-finite at epoch {bad}; what was measured before is in {self.out} "
                "(--plot_only draws it; --overwrite starts the run again)"
            )

    def _measurement_text(self) -> str:
        names = ", ".join(e.name for e in self.chosen)
        return f"{names} on {len(self.program.widths)} layers x 2 splits of {self.rows.num_rows} row(s)"

    def _what(self, kind: str) -> str:
        return {
            "init": "the rows' initialisation",
            "train": f"the training program (up to {self.program.max_gap} epochs a call)",
            "measure": f"the measured epoch (an epoch with gradient statistics, then {self._measurement_text()})",
            "final": f"the final measurement ({self._measurement_text()})",
        }[kind]

    def _compiling(self, kind: str) -> None:
        """`Program.on_compile`: says what compiles (a long silence otherwise, with several
        estimators: a minute and more)."""
        logging.info("compiling %s ...", self._what(kind))

    def final_seconds(self) -> float | None:
        """About how long the final measurement takes (a measured epoch's pace, and compiling
        as long as the measured epoch did); None while unknown."""
        if "measure" not in self.paces:
            return None
        compiling = 0.0 if self.program.compiled("final") else self.program.compile_seconds.get("measure", 0.0)
        return self.paces["measure"] + compiling

    def next_call(self) -> int:
        """How many epochs the next training call runs: up to the next scheduled epoch, in
        calls of about 5 s so that progress shows and a signal is answered soon; the first call
        (one epoch; its compiling is timed apart) measures the pace."""
        following = [e for e in self.schedule if e > self.record.epoch]
        count = min(following[0] if following else self.config.epochs, self.config.epochs) - self.record.epoch
        pace = self.paces.get("train")
        count = min(count, max(1, int(5.0 / pace)) if pace else 1)
        if jax.process_count() > 1:  # every process must make the same call: process 0's pace decides
            from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

            count = int(multihost_utils.broadcast_one_to_all(np.int32(count)))
        return count


def _log_progress(run: _Run) -> None:
    epochs = run.config.epochs
    final_s = run.final_seconds() if epochs in run.measured else 0.0
    eta = progress.estimate_eta(run.record.epoch, epochs, run.schedule, run.paces, final_s)
    progress.log(run.record.epoch, epochs, run.record.metrics[-1], eta)


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
    keep_final_state: bool = True,
) -> dict[str, np.ndarray]:
    """Runs (or resumes) an experiment in `output_dir`, which `prepare_output_dir` has made.

    `seeds_per_device` bounds how many rows each device runs at once (0 = all): see
    `sharding.Layout`. Writes `checkpoint.msgpack` and partial `results.npz` every
    `checkpoint_every_s` and when `should_stop()` turns true; at the end `results.npz`
    (complete) and `config.json`, and removes the checkpoint. Rerunning with the same config
    resumes from the checkpoint and ends with the same results as an uninterrupted run. With
    `keep_final_state`, the states after the last epoch stay in `final_state.msgpack`: the same
    config with a larger `epochs` continues from them (`check_continuation`) and ends with the
    results of one uninterrupted longer run.

    Raises:
      RunStopped: `should_stop()` turned true (everything measured so far is saved with a
        checkpoint), or the training loss became NaN or infinite (the results so far are saved,
        the checkpoint is removed: a diverged run is not resumed).
    """
    out = pathlib.Path(output_dir)
    run_ = _Run(config, dataset, out, seeds_per_device)
    meta = run_.config_file(extra_config or {})
    if run_.writer:
        results.save_json(out / results.CONFIG, meta)
    record, start_time = run_.record, time.monotonic()
    last_save = last_log = start_time
    while record.epoch < config.epochs:
        run_.advance()
        now = time.monotonic()
        if now - last_log >= progress_every_s:
            last_log = now
            _log_progress(run_)
        if should_stop():
            run_.save()
            raise RunStopped(
                f"epoch {record.epoch} of {config.epochs} saved in {out}; rerun the same command to resume",
                interrupted=True,
            )
        if now - last_save >= checkpoint_every_s:
            run_.save()
            last_save = time.monotonic()
    if keep_final_state:  # the state after the last epoch, before the final measurement: a larger --epochs continues it
        run_.save_state(run_.final_state)
    run_.final()
    out_results = run_.results(complete=True)
    if run_.writer:
        results.save_results(out, out_results)
        results.save_json(
            out / results.CONFIG, {**meta, "complete": True, "wall_time_s": time.monotonic() - start_time}
        )
        run_.checkpoint.unlink(missing_ok=True)
        if not keep_final_state:
            run_.final_state.unlink(missing_ok=True)
    return out_results


__all__ = [
    "errors",
    "CONDITIONS",
    "DATASETS",
    "GRADIENT_KEYS",
    "LABEL_CONDITIONS",
    "LOCK",
    "ExperimentConfig",
    "Record",
    "RunStopped",
    "can_continue",
    "check_against_data",
    "check_continuation",
    "check_sample_counts",
    "check_output_dir",
    "conditions_of",
    "estimate_eta",
    "epochs_to_fit",
    "estimator_settings",
    "host",
    "load_dataset",
    "measured_estimators",
    "mi_epochs",
    "parse_condition",
    "prepare_output_dir",
    "prepare_run_dir",
    "put",
    "row_labels",
    "run",
    "seed_labels",
    "versions",
]
