"""Tests of the MLP: the activations it returns, its initialisers and its errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import errors, model


class MLPTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tishby_tanh", (10, 7, 5, 4, 3), 2, "tanh"),
        ("mnist_relu", (32, 20, 10), 10, "relu"),
        ("one_layer_sigmoid", (6,), 3, "sigmoid"),
        ("softsign", (5, 4), 2, "softsign"),
        ("softplus", (5, 4), 2, "softplus"),
        ("linear", (5, 4), 2, "linear"),
    )
    def test_activation_shapes_and_values(self, hidden, num_classes, activation):
        net = model.MLP(hidden=hidden, num_classes=num_classes, activation=activation)
        x = jax.random.normal(jax.random.key(0), (9, 12))
        params = net.init(jax.random.key(1), x)
        logits, acts = self.variant(net.apply)(params, x)
        chex.assert_shape(logits, (9, num_classes))
        chex.assert_shape(list(acts), [(9, w) for w in (*hidden, num_classes)])
        chex.assert_trees_all_close(acts[-1], logits)
        # Recompute layer by layer with numpy from the parameters.
        fn = {
            "tanh": np.tanh,
            "relu": lambda v: np.maximum(v, 0),
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "softsign": lambda v: v / (1 + np.abs(v)),
            "softplus": lambda v: np.log1p(np.exp(v)),
            "linear": lambda v: v,
        }[activation]
        h = np.asarray(x, np.float64)
        for i in range(len(hidden)):
            layer = params["params"][f"Dense_{i}"]
            h = fn(h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]))
            np.testing.assert_allclose(acts[i], h, atol=1e-5, rtol=1e-5)

    def test_truncated_normal_init(self):
        net = model.MLP(hidden=(400,), num_classes=2, kernel_init="truncated_normal")
        params = net.init(jax.random.key(0), jnp.zeros((1, 900)))["params"]
        kernel = np.asarray(params["Dense_0"]["kernel"])
        std = 1.0 / 30.0
        self.assertLessEqual(np.abs(kernel).max(), 2 * std + 1e-6)
        # A normal truncated at 2 sigma has std 0.8796 sigma.
        self.assertAlmostEqual(kernel.std() / std, 0.8796, delta=0.01)
        np.testing.assert_array_equal(np.asarray(params["Dense_0"]["bias"]), 0.0)

    def test_pytorch_init(self):
        net = model.MLP(hidden=(400,), num_classes=2, kernel_init="pytorch")
        params = net.init(jax.random.key(0), jnp.zeros((1, 900)))["params"]
        for name, fan_in in (("Dense_0", 900), ("Dense_1", 400)):
            for leaf in ("kernel", "bias"):
                self.assertLessEqual(np.abs(np.asarray(params[name][leaf])).max(), 1 / np.sqrt(fan_in))
            kernel = np.asarray(params[name]["kernel"])
            self.assertAlmostEqual(kernel.std() * np.sqrt(3 * fan_in), 1.0, delta=0.05)  # uniform: std = b/sqrt(3)
            self.assertGreater(np.abs(np.asarray(params[name]["bias"])).max(), 0.0)

    @parameterized.named_parameters(
        ("tanh", "tanh", "default", 0),
        ("relu_pytorch", "relu", "pytorch", 0),
        ("truncated_normal", "tanh", "truncated_normal", 0),
        ("quantized_tanh", "tanh", "default", 4),
        ("quantized_relu", "relu", "default", 6),
    )
    def test_init_on_a_small_batch_then_apply_on_any_batch(self, activation, kernel_init, bits):
        """The first thing a Flax user types: `init` returns parameters (and a quantized
        network's ranges) only, and `apply` takes them on a batch of any size."""
        net = model.MLP(
            hidden=(10, 7), num_classes=2, activation=activation, kernel_init=kernel_init, quantize_bits=bits
        )
        x = jax.random.normal(jax.random.key(0), (100, 12))
        variables = net.init(jax.random.key(1), x[:8])
        self.assertEqual(sorted(variables), ["params", "quantization"] if bits else ["params"])
        logits, acts = net.apply(variables, x)
        chex.assert_shape([logits, *acts], [(100, 2), (100, 10), (100, 7), (100, 2)])
        # Each sample's output does not depend on the batch around it.
        chex.assert_trees_all_close(net.apply(variables, x[:3])[0], logits[:3], atol=1e-6)

    @parameterized.parameters(("swish", "default"), ("tanh", "glorot"))
    def test_unknown_names(self, activation, kernel_init):
        net = model.MLP(hidden=(3,), num_classes=2, activation=activation, kernel_init=kernel_init)
        with self.assertRaises(errors.ConfigError):
            net.init(jax.random.key(0), jnp.zeros((1, 4)))


if __name__ == "__main__":
    absltest.main()
