"""The compiled pieces of a run: every function takes the rows' states and per-row arrays with a
leading [padded] axis, runs them in groups on each device (`sharding.sharded`) and measures the
information plane on the device.

  init(rows) -> states
  epochs(states, rows, start, count) -> states, metrics [padded, max_gap, 4]
  measured_epoch(states, rows, epoch) -> states, metrics [padded, 4], information
      [padded, M + X, 4, L], gradients [padded, 3, L]
  final(states, rows) -> metrics, information, gradients of the final network (no update)

Metrics are (train loss, train accuracy, test loss, test accuracy) of the network entering the
epoch; information is (I(X;T), I(T;Y)) on the training split, then on the test split, in bits,
for each of the M estimators, then the X diagnostics of those that have some
(`estimators.channels.extra_channels`: the probe's held-out accuracy and convergence) as
(NaN, train, NaN, test).
"""

import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import config as config_lib
from ib_jax import data, estimators, results, sharding
from ib_jax import rows as rows_lib
from ib_jax import train as train_lib

GRADIENT_KEYS = results.GRADIENT_KEYS
_MEASURE_TAG = 0x6D656173  # folded into an epoch's key for the measurement's noise, + 0 or 1 for the split


def _flat_metrics(metrics) -> jax.Array:
    """((train), (test)) metric dicts -> [4]: train loss, train acc, test loss, test acc."""
    (m, t) = metrics
    return jnp.stack([m["loss"], m["accuracy"], t["loss"], t["accuracy"]]).astype(jnp.float32)


class _AheadOfTime:
    """A jitted function compiled ahead of its first call (`jax.jit(...).lower(...).compile()`,
    which reads and fills the persistent compilation cache like a first call), so that a run
    can say what it compiles and time compiling apart from running. The program it compiles is
    the one a first call would, for the shapes and types of that call's arguments."""

    def __init__(self, jitted, program: "Program", kind: str):
        self.jitted, self.program, self.kind = jitted, program, kind
        self.executable = None

    def __call__(self, *args):
        if self.executable is None:
            if self.program.on_compile is not None:
                self.program.on_compile(self.kind)
            start = time.monotonic()
            self.executable = self.jitted.lower(*args).compile()
            self.program.compile_seconds[self.kind] = time.monotonic() - start
        return self.executable(*args)


