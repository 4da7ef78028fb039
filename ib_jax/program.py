"""The compiled pieces of a run: every function takes the rows' states and per-row arrays with a
leading [padded] axis, runs them in groups on each device (`sharding.sharded`) and measures the
information plane on the device.

  init(rows) -> states
  epochs(states, rows, start, count) -> states, metrics [padded, max_gap, 4]
  measured_epoch(states, rows, epoch) -> states, metrics [padded, 4], information
      [padded, M, 4, L], gradients [padded, 3, L]
  final(states, rows) -> metrics, information, gradients of the final network (no update)

Metrics are (train loss, train accuracy, test loss, test accuracy) of the network entering the
epoch; information is (I(X;T), I(T;Y)) on the training split, then on the test split, in bits,
for each of the M estimators.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import data, estimators, results, sharding
from ib_jax import rows as rows_lib
from ib_jax import train as train_lib

GRADIENT_KEYS = results.GRADIENT_KEYS


def _flat_metrics(metrics) -> jax.Array:
    """((train), (test)) metric dicts -> [4]: train loss, train acc, test loss, test acc."""
    (m, t) = metrics
    return jnp.stack([m["loss"], m["accuracy"], t["loss"], t["accuracy"]]).astype(jnp.float32)


class Program:
    """The jitted functions of one run (see the module docstring).

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
        self.widths = tuple(train_lib.layer_widths(config.train, self.num_classes))
        self.estimators = chosen
        self.shared_labels = rows.shared_labels
        self.y_test = jnp.asarray(dataset.y_test)
        self.x_bank = jnp.asarray(rows.x_bank)
        self.x_test_bank = jnp.asarray(rows.x_test_bank)
        gaps = np.diff(np.concatenate([schedule[schedule < config.epochs], [config.epochs]]))
        self.max_gap = int(max(1, gaps.max() - 1)) if gaps.size else 1
        self.measured_epoch = jax.jit(sharding.sharded(lay, self._measured_group, 2, 1), donate_argnums=0)
        self.epochs = jax.jit(sharding.sharded(lay, self._epochs_group, 2, 2), donate_argnums=0)
        self.final = jax.jit(sharding.sharded(lay, self._final_group, 2, 0))
        self.init = jax.jit(sharding.sharded(lay, self._init_group, 1, 0))

    def _inputs(self, row):
        """The row's training and test inputs, from the bank."""
        if self.x_bank.shape[0] == 1:
            return self.x_bank[0], self.x_test_bank[0]
        return self.x_bank[row["inputs"]], self.x_test_bank[row["inputs"]]

    def _keys(self, seed):
        return jax.random.split(jax.random.key(seed))  # init key, shuffle key

    def _init_group(self, rows):
        def init(row):  # a quantized network calibrates its ranges on the row's training inputs
            x = self._inputs(row)[0] if self.config.train.quantize_bits else None
            return train_lib.create_state(
                self._keys(row["seed"])[0], self.config.train, self.x_bank.shape[-1], self.num_classes, x
            )

        return jax.vmap(init)(rows)

    def _one_epoch(self, state, row, epoch, gradient_stats: bool = False):
        """One row's epoch: test metrics of the entering network, then the training epoch; with
        `gradient_stats`, also the gradient statistics [3, L] (mean norm, std norm, |W|_F)."""
        x, x_test = self._inputs(row)
        test_metrics, test_acts = train_lib.evaluate(
            state.apply_fn, state.params, x_test, self.y_test, state.quantization
        )
        key = jax.random.fold_in(self._keys(row["seed"])[1], epoch)
        new_state, metrics, acts = train_lib.train_epoch(
            state, key, x, row["labels"], self.config.train, gradient_stats, self.config.gradient_sub_batches
        )
        if acts is None:  # minibatch: the entering network on the whole training set
            _, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"], state.quantization)
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

    def _measured_group(self, states, rows, epoch):
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
            metrics, acts = train_lib.evaluate(state.apply_fn, state.params, x, row["labels"], state.quantization)
            test_metrics, test_acts = train_lib.evaluate(
                state.apply_fn, state.params, x_test, self.y_test, state.quantization
            )
            return _flat_metrics((metrics, test_metrics)), (acts, test_acts)

        metrics, (acts, test_acts) = jax.vmap(one)(states, rows)
        # No epoch is trained from the final network: gradient statistics are NaN, |W|_F is its own.
        weights = jax.vmap(lambda st: train_lib.weight_norms(st.params))(states)
        nan = jnp.full_like(weights, jnp.nan)
        return metrics, self._plane(acts, rows["labels"], test_acts), jnp.stack([nan, nan, weights], axis=1)
