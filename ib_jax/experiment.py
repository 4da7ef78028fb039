"""An information-plane experiment: train S seeds of an MLP as one program and measure the
information plane of every layer on both splits at scheduled epochs; resumable.

Epoch conventions: "epoch e" is the network after e epochs of updates. Loss and accuracy at
epoch e come from the forward pass that starts epoch e (for full batch: the train step's own,
before its update); information at epoch e is measured on that same network. With full batch
the training-set activations are the train step's own; with minibatches they come from a
forward pass of the whole training set. `mi_epochs` may include `epochs` itself: the final
network, measured after the last update.
"""

import dataclasses
import json
import math
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from ib_jax import data, errors, information, results
from ib_jax import train as train_lib

DATASETS = ("mnist", "tishby")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run's results. Defaults: the reimplemented project's MNIST
    experiment (full-batch Adam 1e-3, summed loss, 4,000 epochs, MI every 20 epochs, bin 0.5).

    `seed` and `num_seeds`: seeds seed, ..., seed + num_seeds - 1, each its own initialisation
    and batch order. `data_seed` draws the subsets, the 12-bit split and the random labels, so
    all seeds of a run see the same data.
    `mi_every` k measures at epochs 0, k, 2k, ... and at `epochs`; `mi_log_points` n > 0
    instead measures at n log-spaced epochs between 1 and `epochs` (rounded down, duplicates
    dropped; n = 400 gives IDNNs' 274 epochs for 8,000) and at 0.
    """

    dataset: str = "mnist"
    train: train_lib.TrainConfig = train_lib.TrainConfig()
    epochs: int = 4000
    mi_every: int = 20
    mi_log_points: int = 0
    binning: information.Binning = information.Binning(bin_size=0.5)
    train_size: int = 0
    test_size: int = 0
    test_fraction: float = 0.2
    evaluate_on_all: bool = False
    random_labels: bool = False
    label_corruption: float = 0.0
    seed: int = 0
    num_seeds: int = 1
    data_seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise errors.ConfigError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mi_epochs(config: ExperimentConfig) -> np.ndarray:
    """The sorted epochs at which the information plane is measured."""
    if config.mi_log_points:
        log = np.logspace(0, math.log10(config.epochs), config.mi_log_points).astype(np.int64)
        return np.unique(np.concatenate([[0], log]))
    return np.unique(np.concatenate([np.arange(0, config.epochs, config.mi_every), [config.epochs]]))


def load_dataset(config: ExperimentConfig, data_dir: str | os.PathLike | None = None) -> data.Dataset:
    if config.dataset == "mnist":
        dataset = data.load_mnist(data_dir)
    else:
        dataset = data.load_tishby(config.test_fraction, config.data_seed, config.evaluate_on_all)
    return data.prepare(
        dataset,
        train_size=config.train_size,
        test_size=config.test_size,
        random_labels=config.random_labels,
        label_corruption=config.label_corruption,
        seed=config.data_seed,
    )


def _entropy_bits(labels: np.ndarray) -> float:
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


class Trainer:
    """The compiled pieces of a run: S seeds vmapped, information measured on the device."""

    def __init__(self, config: ExperimentConfig, dataset: data.Dataset):
        self.config = config
        self.dataset = dataset
        self.num_classes = dataset.num_classes
        self.widths = tuple(train_lib.layer_widths(config.train, self.num_classes))
        self.x, self.y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
        self.x_test, self.y_test = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)
        self.schedule = mi_epochs(config)
        gaps = np.diff(np.concatenate([self.schedule[self.schedule < config.epochs], [config.epochs]]))
        self.max_gap = int(max(1, gaps.max() - 1)) if gaps.size else 1
        seeds = np.arange(config.seed, config.seed + config.num_seeds)
        roots = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        self.init_keys, self.shuffle_keys = jnp.moveaxis(jax.vmap(jax.random.split)(roots), 1, 0)
        self.seeds = seeds
        self.mi_step = jax.jit(self._mi_step, donate_argnums=0)
        self.train_epochs = jax.jit(self._train_epochs, donate_argnums=0)
        self.final_step = jax.jit(self._final_step)

    def init_states(self):
        create = lambda key: train_lib.create_state(key, self.config.train, self.x.shape[1], self.num_classes)  # noqa: E731
        return jax.vmap(create)(self.init_keys)

    def _one_epoch(self, state, key, epoch):
        """One seed's epoch: test metrics of the entering network, then the training epoch."""
        test_metrics, test_acts = train_lib.evaluate(state.apply_fn, state.params, self.x_test, self.y_test)
        new_state, metrics, acts = train_lib.train_epoch(
            state, jax.random.fold_in(key, epoch), self.x, self.y, self.config.train
        )
        if acts is None:  # minibatch: the entering network on the whole training set
            _, acts = train_lib.evaluate(state.apply_fn, state.params, self.x, self.y)
        return new_state, (metrics, test_metrics), (acts, test_acts)

    def _plane(self, train_acts, test_acts):
        kw = {"binning": self.config.binning, "num_classes": self.num_classes}
        i_xt_train, i_ty_train = information.information_plane(train_acts, self.y, **kw)
        i_xt_test, i_ty_test = information.information_plane(test_acts, self.y_test, **kw)
        return i_xt_train, i_ty_train, i_xt_test, i_ty_test

    def _mi_step(self, states, epoch):
        states, metrics, (acts, test_acts) = jax.vmap(self._one_epoch, in_axes=(0, 0, None))(
            states, self.shuffle_keys, epoch
        )
        return states, _flat_metrics(metrics), self._plane(acts, test_acts)

    def _train_epochs(self, states, start, count):
        """`count` epochs from `start` (traced: one compilation for every gap)."""
        s = self.config.num_seeds
        one = jax.vmap(lambda st, k, e: self._one_epoch(st, k, e)[:2], in_axes=(0, 0, None))

        def body(i, carry):
            states, buffer = carry
            states, metrics = one(states, self.shuffle_keys, start + i)
            return states, jax.lax.dynamic_update_slice_in_dim(buffer, _flat_metrics(metrics)[..., None], i, axis=2)

        buffer = jnp.zeros((4, s, self.max_gap), jnp.float32)
        return jax.lax.fori_loop(0, count, body, (states, buffer))

    def _final_step(self, states):
        """The final network: metrics and information on both splits, no update."""

        def one(state):
            metrics, acts = train_lib.evaluate(state.apply_fn, state.params, self.x, self.y)
            test_metrics, test_acts = train_lib.evaluate(state.apply_fn, state.params, self.x_test, self.y_test)
            return (metrics, test_metrics), (acts, test_acts)

        metrics, (acts, test_acts) = jax.vmap(one)(states)
        return _flat_metrics(metrics), self._plane(acts, test_acts)


def _flat_metrics(metrics) -> jax.Array:
    """((train), (test)) metric dicts -> [4, S]: train loss, train acc, test loss, test acc."""
    (m, t) = metrics
    return jnp.stack([m["loss"], m["accuracy"], t["loss"], t["accuracy"]]).astype(jnp.float32)


@dataclasses.dataclass
class _Record:
    """What a run has measured so far (host numpy)."""

    epoch: int = 0  # epochs trained
    metrics: list = dataclasses.field(default_factory=list)  # [4, S] per epoch
    mi: list = dataclasses.field(default_factory=list)  # [4, S, L] per measured epoch
    final_metrics: np.ndarray | None = None


class RunStopped(Exception):
    """A run stopped before its end (interrupt or non-finite loss); what it measured is saved."""


def _to_results(trainer: Trainer, record: _Record, complete: bool) -> dict[str, np.ndarray]:
    s, num_layers = trainer.config.num_seeds, len(trainer.widths)
    mi = np.stack(record.mi, axis=2) if record.mi else np.zeros((4, s, 0, num_layers), np.float32)
    metrics = np.stack(record.metrics, axis=2) if record.metrics else np.zeros((4, s, 0), np.float32)
    out = {
        "mi_epochs": trainer.schedule[: mi.shape[2]],
        "i_xt_train": mi[0], "i_ty_train": mi[1], "i_xt_test": mi[2], "i_ty_test": mi[3],
        "train_loss": metrics[0], "train_accuracy": metrics[1],
        "test_loss": metrics[2], "test_accuracy": metrics[3],
        "layer_widths": np.asarray(trainer.widths),
        "seeds": trainer.seeds,
        "h_y_train": _entropy_bits(trainer.dataset.y_train),
        "h_y_test": _entropy_bits(trainer.dataset.y_test),
        "n_train": len(trainer.dataset.y_train), "n_test": len(trainer.dataset.y_test),
        "test_name": trainer.dataset.test_name,
        "complete": complete,
    }  # fmt: skip
    if record.final_metrics is not None:
        for i, name in enumerate(("train_loss", "train_accuracy", "test_loss", "test_accuracy")):
            out[f"final_{name}"] = record.final_metrics[i]
    return out


def _save_checkpoint(path: pathlib.Path, config_json: str, states, record: _Record) -> None:
    payload = {
        "config": config_json,
        "epoch": record.epoch,
        "states": flax.serialization.to_state_dict(jax.device_get(states)),
        "metrics": np.stack(record.metrics, axis=-1) if record.metrics else np.zeros(0),
        "mi": np.stack(record.mi, axis=2) if record.mi else np.zeros(0),
    }
    results.atomic_write(path, lambda f: f.write(flax.serialization.msgpack_serialize(payload)))


def _load_checkpoint(path: pathlib.Path, config_json: str, template_states):
    try:
        payload = flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # pylint: disable=broad-except  # any decoding failure means corrupt.
        raise errors.DataError(f"{path} is corrupt ({type(e).__name__}); delete it or pass --overwrite") from None
    if payload["config"] != config_json:
        raise errors.ConfigError(
            f"{path.parent} holds a run with different settings; rerun with its settings, another "
            "--output_dir, or --overwrite"
        )
    states = flax.serialization.from_state_dict(template_states, payload["states"])
    record = _Record(epoch=int(payload["epoch"]))
    if payload["metrics"].size:
        record.metrics = list(np.moveaxis(payload["metrics"], -1, 0))
    if payload["mi"].size:
        record.mi = list(np.moveaxis(payload["mi"], 2, 0))
    return jax.device_put(states), record


def versions() -> dict[str, str]:
    import flax  # pylint: disable=g-import-not-at-top
    import optax  # pylint: disable=g-import-not-at-top

    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "device": f"{device.platform}: {device.device_kind} x{jax.device_count()}",
    }


