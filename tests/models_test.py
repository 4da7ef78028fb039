"""The model registry: each model's shapes and named layers, its kernels, quantization and noise,
and the gradient statistics of any model against the MLP's own."""

import pathlib
import tempfile

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from ib_jax import data, errors, models, noise, train
from ib_jax.models import layers

IMAGE = (8, 8, 1)
_RNG = np.random.default_rng(0)
X = jnp.asarray(_RNG.uniform(size=(12, 64)).astype(np.float32))
Y = jnp.asarray(_RNG.integers(0, 3, 12).astype(np.int32))
CONFIGS = {
    "cnn": train.TrainConfig(model="cnn", channels=(2, 3), hidden=(5,), activation="relu"),
    "resnet": train.TrainConfig(model="resnet", channels=(2, 4), hidden=(), activation="relu"),
}
WIDTHS = {"cnn": (4 * 4 * 2, 2 * 2 * 3, 5, 3), "resnet": (8 * 8 * 2, 4 * 4 * 4, 3)}
NAMES = {"cnn": ("conv1", "conv2", "dense1", "logits"), "resnet": ("stage1", "stage2", "logits")}


class ModelsTest(chex.TestCase):
    @parameterized.parameters("cnn", "resnet")
    def test_shapes_and_named_layers(self, name):
        config = CONFIGS[name]
        state = train.create_state(jax.random.key(0), config, 64, 3, image_shape=IMAGE)
        logits, acts = state.apply_fn({"params": state.params}, X)
        chex.assert_shape(logits, (12, 3))
        self.assertEqual(tuple(a.shape[1] for a in acts), WIDTHS[name])
        self.assertEqual(tuple(train.layer_widths(config, 3, IMAGE)), WIDTHS[name])
        self.assertEqual(train.layer_names(config), NAMES[name])
        np.testing.assert_array_equal(acts[-1], logits)
        # The first layer is the input's image: sample i's layer depends on sample i only.
        _, alone = state.apply_fn({"params": state.params}, X[:1])
        np.testing.assert_allclose(alone[0], acts[0][:1], rtol=1e-5, atol=1e-6)

    def test_cnn_reads_the_pixels_in_h_w_c_order(self):
        config = train.TrainConfig(model="cnn", channels=(1,), hidden=(), activation="linear")
        net = train.make_model(config, 2, (4, 4, 2))
        x = jnp.arange(32, dtype=jnp.float32)[None]
        params = net.init(jax.random.key(0), x)["params"]
        kernel = np.zeros((5, 5, 2, 1), np.float32)
        kernel[2, 2, 1, 0] = 1.0  # channel 1 of the centre pixel
        params = {**params, "conv1": {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(1)}}
        _, (conv, _) = net.apply({"params": params}, x)
        image = np.arange(32).reshape(4, 4, 2)[..., 1]
        pooled = image.reshape(2, 2, 2, 2).max(axis=(1, 3))
        np.testing.assert_array_equal(np.asarray(conv).reshape(2, 2), pooled)

    def test_convolution_and_pooling_equal_laxs_with_their_gradients(self):
        rng = np.random.default_rng(1)
        h = jnp.asarray(rng.normal(size=(3, 7, 6, 2)).astype(np.float32))
        for shape, stride in (((5, 5), 1), ((3, 3), 2), ((1, 1), 2)):
            conv = layers.Conv(4, shape, stride)
            bias = jnp.asarray(rng.normal(size=4).astype(np.float32))
            kernel = conv.init(jax.random.key(0), h)["params"]["kernel"]
            pad = [(k // 2, k // 2) for k in shape]

            def ours(h, k, conv=conv, bias=bias):
                return jnp.sum(jnp.sin(conv.apply({"params": {"kernel": k, "bias": bias}}, h)))

            def theirs(h, k, pad=pad, stride=stride, bias=bias):
                dn = ("NHWC", "HWIO", "NHWC")
                return jnp.sum(
                    jnp.sin(jax.lax.conv_general_dilated(h, k, (stride, stride), pad, dimension_numbers=dn) + bias)
                )

            np.testing.assert_allclose(ours(h, kernel), theirs(h, kernel), rtol=1e-5)
            grads = [jax.grad(f, argnums=(0, 1))(h, kernel) for f in (ours, theirs)]
            chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(layers.max_pool2(h), nn.max_pool(h, (2, 2), strides=(2, 2)))

    def test_kernel_groups(self):
        state = train.create_state(jax.random.key(0), CONFIGS["resnet"], 64, 3, image_shape=IMAGE)
        groups = train.kernel_groups(state.params, CONFIGS["resnet"])
        # stage 1: the stem and the block's two 3x3 convolutions; stage 2 adds the 1x1 shortcut.
        self.assertEqual([len(g) for g in groups], [3, 3, 1])
        self.assertEqual(groups[0][-1].shape, (3, 3, 2, 2))
        want = [np.sqrt(sum(np.sum(np.square(np.asarray(k))) for k in g)) for g in groups]
        np.testing.assert_allclose(train.weight_norms(state.params, CONFIGS["resnet"]), want, rtol=1e-6)

    @parameterized.parameters("cnn", "resnet")
    def test_quantized_layers_sit_on_their_grids(self, name):
        config = CONFIGS[name]
        quantized = train.TrainConfig(**{**config.__dict__, "quantize_bits": 3})
        state = train.create_state(jax.random.key(1), quantized, 64, 3, X, image_shape=IMAGE)
        _, acts = state.apply_fn(train.variables(state), X)
        for a in acts:
            self.assertLessEqual(len(np.unique(np.asarray(a))), 2**3)
        self.assertEqual(len(state.quantization), len(acts))  # relu, residual sums and logits all track r

    @parameterized.parameters("cnn", "resnet")
    def test_noise_on_the_named_hidden_layers_only(self, name):
        config = train.TrainConfig(**{**CONFIGS[name].__dict__, "layer_noise": "additive:0.5", "noisy_layers": (2,)})
        state = train.create_state(jax.random.key(0), config, 64, 3, image_shape=IMAGE)
        _, quiet = state.apply_fn({"params": state.params}, X)
        _, noisy = state.apply_fn({"params": state.params}, X, rngs={noise.STREAM: jax.random.key(3)})
        np.testing.assert_array_equal(quiet[0], noisy[0])
        residual = np.asarray(noisy[1] - quiet[1])
        self.assertAlmostEqual(float(residual.std()), 0.5, delta=0.1)

    def test_any_models_gradient_statistics_equal_the_mlps_own(self):
        # The generic path (a second pass over the parts) against the MLP's Gram-matrix path.
        for reduction in ("sum", "mean"):
            config = train.TrainConfig(hidden=(7, 5), loss_reduction=reduction)
            state = train.create_state(jax.random.key(0), config, 64, 3)
            mlp = train._full_batch_statistics(state, (X, Y), reduction, 4)
            parts = train._parts_statistics(state, (X, Y), reduction, 4, None, config)
            for key in ("grad_mean_norm", "grad_std_norm"):
                np.testing.assert_allclose(parts[1][key], mlp[1][key], rtol=1e-4, err_msg=key)
            chex.assert_trees_all_close(parts[0], mlp[0], rtol=1e-5)

    def test_refusals_are_config_errors(self):
        with self.assertRaisesRegex(errors.ConfigError, "channels applies to the image models"):
            train.TrainConfig(channels=(4,))
        with self.assertRaisesRegex(errors.ConfigError, "needs --channels"):
            train.TrainConfig(model="cnn", channels=())
        with self.assertRaisesRegex(errors.ConfigError, "unknown model 'vgg'"):
            train.TrainConfig(model="vgg")
        with self.assertRaisesRegex(errors.ConfigError, "has 3 hidden layers"):
            train.TrainConfig(model="cnn", channels=(2, 2), hidden=(4,), layer_noise="additive:0.1", noisy_layers=(4,))
        with self.assertRaisesRegex(errors.ConfigError, "needs images"):
            models.check_data("cnn", None, "12-bit task", CONFIGS["cnn"])
        with self.assertRaisesRegex(errors.ConfigError, "halves the image in each of its 2 blocks: a 3x3"):
            models.check_data("cnn", (3, 3, 1), "x", CONFIGS["cnn"])
        models.check_data("resnet", (3, 3, 1), "x", CONFIGS["resnet"])  # strides round up: any size

    def test_npz_items_keep_their_image_shape(self):
        path = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
        x = _RNG.uniform(size=(6, 5, 4)).astype(np.float32)
        np.savez(path, x_train=x, y_train=np.arange(6) % 2, x_test=x, y_test=np.arange(6) % 2)
        ds = data.load_npz(path)
        self.assertEqual(ds.image_shape, (5, 4, 1))
        np.testing.assert_array_equal(ds.x_train.reshape(6, 5, 4), x)
