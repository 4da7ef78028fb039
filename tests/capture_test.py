"""Tests of capturing the activations of one's own Flax module."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from flax import nnx

from ib_jax import capture, estimators

LAYERS = ("conv", "hidden", "logits", "output")


class _CNN(nn.Module):
    """A small CNN with a residual dense block: a sown value, a nested module, a named one."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(3, (3, 3), strides=2, name="conv_layer")(x))
        self.sow("intermediates", "conv", x)
        h = x.reshape(x.shape[0], -1)
        h = nn.tanh(_Block(name="block")(h))
        self.sow("intermediates", "hidden", h)
        return nn.Dense(4, name="logits")(h)


class _Block(nn.Module):
    @nn.compact
    def __call__(self, h):
        return nn.Dense(5)(h) + nn.Dense(5, use_bias=False)(h)


def _setup():
    x = jax.random.normal(jax.random.key(0), (32, 8, 8, 1))
    y = jnp.arange(32) % 4
    model = _CNN()
    return model, model.init(jax.random.key(1), x), x, y


class CaptureTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.model, self.variables, self.x, self.y = _setup()

    def _manual(self):
        """The forward pass by hand, from the parameters, layer by layer."""
        p = self.variables["params"]
        conv = nn.relu(nn.Conv(3, (3, 3), strides=2).apply({"params": p["conv_layer"]}, self.x))
        flat = conv.reshape(32, -1)
        dense = lambda q, h: h @ q["kernel"] + q.get("bias", 0.0)  # noqa: E731
        hidden = jnp.tanh(dense(p["block"]["Dense_0"], flat) + dense(p["block"]["Dense_1"], flat))
        logits = dense(p["logits"], hidden)
        return {"conv": flat, "hidden": hidden, "logits": logits, "output": logits, "block": hidden}

    @chex.variants(with_jit=True, without_jit=True)
    def test_captured_activations_equal_a_manual_forward_pass(self):
        apply = self.variant(lambda v, x: capture.apply(self.model, v, x, layers=LAYERS))
        out, acts = apply(self.variables, self.x)
        manual = self._manual()
        chex.assert_trees_all_close(out, self.model.apply(self.variables, self.x), atol=1e-6)
        chex.assert_shape(list(acts), [(32, 3 * 4 * 4), (32, 5), (32, 4), (32, 4)])
        for name, got in zip(LAYERS, acts):
            np.testing.assert_allclose(got, manual[name], atol=1e-5, err_msg=name)
            self.assertEqual(got.dtype, jnp.float32)

    def test_nested_module_path_is_its_pre_nonlinearity_output(self):
        _, (block,) = capture.apply(self.model, self.variables, self.x, layers=["block"])
        np.testing.assert_allclose(jnp.tanh(block), self._manual()["hidden"], atol=1e-5)

    def test_layer_names_and_errors(self):
        names = capture.layer_names(self.model, self.variables, self.x)
        for name in ("conv_layer", "conv", "block", "block/Dense_0", "hidden", "logits", "output"):
            self.assertIn(name, names)
        with self.assertRaisesRegex(ValueError, "no layer 'conv2'.*it has: .*conv_layer"):
            capture.apply(self.model, self.variables, self.x, layers=["conv2"])
        for bad, message in (([], "at least one"), ("conv", "sequence"), (["conv", "conv"], "twice"), ([""], "empty")):
            with self.assertRaisesRegex(ValueError, message):
                capture.apply(self.model, self.variables, self.x, layers=bad)

        class Twice(nn.Module):
            @nn.compact
            def __call__(self, x):
                dense = nn.Dense(3, name="shared")
                return dense(nn.relu(dense(x)))

        v = Twice().init(jax.random.key(0), jnp.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, "produced 2 times"):
            capture.apply(Twice(), v, jnp.ones((2, 3)), layers=["shared"])

    def test_mutable_collections_pass_through(self):
        class WithBatchNorm(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(2, name="out")(nn.BatchNorm(use_running_average=False, name="bn")(x))

        model, x = WithBatchNorm(), jax.random.normal(jax.random.key(0), (8, 3))
        v = model.init(jax.random.key(1), x)
        (out, updates), (bn,) = capture.apply(model, v, x, layers=["bn"], mutable=["batch_stats"])
        want, want_updates = model.apply(v, x, mutable=["batch_stats"])
        chex.assert_trees_all_close((out, updates), (want, want_updates))
        self.assertNotIn("intermediates", updates)
        np.testing.assert_allclose(bn.mean(0), 0.0, atol=1e-5)


class MeasureInJitTest(chex.TestCase):
    def test_inside_and_outside_jit_are_equal(self):
        """Capture and measure inside one jitted function = outside jit, for one estimator of
        each code path (kde_lower and adaptive_range share theirs with kde_upper and
        adaptive_entropy; renyi and edge are measured inside a run's jitted program and compared
        with a direct measurement in experiment_test)."""
        model, variables, x, y = _setup()
        ests = [
            estimators.by_name(n, binning=estimators.Binning(bin_size=0.3), noise_variance=0.1, num_bins=8)
            for n in ("binned", "kde_upper", "kde_mc", "adaptive_entropy", "exact")
        ]

        def plane(v, x, y):
            _, acts = capture.apply(model, v, x, layers=LAYERS)
            flat = x.reshape(len(y), -1)  # the inputs, for the estimators that need them
            return [estimators.information_plane(acts, y, estimator=e, num_classes=4, inputs=flat) for e in ests]

        outside = plane(variables, x, y)
        inside = jax.jit(plane)(variables, x, y)
        chex.assert_trees_all_close(inside, outside, atol=1e-5)
        self.assertGreater(float(outside[0][0][0]), 0.0)


class _NNXCNN(nnx.Module):
    """`_CNN` in Flax NNX: a sown value, a nested module and a list of them, a named one."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv_layer = nnx.Conv(1, 3, (3, 3), strides=2, rngs=rngs)
        self.block = nnx.List([nnx.Linear(48, 5, rngs=rngs), nnx.Linear(48, 5, use_bias=False, rngs=rngs)])
        self.logits = nnx.Linear(5, 4, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.conv_layer(x))
        self.sow(nnx.Intermediate, "conv", x)
        h = x.reshape(x.shape[0], -1)
        h = jnp.tanh(self.block[0](h) + self.block[1](h))
        self.sow(nnx.Intermediate, "hidden", h)
        return self.logits(h)


class NNXCaptureTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.model = _NNXCNN(nnx.Rngs(1))
        self.x = jax.random.normal(jax.random.key(0), (32, 8, 8, 1))

    def _manual(self):
        """The forward pass by hand, from the module's arrays."""
        m, x = self.model, self.x
        conv = jax.lax.conv_general_dilated(x, m.conv_layer.kernel[...], (2, 2), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
        conv = jax.nn.relu(conv + m.conv_layer.bias[...]).reshape(32, -1)
        first = conv @ m.block[0].kernel[...] + m.block[0].bias[...]
        hidden = jnp.tanh(first + conv @ m.block[1].kernel[...])
        logits = hidden @ m.logits.kernel[...] + m.logits.bias[...]
        return {"conv": conv, "hidden": hidden, "logits": logits, "output": logits, "block/0": first}

    def test_captured_activations_equal_a_manual_forward_pass(self):
        names = (*LAYERS, "block/0")
        out, acts = capture.apply(self.model, self.x, layers=names)
        want = self._manual()
        np.testing.assert_allclose(out, want["output"], rtol=1e-4, atol=1e-5)
        for name, act in zip(names, acts):
            np.testing.assert_allclose(act, want[name], rtol=1e-4, atol=1e-5, err_msg=name)
            self.assertEqual(act.dtype, jnp.float32)

    def test_layer_names_errors_and_nnx_jit(self):
        names = capture.layer_names(self.model, self.x)
        self.assertEqual(set(names), {"output", "conv_layer", "block/0", "block/1", "logits", "conv", "hidden"})
        with self.assertRaisesRegex(ValueError, "no layer 'conv1' in _NNXCNN; it has: .*block/0"):
            capture.apply(self.model, self.x, layers=["conv1"])
        with self.assertRaisesRegex(ValueError, "NNX module is called as it is"):
            capture.apply(self.model, self.x, layers=["conv"], mutable=True)
        jitted = nnx.jit(lambda m, x: capture.apply(m, x, layers=LAYERS))(self.model, self.x)
        chex.assert_trees_all_close(jitted, capture.apply(self.model, self.x, layers=LAYERS), atol=1e-5)
        self.assertFalse(hasattr(self.model, "conv"))  # nothing sown stays on the module


if __name__ == "__main__":
    absltest.main()
