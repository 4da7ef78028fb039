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
import functools
import json
import math
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import flax
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from ib_jax import data, errors, estimators, results
from ib_jax import train as train_lib

DATASETS = ("mnist", "fashion_mnist", "cifar10", "tishby")


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
        if self.dataset.startswith(data.NPZ_PREFIX):
            if not self.dataset[len(data.NPZ_PREFIX) :].strip():
                raise errors.ConfigError("give the file after npz: (--dataset npz:PATH)")
        elif self.dataset not in DATASETS:
            raise errors.ConfigError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)} or "
                                     "npz:PATH")  # fmt: skip
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


LABEL_CONDITIONS = ("true", "labels", "permuted")
CONDITIONS = LABEL_CONDITIONS + data.INPUT_CORRUPTIONS


def parse_condition(text: str) -> tuple[str, float]:
    """ "labels:0.2" -> ("labels", 0.2); "true", "permuted", "gaussian", ... -> (name, 0.0)."""
    name, colon, level = str(text).partition(":")
    if name not in CONDITIONS:
        raise errors.ConfigError(f"unknown condition {text!r}; choose from {', '.join(CONDITIONS)} (labels:p)")
    if name != "labels":
        if colon:
            raise errors.ConfigError(f"condition {name} takes no level, got {text!r}")
        return name, 0.0
    try:
        p = float(level)
    except ValueError:
        raise errors.ConfigError(f"condition labels:p needs a probability p, got {text!r}") from None
    if not 0.0 < p <= 1.0:
        raise errors.ConfigError(f"label corruption must be in (0, 1], got {text!r}")
    return name, p


def conditions_of(config: ExperimentConfig) -> tuple[str, ...]:
    """The run's conditions: `config.conditions`, else the one its label flags describe."""
    if config.conditions:
        return config.conditions
    if config.random_labels:
        return ("permuted",)
    if config.label_corruption:
        return (f"labels:{config.label_corruption}",)
    return ("true",)


def measured_estimators(config: ExperimentConfig) -> tuple[estimators.Estimator, ...]:
    """The estimator objects of `config.estimators`, in order."""
    return tuple(
        estimators.by_name(
            name, binning=config.binning, noise_variance=config.kde_noise_variance, num_bins=config.adaptive_bins
        )
        for name in config.estimators
    )


