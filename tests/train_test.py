"""Tests of the train step, epochs and evaluation."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import data, errors, train
from tests import testing

_TINY = train.TrainConfig(hidden=(8, 6, 4), optimizer="adam", learning_rate=1e-2, loss_reduction="mean")


def _tishby_arrays():
    ds = data.load_tishby(0.2, seed=0)
    return jnp.asarray(ds.x_train[:256]), jnp.asarray(ds.y_train[:256])


class TrainStepTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.x, self.y = _tishby_arrays()
        self.state = train.create_state(jax.random.key(0), _TINY, 12, 2)

    @chex.variants(with_jit=True, without_jit=True)
    def test_activations_equal_a_separate_forward_pass(self):
        step = self.variant(train.train_step, static_argnames="reduction")
        new_state, metrics, acts = step(self.state, (self.x, self.y), reduction="mean")
        eval_metrics, eval_acts = train.evaluate(self.state.apply_fn, self.state.params, self.x, self.y)
        chex.assert_trees_all_close(acts, eval_acts, atol=1e-6)
        chex.assert_trees_all_close(metrics, eval_metrics, atol=1e-6)
        self.assertEqual(int(new_state.step), 1)

    def test_jit_and_eager_agree(self):
        eager = train.train_step(self.state, (self.x, self.y))
        jitted = jax.jit(train.train_step)(self.state, (self.x, self.y))
        chex.assert_trees_all_close(eager[0].params, jitted[0].params, atol=1e-6)
        chex.assert_trees_all_close(eager[1:], jitted[1:], atol=1e-6)

    @parameterized.named_parameters(
        ("adam_full", train.TrainConfig(hidden=(8, 6), learning_rate=1e-2)),
        (
            "sgd_momentum_minibatch",
            train.TrainConfig(
                hidden=(8, 6), optimizer="sgd", learning_rate=0.1, momentum=0.9, batch_size=32, loss_reduction="mean"
            ),
        ),
    )
    def test_a_few_epochs_lower_the_loss(self, config):
        state = train.create_state(jax.random.key(0), config, 12, 2)
        before, _ = train.evaluate(state.apply_fn, state.params, self.x, self.y)
        for epoch in range(10):
            state, metrics, acts = train.jit_train_epoch(state, jax.random.key(epoch), self.x, self.y, config)
            chex.assert_tree_all_finite(metrics)
        after, _ = train.evaluate(state.apply_fn, state.params, self.x, self.y)
        self.assertLess(float(after["loss"]), float(before["loss"]) - 0.01)
        self.assertEqual(acts is None, config.batch_size > 0)

    def test_the_learning_rate_decays_to_zero_over_its_epochs(self):
        """A cosine from the rate to 0 over lr_decay_epochs x steps per epoch (8 minibatches of 32
        of the 256 samples): the first step is the constant rate's, and after 3 epochs nothing moves."""
        config = train.TrainConfig(
            hidden=(6,), optimizer="sgd", learning_rate=0.1, batch_size=32, loss_reduction="mean", lr_decay_epochs=3
        )
        constant = dataclasses.replace(config, lr_decay_epochs=0)
        state = train.create_state(jax.random.key(0), config, 12, 2, num_train=256)
        fixed = train.create_state(jax.random.key(0), constant, 12, 2)
        batch = (self.x[:32], self.y[:32])
        chex.assert_trees_all_close(
            train.train_step(state, batch)[0].params, train.train_step(fixed, batch)[0].params, atol=1e-7
        )
        for epoch in range(3):
            state, _, _ = train.jit_train_epoch(state, jax.random.key(epoch), self.x, self.y, config)
        later, _, _ = train.jit_train_epoch(state, jax.random.key(9), self.x, self.y, config)
        chex.assert_trees_all_close(later.params, state.params, atol=0)
        self.assertEqual(int(later.step), 4 * 8)
        with self.assertRaisesRegex(ValueError, "num_train"):
            train.create_state(jax.random.key(0), config, 12, 2)
        with self.assertRaises(errors.ConfigError):
            dataclasses.replace(config, lr_decay_epochs=-1)

    @parameterized.named_parameters(("adam_sum", "adam", "sum"), ("sgd_mean", "sgd", "mean"))
    def test_gradient_statistics_equal_a_python_loop(self, optimizer, reduction):
        """In-scan statistics = a loop over the same minibatches taking jax.grad of the same loss
        at the same parameters before each update; the update is unchanged."""
        config = train.TrainConfig(
            hidden=(6, 4), optimizer=optimizer, learning_rate=0.05, batch_size=32, loss_reduction=reduction
        )
        state = train.create_state(jax.random.key(1), config, 12, 2)
        key = jax.random.key(5)
        got_state, got, _ = train.jit_train_epoch(state, key, self.x, self.y, config, gradient_stats=True)
        plain_state, plain, _ = train.jit_train_epoch(state, key, self.x, self.y, config)
        chex.assert_trees_all_close(got_state.params, plain_state.params)
        self.assertNotIn("grad_mean_norm", plain)
        perm = np.asarray(jax.random.permutation(key, 256))[: 8 * 32].reshape(8, 32)
        grads, loop_state = [], state
        for idx in perm:
            x, y = self.x[idx], self.y[idx]

            def loss(params, x=x, y=y):
                logits, _ = state.apply_fn({"params": params}, x)
                per_sample = train.cross_entropy(logits, y)
                return jnp.sum(per_sample) if reduction == "sum" else jnp.mean(per_sample)

            g = jax.grad(loss)(loop_state.params)
            grads.append([np.asarray(g[f"Dense_{i}"]["kernel"]) for i in range(3)])
            loop_state = loop_state.apply_gradients(grads=g)
        for layer in range(3):
            stack = np.stack([g[layer] for g in grads]).astype(np.float64)
            np.testing.assert_allclose(got["grad_mean_norm"][layer], np.linalg.norm(stack.mean(0)), rtol=1e-4)
            np.testing.assert_allclose(got["grad_std_norm"][layer], np.linalg.norm(stack.std(0)), rtol=1e-4)
            kernel = np.asarray(loop_state.params[f"Dense_{layer}"]["kernel"])
            np.testing.assert_allclose(got["weight_norm"][layer], np.linalg.norm(kernel), rtol=1e-5)

    @parameterized.named_parameters(
        ("sum_4_parts", "sum", 4),  # parts of 64: every layer from the parts' gradients
        ("mean_5_parts_with_a_remainder", "mean", 5),
        ("mean_63_parts_of_4", "mean", 63),  # the first layer (12 -> 6) from the parts' Gram matrices
    )
    def test_full_batch_gradient_statistics_from_sub_batches(self, reduction, parts):
        """One pass gives the full-batch update (as without statistics) and each part's own
        gradient, as jax.grad of the part's loss at the epoch's parameters."""
        config = train.TrainConfig(hidden=(6, 4), learning_rate=1e-2, loss_reduction=reduction)
        state = train.create_state(jax.random.key(2), config, 12, 2)
        key = jax.random.key(0)
        got_state, got, acts = train.jit_train_epoch(
            state, key, self.x, self.y, config, gradient_stats=True, sub_batches=parts
        )
        plain_state, plain, plain_acts = train.jit_train_epoch(state, key, self.x, self.y, config)
        chex.assert_trees_all_close(got_state.params, plain_state.params, rtol=1e-5)  # the full-batch update
        chex.assert_trees_all_close(acts, plain_acts, rtol=1e-5, atol=1e-6)  # in the batch's order
        chex.assert_trees_all_close(got["loss"], plain["loss"], rtol=1e-5)
        size = 256 // parts
        grads = []
        for part in range(parts):
            x, y = self.x[part * size : (part + 1) * size], self.y[part * size : (part + 1) * size]

            def loss(params, x=x, y=y):
                per_sample = train.cross_entropy(state.apply_fn({"params": params}, x)[0], y)
                return jnp.sum(per_sample) if reduction == "sum" else jnp.mean(per_sample)

            g = jax.grad(loss)(state.params)
            grads.append([np.asarray(g[f"Dense_{i}"]["kernel"]) for i in range(3)])
        for layer in range(3):
            stack = np.stack([g[layer] for g in grads]).astype(np.float64)
            np.testing.assert_allclose(got["grad_mean_norm"][layer], np.linalg.norm(stack.mean(0)), rtol=1e-4)
            np.testing.assert_allclose(got["grad_std_norm"][layer], np.linalg.norm(stack.std(0)), rtol=1e-4)

    def test_same_seed_same_parameters(self):
        def run(seed):
            state = train.create_state(jax.random.key(seed), _TINY, 12, 2)
            for epoch in range(3):
                state, _, _ = train.jit_train_epoch(state, jax.random.key(epoch), self.x, self.y, _TINY)
            return state.params

        chex.assert_trees_all_equal(run(1), run(1))
        self.assertFalse(np.allclose(run(1)["Dense_0"]["kernel"], run(2)["Dense_0"]["kernel"]))

    def test_minibatch_epoch_drops_the_remainder(self):
        config = train.TrainConfig(hidden=(4,), batch_size=100, learning_rate=1e-2)
        state = train.create_state(jax.random.key(0), config, 12, 2)
        state, _, _ = train.jit_train_epoch(state, jax.random.key(0), self.x, self.y, config)
        self.assertEqual(int(state.step), 2)  # 256 // 100

    @parameterized.parameters(
        {"hidden": ()},
        {"hidden": (3, 0)},
        {"optimizer": "rmsprop"},
        {"loss_reduction": "max"},
        {"learning_rate": 0.0},
        {"momentum": 0.9},
        {"batch_size": -1},
        {"activation": "gelu"},
    )
    def test_bad_config(self, **kwargs):
        with self.assertRaises(errors.ConfigError):
            train.TrainConfig(**kwargs)


class MnistFitTest(chex.TestCase):
    def test_reimplemented_network_fits_1000_images_within_300_epochs(self):
        """784-784-1024-1024-20-20-20-10-10 tanh, full-batch Adam 1e-3, summed loss."""
        testing.require_data()
        ds = data.prepare(data.load_mnist(testing.DATA_DIR, download=False), train_size=1000, seed=0)
        x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
        config = train.TrainConfig()
        self.assertEqual(train.layer_widths(config, 10), (784, 1024, 1024, 20, 20, 20, 10, 10))
        state = train.create_state(jax.random.key(0), config, 784, 10)
        accuracy, epoch = 0.0, 0
        while accuracy < 0.99 and epoch < 300:
            state, metrics, _ = train.jit_train_epoch(state, jax.random.key(epoch), x, y, config)
            accuracy, epoch = float(metrics["accuracy"]), epoch + 1
        self.assertGreaterEqual(accuracy, 0.99, f"train accuracy {accuracy} after {epoch} epochs")


if __name__ == "__main__":
    absltest.main()