def prepare_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> pathlib.Path:
    """Refuses to touch a finished run unless `overwrite`; with it, removes the old outputs."""
    out = pathlib.Path(output_dir)
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"--output_dir {out} exists and is not a folder")
    finished = (out / results.RESULTS).is_file() and not (out / results.CHECKPOINT).is_file()
    if overwrite:
        for name in (results.RESULTS, results.CONFIG, results.CHECKPOINT):
            (out / name).unlink(missing_ok=True)
        for png in out.glob("*.png"):
            png.unlink()
    elif finished:
        raise errors.ConfigError(f"{out} holds a finished run; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run(
    config: ExperimentConfig,
    dataset: data.Dataset,
    output_dir: str | os.PathLike,
    *,
    checkpoint_every_s: float = 120.0,
    progress_every_s: float = 5.0,
    should_stop: Callable[[], bool] = lambda: False,
    extra_config: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Runs (or resumes) an experiment in `output_dir`, which `prepare_output_dir` has made.

    Writes `checkpoint.msgpack` and partial `results.npz` every `checkpoint_every_s` and when
    `should_stop()` turns true; at the end `results.npz` (complete) and `config.json`, and
    removes the checkpoint. Rerunning with the same config resumes from the checkpoint and
    ends with the same results as an uninterrupted run.

    Raises:
      RunStopped: `should_stop()` turned true, or the training loss became NaN or infinite;
        everything measured so far is saved first.
    """
    out = pathlib.Path(output_dir)
    trainer = Trainer(config, dataset)
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    meta = {"config": config.to_dict(), "versions": versions(), "complete": False, **(extra_config or {})}
    results.save_json(out / results.CONFIG, meta)
    checkpoint = out / results.CHECKPOINT
    states = trainer.init_states()
    record = _Record()
    if checkpoint.is_file():
        states, record = _load_checkpoint(checkpoint, config_json, states)
        logging.info("resuming %s from epoch %d", out, record.epoch)

    def save(complete: bool):
        results.save_results(out, _to_results(trainer, record, complete))
        if not complete:
            _save_checkpoint(checkpoint, config_json, states, record)

    epochs = config.epochs
    schedule = set(int(e) for e in trainer.schedule)
    start_time = last_save = last_log = time.monotonic()
    start_epoch = record.epoch
    while record.epoch < epochs:
        if record.epoch in schedule:
            states, metrics, mi = trainer.mi_step(states, record.epoch)
            record.mi.append(np.asarray(jnp.stack(mi)))
            new_metrics = [np.asarray(metrics)]
        else:
            following = [e for e in trainer.schedule if e > record.epoch]
            count = min(following[0] if following else epochs, epochs) - record.epoch
            states, buffer = trainer.train_epochs(states, record.epoch, count)
            new_metrics = list(np.moveaxis(np.asarray(buffer)[:, :, :count], 2, 0))
        record.metrics.extend(new_metrics)
        record.epoch += len(new_metrics)
        losses = np.stack(new_metrics)[:, 0]
        if not np.all(np.isfinite(losses)):
            bad = record.epoch - len(new_metrics) + int(np.argmax(~np.isfinite(losses).all(axis=1)))
            save(complete=False)
            raise RunStopped(f"training loss became non-finite at epoch {bad}; results so far are in {out}")
        now = time.monotonic()
        if now - last_log >= progress_every_s:
            last_log = now
            rate = (now - start_time) / max(record.epoch - start_epoch, 1)
            m = record.metrics[-1]
            logging.info(
                "epoch %d/%d  loss %.4f  acc %.4f  test loss %.4f  test acc %.4f  (mean of %d seeds)  ETA %.0f s",
                record.epoch, epochs, m[0].mean(), m[1].mean(), m[2].mean(), m[3].mean(), config.num_seeds,
                rate * (epochs - record.epoch),
            )  # fmt: skip
        if should_stop():
            save(complete=False)
            raise RunStopped(f"stopped at epoch {record.epoch}; rerun the same command to resume")
        if now - last_save >= checkpoint_every_s:
            save(complete=False)
            last_save = time.monotonic()
    final_metrics, mi = trainer.final_step(states)
    record.final_metrics = np.asarray(final_metrics)
    if epochs in schedule:
        record.mi.append(np.asarray(jnp.stack(mi)))
    out_results = _to_results(trainer, record, complete=True)
    results.save_results(out, out_results)
    results.save_json(out / results.CONFIG, {**meta, "complete": True, "wall_time_s": time.monotonic() - start_time})
    checkpoint.unlink(missing_ok=True)
    return out_results