def estimator_settings(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Each estimator's name and parameters, for config.json."""
    return [{"name": e.name, **dataclasses.asdict(e)} for e in measured_estimators(config)]


def mi_epochs(config: ExperimentConfig) -> np.ndarray:
    """The sorted epochs at which the information plane is measured."""
    if config.mi_log_points:
        log = np.logspace(0, math.log10(config.epochs), config.mi_log_points).astype(np.int64)
        return np.unique(np.concatenate([[0], log, [config.epochs]]))
    return np.unique(np.concatenate([np.arange(0, config.epochs, config.mi_every), [config.epochs]]))


def load_dataset(config: ExperimentConfig, data_dir: str | os.PathLike | None = None) -> data.Dataset:
    """The run's data with its true labels (the subsets drawn); rows randomise labels and
    corrupt inputs themselves (`row_labels`, `Trainer`)."""
    if config.dataset in ("mnist", "fashion_mnist"):
        dataset = data.load_mnist(data_dir, dataset=config.dataset)
    elif config.dataset == "cifar10":
        dataset = data.load_cifar10(data_dir)
    elif config.dataset.startswith(data.NPZ_PREFIX):
        dataset = data.load_npz(config.dataset[len(data.NPZ_PREFIX) :])
    else:
        dataset = data.load_tishby(config.test_fraction, config.data_seed, config.evaluate_on_all)
    return data.prepare(dataset, train_size=config.train_size, test_size=config.test_size, seed=config.data_seed)


def _entropy_bits(labels: np.ndarray) -> float:
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def row_labels(config: ExperimentConfig, dataset: data.Dataset, condition: str, seed: int) -> np.ndarray:
    """The training labels of one row: the dataset's, or randomised as its condition says,
    drawn from data_seed (shared by the seeds), or from (data_seed, seed) with
    `per_seed_labels`."""
    name, p = parse_condition(condition)
    rng_seed = [config.data_seed, seed] if config.per_seed_labels else config.data_seed
    return data.randomize_labels(dataset.y_train, dataset.num_classes, name == "permuted", p, rng_seed)


def seed_labels(config: ExperimentConfig, dataset: data.Dataset, seed: int) -> np.ndarray:
    """The training labels of one seed of a single-condition run."""
    return row_labels(config, dataset, conditions_of(config)[0], seed)


def epochs_to_fit(train_accuracy_RxT: np.ndarray, final_accuracy_R: np.ndarray | None, threshold: float):
    """[R] the first epoch whose training accuracy reaches `threshold` (epoch T for the final
    network), -1 where none does."""
    acc = train_accuracy_RxT
    if final_accuracy_R is not None:
        acc = np.concatenate([acc, np.asarray(final_accuracy_R)[:, None]], axis=1)
    reached = acc >= threshold
    return np.where(reached.any(axis=1), np.argmax(reached, axis=1), -1)


class Trainer:
    """The compiled pieces of a run: rows vmapped in groups, sharded over devices, information
    measured on the device.

    A row is one network: its own seed, training labels and inputs (a pytree `rows` of
    per-row arrays: `seed`, `labels`, `inputs`, the index of the row's inputs in a bank of the
    distinct input variants, which is stored once and shared by every row that uses it). Rows
    are laid out on a 1-D mesh of `devices`; each device runs its block of rows in groups of
    `seeds_per_device` (0 = the whole block at once) one after another, so memory holds one
    group's activations. The row count is padded up to a multiple of devices x group by
    repeating rows from the start, which are run and dropped.
    """

    def __init__(self, config: ExperimentConfig, dataset: data.Dataset, seeds_per_device: int = 0, devices=None):
        self.config = config
        self.dataset = dataset
        self.num_classes = dataset.num_classes
        self.widths = tuple(train_lib.layer_widths(config.train, self.num_classes))
        self.y_test = jnp.asarray(dataset.y_test)
        self.schedule = mi_epochs(config)
        self.estimators = measured_estimators(config)
        gaps = np.diff(np.concatenate([self.schedule[self.schedule < config.epochs], [config.epochs]]))
        self.max_gap = int(max(1, gaps.max() - 1)) if gaps.size else 1

        conditions = conditions_of(config)
        seeds = range(config.seed, config.seed + config.num_seeds)
        self.row_condition = [c for c in conditions for _ in seeds]  # condition-major
        self.row_seed = np.array([s for _ in conditions for s in seeds], np.int64)
        num_rows = len(self.row_seed)
        self.shared_labels = len(conditions) == 1 and not config.per_seed_labels

        devices = list(devices if devices is not None else jax.devices())
        if seeds_per_device < 0:
            raise errors.ConfigError(f"seeds_per_device must be >= 0, got {seeds_per_device}")
        per_device = -(-num_rows // len(devices))
        self.group = min(seeds_per_device, per_device) if seeds_per_device else per_device
        block = len(devices) * self.group
        self.padded = -(-num_rows // block) * block
        order = np.arange(self.padded) % num_rows  # padding repeats rows from the start
        labels = np.stack([row_labels(config, dataset, self.row_condition[r], int(self.row_seed[r])) for r in order])
        self.h_y_train_rows = np.array([_entropy_bits(y) for y in labels[:num_rows]])
        self.h_y_train = float(self.h_y_train_rows.mean())
        kinds = [k for k in data.INPUT_CORRUPTIONS if k in conditions]  # the bank: clean inputs, then these
        variants = [dataset] + [data.corrupt_inputs(dataset, k, config.data_seed) for k in kinds]
        self.x_bank = jnp.asarray(np.stack([v.x_train for v in variants]))
        self.x_test_bank = jnp.asarray(np.stack([v.x_test for v in variants]))
        inputs = np.array([kinds.index(c) + 1 if c in kinds else 0 for c in self.row_condition])
        self.mesh = jax.sharding.Mesh(np.asarray(devices), ("seeds",))
        self.sharding = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec("seeds"))
        rows = {"seed": self.row_seed[order].astype(np.int32), "labels": labels.astype(np.int32),
                "inputs": inputs[order].astype(np.int32)}  # fmt: skip
        self.rows = put(rows, self.sharding)
        self.mi_step = jax.jit(self._sharded(self._mi_group, 2, 1), donate_argnums=0)
        self.train_epochs = jax.jit(self._sharded(self._epochs_group, 2, 2), donate_argnums=0)
        self.final_step = jax.jit(self._sharded(self._final_group, 2, 0))
        self.init_states = jax.jit(self._sharded(self._init_group, 1, 0))

    @property
    def num_rows(self) -> int:
        return len(self.row_seed)

    def _inputs(self, row):
        """The row's training and test inputs, from the bank."""
        if self.x_bank.shape[0] == 1:
            return self.x_bank[0], self.x_test_bank[0]
        return self.x_bank[row["inputs"]], self.x_test_bank[row["inputs"]]

    def _sharded(self, group_fn, num_seeded: int, num_static: int):
        """Wraps `group_fn(*seeded, *static)` (`num_seeded` arguments with a leading [g] seed
        axis, then `num_static` shared ones) to run on [padded, ...] inputs: groups one after
        another on each device, devices in parallel."""

        def local(*args):
            seeded, static = args[:num_seeded], args[num_seeded:]
            n = jax.tree.leaves(seeded)[0].shape[0]
            if n == self.group:
                return group_fn(*seeded, *static)
            split = jax.tree.map(lambda a: a.reshape(n // self.group, self.group, *a.shape[1:]), seeded)
            out = jax.lax.map(lambda xs: group_fn(*xs, *static), split)
            return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

        if self.mesh.size == 1:
            return local
        spec, replicated = jax.sharding.PartitionSpec("seeds"), jax.sharding.PartitionSpec()
        # Every value is per seed (nothing is reduced across devices), so the varying-axis type
        # check, which trips on loop buffers created inside, is not needed.
        in_specs = (spec,) * num_seeded + (replicated,) * num_static
        return jax.shard_map(local, mesh=self.mesh, in_specs=in_specs, out_specs=spec, check_vma=False)

    def _keys(self, seed):
        return jax.random.split(jax.random.key(seed))  # init key, shuffle key

    def _init_group(self, rows):
        init = lambda s: train_lib.create_state(  # noqa: E731
            self._keys(s)[0], self.config.train, self.x_bank.shape[-1], self.num_classes
        )
        return jax.vmap(init)(rows["seed"])

    def _one_epoch(self, state, row, epoch, gradient_stats: bool = False):
        """One row's epoch: test metrics of the entering network, then the training epoch; with
        `gradient_stats`, also the gradient statistics [3, L] (mean norm, std norm, |W|_F)."""
        x, x_test = self._inputs(row)
        test_metrics, test_acts = train_lib.evaluate(state.apply_fn, state.params, x_test, self.y_test)
        key = jax.random.fold_in(self._keys(row["seed"])[1], epoch)
        new_state, metrics, acts = train_lib.train_epoch(
            state, key, x, row["labels"], self.config.train, gradient_stats, self.config.gradient_sub_batches
        )
        if acts is None:  # minibatch: the entering network on the whole training set
            _, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"])
        grads = jnp.stack([metrics.pop(k) for k in GRADIENT_KEYS]) if gradient_stats else None
        return new_state, _flat_metrics((metrics, test_metrics)), (acts, test_acts), grads

    def _plane(self, train_acts, labels_GxN, test_acts):
        """Information of a group's layers by every estimator, [G, M, 4, L]; the estimators
        are batched over rows, epochs and layers, not vmapped."""
        train_labels = labels_GxN[0] if self.shared_labels else labels_GxN
        planes = []
        for estimator in self.estimators:
            kw = {"estimator": estimator, "num_classes": self.num_classes}
            i_xt, i_ty = estimators.information_plane(train_acts, train_labels, **kw)
            i_xt_test, i_ty_test = estimators.information_plane(test_acts, self.y_test, **kw)
            planes.append(jnp.stack([i_xt, i_ty, i_xt_test, i_ty_test], axis=1))  # [G, 4, L]
        return jnp.stack(planes, axis=1)

    def _mi_group(self, states, rows, epoch):
        one = functools.partial(self._one_epoch, gradient_stats=self.config.gradient_stats)
        states, metrics, (acts, test_acts), grads = jax.vmap(one, in_axes=(0, 0, None))(states, rows, epoch)
        if grads is None:
            grads = jnp.zeros((rows["seed"].shape[0], len(GRADIENT_KEYS), len(self.widths)), jnp.float32)
        return states, metrics, self._plane(acts, rows["labels"], test_acts), grads

    def _epochs_group(self, states, rows, start, count):
        """`count` epochs from `start` (both traced: one compilation for every gap); metrics
        [G, max_gap, 4], valid up to `count`."""
        one = jax.vmap(lambda st, r, e: self._one_epoch(st, r, e)[:2], in_axes=(0, 0, None))  # no statistics

        def body(i, carry):
            states, buffer = carry
            states, metrics = one(states, rows, start + i)
            return states, jax.lax.dynamic_update_slice_in_dim(buffer, metrics[:, None], i, axis=1)

        buffer = jnp.zeros((rows["seed"].shape[0], self.max_gap, 4), jnp.float32)
        return jax.lax.fori_loop(0, count, body, (states, buffer))

    def _final_group(self, states, rows):
        """The final network: metrics and information on both splits, no update."""

        def one(state, row):
            x, x_test = self._inputs(row)
            metrics, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"])
            test_metrics, test_acts = train_lib.evaluate(state.apply_fn, state.params, x_test, self.y_test)
            return _flat_metrics((metrics, test_metrics)), (acts, test_acts)

        metrics, (acts, test_acts) = jax.vmap(one)(states, rows)
        # No epoch is trained from the final network: gradient statistics are NaN, |W|_F is its own.
        weights = jax.vmap(lambda st: train_lib.weight_norms(st.params))(states)
        nan = jnp.full_like(weights, jnp.nan)
        return metrics, self._plane(acts, rows["labels"], test_acts), jnp.stack([nan, nan, weights], axis=1)


def put(tree, sharding):
    """Host arrays -> global arrays laid out by `sharding` (works across processes: each
    process supplies the shards of its own devices from its identical host copy)."""

    def one(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    return jax.tree.map(one, tree)


def host(x) -> np.ndarray:
    """A (possibly multi-process) array as a full host numpy array."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _flat_metrics(metrics) -> jax.Array:
    """((train), (test)) metric dicts -> [4]: train loss, train acc, test loss, test acc."""
    (m, t) = metrics
    return jnp.stack([m["loss"], m["accuracy"], t["loss"], t["accuracy"]]).astype(jnp.float32)


@dataclasses.dataclass
class _Record:
    """What a run has measured so far (host numpy)."""

    epoch: int = 0  # epochs trained
    metrics: list = dataclasses.field(default_factory=list)  # [4, S] per epoch
    mi: list = dataclasses.field(default_factory=list)  # [M, 4, S, L] per measured epoch (M estimators)
    grads: list = dataclasses.field(default_factory=list)  # [3, S, L] per measured epoch
    final_metrics: np.ndarray | None = None


class RunStopped(Exception):
    """A run stopped before its end (interrupt or non-finite loss); what it measured is saved."""


GRADIENT_KEYS = ("grad_mean_norm", "grad_std_norm", "weight_norm")


def _to_results(trainer: Trainer, record: _Record, complete: bool) -> dict[str, np.ndarray]:
    s, num_layers, names = trainer.num_rows, len(trainer.widths), trainer.config.estimators
    mi = np.stack(record.mi, axis=3) if record.mi else np.zeros((len(names), 4, s, 0, num_layers), np.float32)
    metrics = np.stack(record.metrics, axis=2) if record.metrics else np.zeros((4, s, 0), np.float32)
    out = {
        "mi_epochs": trainer.schedule[: mi.shape[3]],
        "i_xt_train": mi[0, 0], "i_ty_train": mi[0, 1], "i_xt_test": mi[0, 2], "i_ty_test": mi[0, 3],
        "train_loss": metrics[0], "train_accuracy": metrics[1],
        "test_loss": metrics[2], "test_accuracy": metrics[3],
        "layer_widths": np.asarray(trainer.widths),
        "seeds": trainer.row_seed,
        "seed": trainer.row_seed,
        "condition": np.asarray([parse_condition(c)[0] for c in trainer.row_condition]),
        "corruption": np.asarray([parse_condition(c)[1] for c in trainer.row_condition]),
        "epochs_to_fit": epochs_to_fit(metrics[1], record.final_metrics[1] if record.final_metrics is not None
                                       else None, trainer.config.fit_threshold),
        "h_y_train": trainer.h_y_train,
        "h_y_train_rows": trainer.h_y_train_rows,
        "h_y_test": _entropy_bits(trainer.dataset.y_test),
        "n_train": len(trainer.dataset.y_train), "n_test": len(trainer.dataset.y_test),
        "test_name": trainer.dataset.test_name,
        "complete": complete,
        "estimators": np.asarray(names),
        "fit_threshold": trainer.config.fit_threshold,
        "contract": results.CONTRACT,
    }  # fmt: skip
    for m, name in enumerate(names):
        for i, key in enumerate(results.MI_KEYS):
            out[f"{name}.{key}"] = mi[m, i]
    if trainer.config.gradient_stats:
        grads = np.stack(record.grads, axis=2) if record.grads else np.zeros((3, s, 0, num_layers), np.float32)
        out.update(zip(GRADIENT_KEYS, grads))
    if record.final_metrics is not None:
        for i, name in enumerate(("train_loss", "train_accuracy", "test_loss", "test_accuracy")):
            out[f"final_{name}"] = record.final_metrics[i]
    return out


def _save_checkpoint(path: pathlib.Path, config_json: str, states, record: _Record) -> None:
    payload = {
        "config": config_json,
        "epoch": record.epoch,
        "states": flax.serialization.to_state_dict(jax.tree.map(host, states)),
        "metrics": np.stack(record.metrics, axis=-1) if record.metrics else np.zeros(0),
        "mi": np.stack(record.mi, axis=3) if record.mi else np.zeros(0),
        "grads": np.stack(record.grads, axis=2) if record.grads else np.zeros(0),
    }
    results.atomic_write(path, lambda f: f.write(flax.serialization.msgpack_serialize(payload)))


def _load_checkpoint(path: pathlib.Path, config_json: str, template_states, sharding):
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
        record.mi = list(np.moveaxis(payload["mi"], 3, 0))
    if payload["grads"].size:
        record.grads = list(np.moveaxis(payload["grads"], 2, 0))
    return put(states, sharding), record


def versions() -> dict[str, str]:
    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "device": f"{device.platform}: {device.device_kind} x{jax.device_count()}",
    }


LOCK = ".lock"
_HELD: dict[pathlib.Path, Any] = {}  # output folders this process has locked (open files)


def check_output_dir(output_dir: str | os.PathLike) -> pathlib.Path:
    """Whether `output_dir` can be used, creating nothing: not a file, no file on its path, and
    its nearest existing folder writable. ConfigError otherwise."""
    out = pathlib.Path(output_dir)
    if not str(output_dir).strip():
        raise errors.ConfigError("--output_dir is empty")
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"--output_dir {out} exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise errors.ConfigError(f"--output_dir {out} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise errors.ConfigError(f"--output_dir {out} cannot be written ({existing} is not writable)")
    return out


def _lock(out: pathlib.Path) -> None:
    """Takes an exclusive OS lock (flock) on `out/.lock` for the life of this process: a second
    run on the same folder is refused, naming the process that holds it; the OS releases it when
    that process ends, however it ends."""
    import fcntl  # pylint: disable=g-import-not-at-top  # POSIX only, like the lock itself

    key = out.resolve()
    if key in _HELD:
        return
    handle = open(out / LOCK, "a+")  # noqa: SIM115  # held open on purpose: the lock lives with it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise errors.ConfigError(f"{out} is in use by another run (process {holder}); wait for it or choose "
                                 "another --output_dir") from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[key] = handle


def prepare_output_dir(output_dir: str | os.PathLike, overwrite: bool, lock: bool = True) -> pathlib.Path:
    """Checks the folder (`check_output_dir`), creates it and, with `lock` (the writing process
    of a run; the other processes of a multi-host run pass False), locks it: one run per
    folder. Then refuses to touch a finished run unless `overwrite`; with it, removes the old
    outputs."""
    out = check_output_dir(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.ConfigError(f"--output_dir {out} cannot be created ({e.strerror})") from None
    if lock:
        _lock(out)
    finished = (out / results.RESULTS).is_file() and not (out / results.CHECKPOINT).is_file()
    if overwrite:
        for name in (results.RESULTS, results.CONFIG, results.CHECKPOINT, results.SUMMARY):
            (out / name).unlink(missing_ok=True)
        for figure in (*out.glob("*.png"), *out.glob("*.gif")):
            figure.unlink()
    elif finished:
        raise errors.ConfigError(f"{out} holds a finished run; pass --overwrite to replace it")
    return out


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

    `seeds_per_device` bounds how many seeds each device runs at once (0 = all): see `Trainer`.
    Writes `checkpoint.msgpack` and partial `results.npz` every `checkpoint_every_s` and when
    `should_stop()` turns true; at the end `results.npz` (complete) and `config.json`, and
    removes the checkpoint. Rerunning with the same config resumes from the checkpoint and
    ends with the same results as an uninterrupted run.

    Raises:
      RunStopped: `should_stop()` turned true, or the training loss became NaN or infinite;
        everything measured so far is saved first.
    """
    out = pathlib.Path(output_dir)
    trainer = Trainer(config, dataset, seeds_per_device=seeds_per_device)
    writer = jax.process_index() == 0  # one process writes files
    s = trainer.num_rows
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    meta = {"config": config.to_dict(), "versions": versions(), "complete": False,
            "estimators": estimator_settings(config), **(extra_config or {})}  # fmt: skip
    meta["execution"] = {"seeds_per_device": trainer.group, "padded_seeds": trainer.padded,
                         "processes": jax.process_count()}  # fmt: skip
    if writer:
        results.save_json(out / results.CONFIG, meta)
    checkpoint = out / results.CHECKPOINT
    seeded = (trainer.rows,)
    states = trainer.init_states(*seeded)
    record = _Record()
    if checkpoint.is_file():
        states, record = _load_checkpoint(checkpoint, config_json, states, trainer.sharding)
        logging.info("resuming %s from epoch %d", out, record.epoch)

    def save(complete: bool):
        if writer:
            results.save_results(out, _to_results(trainer, record, complete))
            if not complete:
                _save_checkpoint(checkpoint, config_json, states, record)
        elif not complete:
            jax.tree.map(host, states)  # every process takes part in the gathers

    epochs = config.epochs
    schedule = set(int(e) for e in trainer.schedule)
    start_time = last_save = last_log = time.monotonic()
    start_epoch = record.epoch
    seconds_per_epoch = None
    while record.epoch < epochs:
        if record.epoch in schedule:
            states, metrics, mi, grads = trainer.mi_step(states, *seeded, record.epoch)
            record.mi.append(np.transpose(host(mi)[:s], (1, 2, 0, 3)))  # [M, 4, S, L]
            record.grads.append(np.moveaxis(host(grads)[:s], 1, 0))  # [3, S, L]
            new_metrics = [host(metrics)[:s].T]
        else:
            following = [e for e in trainer.schedule if e > record.epoch]
            count = min(following[0] if following else epochs, epochs) - record.epoch
            # Calls of about 5 s, so that progress shows and a signal is answered soon; the first
            # call (one epoch, compilation included) measures the pace.
            count = min(count, max(1, int(5.0 / seconds_per_epoch)) if seconds_per_epoch else 1)
            call_start = time.monotonic()
            states, buffer = trainer.train_epochs(states, *seeded, record.epoch, count)
            new_metrics = list(np.transpose(host(buffer)[:s, :count], (1, 2, 0)))  # count x [4, S]
            seconds_per_epoch = (time.monotonic() - call_start) / count
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
                "epoch %d/%d  loss %.4f  acc %.4f  test loss %.4f  test acc %.4f  (mean of %d rows)  ETA %.0f s",
                record.epoch, epochs, m[0].mean(), m[1].mean(), m[2].mean(), m[3].mean(), s,
                rate * (epochs - record.epoch),
            )  # fmt: skip
        if should_stop():
            save(complete=False)
            raise RunStopped(f"stopped at epoch {record.epoch}; rerun the same command to resume")
        if now - last_save >= checkpoint_every_s:
            save(complete=False)
            last_save = time.monotonic()
    final_metrics, mi, grads = trainer.final_step(states, *seeded)
    record.final_metrics = host(final_metrics)[:s].T
    if epochs in schedule:
        record.mi.append(np.transpose(host(mi)[:s], (1, 2, 0, 3)))
        record.grads.append(np.moveaxis(host(grads)[:s], 1, 0))
    out_results = _to_results(trainer, record, complete=True)
    if writer:
        results.save_results(out, out_results)
        results.save_json(
            out / results.CONFIG, {**meta, "complete": True, "wall_time_s": time.monotonic() - start_time}
        )
        checkpoint.unlink(missing_ok=True)
    return out_results