class Program:
    """The jitted functions of one run (see the module docstring). Each is compiled on its
    first call, which first calls `on_compile(kind)` ("init", "train", "measure", "final"), and
    keeps the seconds it took in `compile_seconds[kind]`.

    Args:
      config: the run's `ExperimentConfig`.
      dataset: its data (test labels are shared by every row).
      rows: its rows (`rows.build`), whose input bank the functions read.
      lay: where the rows run (`sharding.layout`).
      chosen: the estimator objects, in order.
      schedule: the measured epochs, for the largest gap between two of them.
    """

    def __init__(
        self,
        config,
        dataset: data.Dataset,
        rows: rows_lib.Rows,
        lay: sharding.Layout,
        chosen: tuple[estimators.Estimator, ...],
        schedule: np.ndarray,
    ):
        self.config = config
        self.num_classes = dataset.num_classes
        self.image_shape = dataset.image_shape
        self.widths = tuple(train_lib.layer_widths(config.train, self.num_classes, self.image_shape))
        self.layer_names = train_lib.layer_names(config.train)
        self.estimators = chosen
        self.confidence = config.confidence
        self.noise = config.train.noise
        self.shared_labels = rows.shared_labels
        self.train_subset, self.test_subset = rows.train_subset, rows.test_subset
        # The data is an argument of every compiled function, never a constant inside it: XLA
        # would fold operations on constants (sorts of the inputs, say) at compile time.
        replicated = jax.sharding.NamedSharding(lay.mesh, jax.sharding.PartitionSpec())
        self.bank = sharding.put(
            {"x": rows.x_bank, "x_test": rows.x_test_bank, "y_test": np.asarray(dataset.y_test)}, replicated
        )
        self.input_units = rows.x_bank.shape[-1]
        self.num_train = rows.x_bank.shape[1]
        self.sub_batches = config_lib.sub_batches(config, rows.x_bank.shape[1])
        self.one_variant = rows.x_bank.shape[0] == 1
        gaps = np.diff(np.concatenate([schedule[schedule < config.epochs], [config.epochs]]))
        self.max_gap = int(max(1, gaps.max() - 1)) if gaps.size else 1
        self.on_compile: Callable[[str], None] | None = None
        self.compile_seconds: dict[str, float] = {}
        self._functions = {  # each compiled on its first call (`_AheadOfTime`)
            kind: _AheadOfTime(jax.jit(sharding.sharded(lay, fn, *axes), donate_argnums=donate), self, kind)
            for kind, fn, axes, donate in (
                ("measure", self._measured_group, (2, 2), 0),
                ("train", self._epochs_group, (2, 3), 0),
                ("final", self._final_group, (2, 1), ()),
                ("init", self._init_group, (1, 1), ()),
            )
        }

    def compiled(self, kind: str) -> bool:
        """Whether the function `kind` has been compiled."""
        return self._functions[kind].executable is not None

    def init(self, rows):
        return self._functions["init"](rows, self.bank)

    # Epoch numbers and counts go in as int32 scalars whatever the caller holds (a Python int is
    # weakly typed, a numpy integer is not): a change of type would trace the program again.
    def epochs(self, states, rows, start, count):
        return self._functions["train"](states, rows, np.int32(start), np.int32(count), self.bank)

    def measured_epoch(self, states, rows, epoch):
        return self._functions["measure"](states, rows, np.int32(epoch), self.bank)

    def final(self, states, rows):
        return self._functions["final"](states, rows, self.bank)

    def _inputs(self, row, bank):
        """The row's training and test inputs, from the bank ([N, F] each); given a group's
        rows, [N, F] when the bank holds one entry, else each row's own [G, N, F]."""
        if self.one_variant:
            return bank["x"][0], bank["x_test"][0]
        return bank["x"][row["inputs"]], bank["x_test"][row["inputs"]]

    def _keys(self, seed):
        return jax.random.split(jax.random.key(seed))  # init key, shuffle key

    def _init_group(self, rows, bank):
        def init(row):  # a quantized network calibrates its ranges on the row's training inputs
            x = self._inputs(row, bank)[0] if self.config.train.quantize_bits else None
            return train_lib.create_state(
                self._keys(row["seed"])[0],
                self.config.train,
                self.input_units,
                self.num_classes,
                x,
                self.num_train,
                self.image_shape,
            )

        return jax.vmap(init)(rows)

    def _one_epoch(self, state, row, epoch, bank, gradient_stats: bool = False):
        """One row's epoch: test metrics of the entering network, then the training epoch; with
        `gradient_stats`, also the gradient statistics [3, L] (mean norm, std norm, |W|_F)."""
        x, x_test = self._inputs(row, bank)
        test_metrics, test_acts = train_lib.evaluate(
            state.apply_fn, state.params, x_test, bank["y_test"], state.quantization
        )
        key = jax.random.fold_in(self._keys(row["seed"])[1], epoch)
        new_state, metrics, acts = train_lib.train_epoch(
            state, key, x, row["labels"], self.config.train, gradient_stats, self.sub_batches
        )
        if acts is None or self.noise.active:  # minibatch, or noisy: the entering (noiseless) network on all of it
            _, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"], state.quantization)
        grads = jnp.stack([metrics.pop(k) for k in GRADIENT_KEYS]) if gradient_stats else None
        return new_state, _flat_metrics((metrics, test_metrics)), (acts, test_acts), grads

    def _plane(self, train_acts, rows, test_acts, bank, epoch, final: bool = False):
        """Information of a group's layers by every estimator, then the estimators' diagnostics,
        [G, M + X, 4, L] (`estimators.channels.measure_splits`); the estimators are batched over
        rows, epochs and layers, not vmapped. The activations are the noiseless network's; a
        network with noise of its own has each noisy layer's noise drawn around them
        (`noise.LayerNoise.measured`, from the row's key, the epoch and the split), which every
        estimator measures but those that integrate the noise themselves (`noise_mc`), which
        take the noiseless values."""
        labels_GxN = rows["labels"]
        train_labels = labels_GxN[0] if self.shared_labels else labels_GxN
        x, x_test = self._inputs(rows, bank) if any(e.needs_inputs for e in self.estimators) else (None, None)
        test_labels = bank["y_test"]
        if self.train_subset is not None:  # samples on the second-to-last axis of all but the labels
            idx = self.train_subset
            train_acts = tuple(a[..., idx, :] for a in train_acts)
            train_labels = train_labels[..., idx]
            x = None if x is None else x[..., idx, :]
        if self.test_subset is not None:
            idx = self.test_subset
            test_acts = tuple(a[..., idx, :] for a in test_acts)
            test_labels = test_labels[idx]
            x_test = None if x_test is None else x_test[..., idx, :]
        means = None
        if self.noise.active:  # the noise drawn for the measured samples only
            means = (train_acts, test_acts)

            def noisy(row_seed, split, acts):
                key = jax.random.fold_in(jax.random.fold_in(self._keys(row_seed)[1], epoch), _MEASURE_TAG + split)
                return self.noise.measured(key, acts)

            train_acts = jax.vmap(noisy, in_axes=(0, None, 0))(rows["seed"], 0, train_acts)
            test_acts = jax.vmap(noisy, in_axes=(0, None, 0))(rows["seed"], 1, test_acts)
        splits = ((train_acts, train_labels, x), (test_acts, test_labels, x_test))
        convergence = {"none": None, "final": "measure" if final else "skip", "every": "measure"}[
            self.config.convergence
        ]
        return estimators.channels.measure_splits(
            self.estimators, splits, self.num_classes, means, self.confidence, convergence
        )  # [G, M + C, 4, L]

    def _measured_group(self, states, rows, epoch, bank):
        one = functools.partial(self._one_epoch, bank=bank, gradient_stats=self.config.gradient_stats)
        states, metrics, (acts, test_acts), grads = jax.vmap(one, in_axes=(0, 0, None))(states, rows, epoch)
        if grads is None:
            grads = jnp.zeros((rows["seed"].shape[0], len(GRADIENT_KEYS), len(self.widths)), jnp.float32)
        return states, metrics, self._plane(acts, rows, test_acts, bank, epoch), grads

    def _epochs_group(self, states, rows, start, count, bank):
        """`count` epochs from `start` (both traced: one compilation for every gap); metrics
        [G, max_gap, 4], valid up to `count`."""
        one = jax.vmap(lambda st, r, e: self._one_epoch(st, r, e, bank)[:2], in_axes=(0, 0, None))  # no statistics

        def body(i, carry):
            states, buffer = carry
            states, metrics = one(states, rows, start + i)
            return states, jax.lax.dynamic_update_slice_in_dim(buffer, metrics[:, None], i, axis=1)

        buffer = jnp.zeros((rows["seed"].shape[0], self.max_gap, 4), jnp.float32)
        return jax.lax.fori_loop(0, count, body, (states, buffer))

    def _final_group(self, states, rows, bank):
        """The final network: metrics and information on both splits, no update."""

        def one(state, row):
            x, x_test = self._inputs(row, bank)
            metrics, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"], state.quantization)
            test_metrics, test_acts = train_lib.evaluate(
                state.apply_fn, state.params, x_test, bank["y_test"], state.quantization
            )
            return _flat_metrics((metrics, test_metrics)), (acts, test_acts)

        metrics, (acts, test_acts) = jax.vmap(one)(states, rows)
        # No epoch is trained from the final network: gradient statistics are NaN, |W|_F is its own.
        weights = jax.vmap(lambda st: train_lib.weight_norms(st.params, self.config.train))(states)
        nan = jnp.full_like(weights, jnp.nan)
        plane = self._plane(acts, rows, test_acts, bank, self.config.epochs, final=True)  # a measured epoch's draws
        return metrics, plane, jnp.stack([nan, nan, weights], axis=1)
