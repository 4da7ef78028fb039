"""Tests of quantized networks: values on the grid, the straight-through gradient, the MLP's
ranges (calibrated, tracked, evaluated without a mutable collection), and the config check."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import errors, model, quantization, train


def _on_grid(test, values, lo, hi, bits):
    values, lo, hi = np.asarray(values, np.float64), float(lo), float(hi)
    step = (hi - lo) / (2**bits - 1)
    levels = (values - lo) / step
    test.assertTrue(np.all(values >= lo - 1e-6) and np.all(values <= hi + 1e-6))
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    test.assertLessEqual(len(np.unique(values)), 2**bits)


class QuantizeTest(parameterized.TestCase):
    @parameterized.parameters((2, -1.0, 1.0), (4, 0.0, 1.0), (8, -3.0, 3.0), (16, -1.0, 1.0))
    def test_values_lie_on_the_grid_and_are_the_nearest_level(self, bits, lo, hi):
        a = np.random.default_rng(bits).uniform(lo - 1, hi + 1, 5000).astype(np.float32)
        q = np.asarray(quantization.quantize(jnp.asarray(a), lo, hi, bits))
        _on_grid(self, q, lo, hi, bits)
        step = (hi - lo) / (2**bits - 1)
        np.testing.assert_array_less(np.abs(q - np.clip(a, lo, hi)), step / 2 + 1e-5)  # the nearest level

    def test_straight_through_inside_zero_outside(self):
        a = jnp.array([-2.0, -0.7, -0.2, 0.3, 0.95, 1.5])
        w = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        grad = jax.grad(lambda x: jnp.sum(w * quantization.quantize(x, -1.0, 1.0, 4)))(a)
        np.testing.assert_array_equal(grad, [0.0, 2.0, 3.0, 4.0, 5.0, 0.0])

    def test_straight_through_gradient_equals_the_float_gradient_inside_the_range(self):
        """A loss through quantized layers has the float network's gradient, evaluated at the
        quantized activations, when every value lies inside its range."""
        x = jax.random.normal(jax.random.key(0), (16, 5)) * 0.3
        w = jax.random.normal(jax.random.key(1), (5, 3)) * 0.3

        def loss(w, q):
            h = jnp.tanh(x @ w)
            h = quantization.quantize(h, -1.0, 1.0, 8) if q else h
            return jnp.sum(jnp.sin(h) * h)

        hq = quantization.quantize(jnp.tanh(x @ w), -1.0, 1.0, 8)
        g = jnp.cos(hq) * hq + jnp.sin(hq)  # the float loss's gradient by h, at the quantized h
        want = jax.vjp(lambda w: jnp.tanh(x @ w), w)[1](g)[0]  # chained through the float layer
        np.testing.assert_allclose(jax.grad(loss)(w, True), want, rtol=1e-5, atol=1e-7)
        self.assertFalse(np.allclose(jax.grad(loss)(w, True), jax.grad(loss)(w, False), atol=1e-6))

    @parameterized.parameters(0, 2, 16)
    def test_accepted_bits(self, bits):
        quantization.check_bits(bits)
        train.TrainConfig(quantize_bits=bits)

    @parameterized.parameters(1, 17, -2)
    def test_refused_bits(self, bits):
        with self.assertRaisesRegex(errors.ConfigError, "quantize_bits"):
            train.TrainConfig(quantize_bits=bits)


class QuantizedMLPTest(chex.TestCase):
    @parameterized.parameters("tanh", "relu")
    def test_every_layer_on_its_grid(self, activation):
        net = model.MLP(hidden=(6, 4), num_classes=3, activation=activation, quantize_bits=4)
        x = jax.random.normal(jax.random.key(0), (64, 5))
        variables = net.init(jax.random.key(1), x)
        _, acts = net.apply(variables, x)  # no mutable collection: the stored ranges
        ranges = variables[quantization.COLLECTION]
        for i, a in enumerate(acts):
            layer_activation = activation if i < 2 else None
            r = ranges.get(f"range_{i}")
            self.assertEqual(r is not None, quantization.tracks_range(layer_activation))
            lo, hi = quantization.layer_bounds(layer_activation, r)
            _on_grid(self, a, lo, hi, 4)
        self.assertAlmostEqual(float(ranges["range_2"]), float(np.abs(np.asarray(acts[2])).max()), places=5)

    def test_training_tracks_the_ranges_from_the_epochs_largest_values(self):
        config = train.TrainConfig(
            hidden=(6,), activation="relu", optimizer="sgd", learning_rate=0.5, loss_reduction="mean", quantize_bits=3
        )
        x = jax.random.normal(jax.random.key(0), (40, 5))
        y = jnp.arange(40) % 2
        state = train.create_state(jax.random.key(1), config, 5, 2, x)
        before = jax.tree.map(float, state.quantization)
        net = train.make_model(config, 2)
        _, sown = net.apply(train.variables(state), x, mutable=[quantization.STATS])
        largest = {k.replace("max_", "range_"): float(v) for k, v in sown[quantization.STATS].items()}
        new_state, _, _ = train.train_step(state, (x, y), "mean")
        for key, r in new_state.quantization.items():
            want = max(
                quantization.RANGE_MOMENTUM * before[key] + (1 - quantization.RANGE_MOMENTUM) * largest[key], 1e-6
            )
            self.assertAlmostEqual(float(r), want, places=5)
        with self.assertRaisesRegex(ValueError, "x_calibrate"):
            train.create_state(jax.random.key(1), config, 5, 2)


if __name__ == "__main__":
    absltest.main()
