"""What the image models share: their initialisers, and the measured output of a layer (its own
noise, its quantization, flattened per sample as the estimators read it).

The MLP (`ib_jax.model`) keeps its own code for the same steps, unchanged bit for bit.
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ib_jax import errors, quantization
from ib_jax.model import ACTIVATIONS
from ib_jax.noise import STREAM, LayerNoise


def fan_in_inits(init: str) -> dict[str, Callable]:
    """The kernel (and bias) initialisers of `--init` for a convolution or dense kernel, its
    fan-in the product of every kernel axis but the last: "default" (Flax's LeCun normal, zero
    bias), "truncated_normal" (std 1/sqrt(fan_in) cut at two std, zero bias) or "pytorch"
    (PyTorch's default: kernel and bias uniform in +-1/sqrt(fan_in))."""
    if init == "default":
        return {}
    if init == "truncated_normal":

        def kernel(key, shape, dtype=jnp.float32):
            return nn.initializers.truncated_normal(stddev=1.0 / math.sqrt(math.prod(shape[:-1])))(key, shape, dtype)

        return {"kernel_init": kernel}
    if init == "pytorch":
        fan = {}

        def kernel(key, shape, dtype=jnp.float32):
            fan["in"] = math.prod(shape[:-1])
            bound = 1.0 / math.sqrt(fan["in"])
            return jax.random.uniform(key, shape, dtype, -bound, bound)

        def bias(key, shape, dtype=jnp.float32):  # Flax makes the kernel first
            bound = 1.0 / math.sqrt(fan["in"])
            return jax.random.uniform(key, shape, dtype, -bound, bound)

        return {"kernel_init": kernel, "bias_init": bias}
    raise errors.ConfigError(f"unknown init {init!r}")


class ImageModel(nn.Module):
    """The fields every image model takes (`cnn.CNN`, `resnet.ResNet`): conv widths `channels`,
    dense widths `hidden`, `num_classes`, the data's `image_shape` (H, W, C), the `activation`,
    `kernel_init` (`fan_in_inits`), `quantize_bits` and `layer_noise` of every measured layer
    (`measured`). A subclass writes `__call__(x_BxF) -> (logits, acts)`."""

    channels: Sequence[int]
    hidden: Sequence[int]
    num_classes: int
    image_shape: tuple[int, int, int]
    activation: str = "relu"
    kernel_init: str = "default"
    quantize_bits: int = 0
    layer_noise: LayerNoise = LayerNoise()

    def measured(self, index: int, h: jax.Array, activation: str | None) -> jax.Array:
        """Measured layer `index`'s output as the next layer and the information plane see it:
        with the network's own noise when it is a noisy hidden layer (drawn from the "noise"
        stream, when `apply` is given one), then on the quantization grid (`quantize_bits` > 0)
        of its `activation` (None: a signed, unbounded layer, the logits or a residual sum)."""
        if self.layer_noise.noisy(index, len(self.channels) + len(self.hidden)) and self.has_rng(STREAM):
            h = self.layer_noise.sample(self.make_rng(STREAM), h)
        if not self.quantize_bits:
            return h
        return quantization.quantized_output(self, index, h, activation, self.quantize_bits)

    def head(self, h_BxD: jax.Array, acts: list, inits: dict) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        """The dense layers ("dense1", ...) of widths `hidden` and the logits ("logits") on the
        flat features `h_BxD`, each measured and appended to `acts`: (logits, every measured
        layer, logits last)."""
        act = ACTIVATIONS[self.activation]
        for j, width in enumerate(self.hidden):
            h_BxD = self.measured(
                len(acts), act(nn.Dense(width, name=f"dense{j + 1}", **inits)(h_BxD)), self.activation
            )
            acts.append(h_BxD)
        logits = self.measured(len(acts), nn.Dense(self.num_classes, name="logits", **inits)(h_BxD), None)
        return logits, (*acts, logits)


def layer_names(unit: str, channels: Sequence[int], hidden: Sequence[int]) -> tuple[str, ...]:
    """The measured layers' names: "<unit>1", ... per conv width, "dense1", ..., "logits"."""
    return (*(f"{unit}{i + 1}" for i in range(len(channels))), *(f"dense{j + 1}" for j in range(len(hidden))), "logits")


def builder(model: type[ImageModel]) -> Callable:
    """The registry's `build(config, num_classes, image_shape)` of an `ImageModel` class."""

    def build(config, num_classes: int, image_shape: tuple[int, ...]) -> ImageModel:
        return model(
            channels=config.channels,
            hidden=config.hidden,
            num_classes=num_classes,
            image_shape=tuple(image_shape),
            activation=config.activation,
            kernel_init=config.init,
            quantize_bits=config.quantize_bits,
            layer_noise=config.noise,
        )

    return build


def flat(h: jax.Array) -> jax.Array:
    """[B, ...] -> [B, D]: a layer as the estimators measure it (one row per sample)."""
    return h.reshape(h.shape[0], -1)


def images(x_BxF: jax.Array, image_shape: tuple[int, ...]) -> jax.Array:
    """The flat inputs [B, H * W * C] (pixels in H, W, C order) as images [B, H, W, C]."""
    return x_BxF.reshape(x_BxF.shape[0], *image_shape)


_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(h: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME", dimension_numbers=_NHWC)


@jax.custom_vjp
def conv_same(h_BxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
    """A stride-1 'SAME' convolution of images [B, H, W, C] with an odd kernel [kh, kw, C, O],
    equal to `lax.conv_general_dilated`'s (tested), with a gradient written as forward
    convolutions and matrix products.

    Why: XLA's CPU backend runs the gradient of a convolution inside a loop (the minibatches'
    `lax.scan`, the epochs' `fori_loop`) 10 to 90 times slower than outside one (measured: a
    5x5x16x32 convolution of 100 images, 110-210 ms a gradient in a scan against 5 ms). Here the
    input's gradient is the forward convolution of the output's gradient with the flipped,
    transposed kernel, and the kernel's gradient one [C, O] product per kernel offset, both fast
    in a loop (16 ms)."""
    return _conv(h_BxHxWxC, kernel)


def _conv_forward(h, kernel):
    return _conv(h, kernel), (h, kernel)


def _conv_backward(saved, g_BxHxWxO):
    h, kernel = saved
    kh, kw = kernel.shape[:2]
    d_h = _conv(g_BxHxWxO, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
    padded = jnp.pad(h, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    height, width = h.shape[1:3]
    rows = [
        jnp.stack([jnp.einsum("bhwc,bhwo->co", padded[:, i : i + height, j : j + width], g_BxHxWxO) for j in range(kw)])
        for i in range(kh)
    ]
    return d_h, jnp.stack(rows).astype(kernel.dtype)


conv_same.defvjp(_conv_forward, _conv_backward)


class Conv(nn.Module):
    """A convolution of odd kernel size, 'SAME' padding, stride 1 or 2 (the stride-1 output at
    every second pixel from the first: a stride-2 convolution padded on both sides), with a bias;
    parameters named and shaped as Flax's `nn.Conv` ("kernel" [kh, kw, C, O], "bias" [O]). Its
    gradient is fast inside loops on the CPU (`conv_same`)."""

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"odd kernel sizes only, got {self.kernel_size}")
        shape = (*self.kernel_size, h.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        if self.strides == 2 and self.kernel_size == (1, 1):
            h = h[:, ::2, ::2]  # a 1 x 1 kernel: subsample first
        out = conv_same(h, kernel)
        if self.strides == 2 and self.kernel_size != (1, 1):
            out = out[:, ::2, ::2]
        return out + bias


def max_pool2(h: jax.Array) -> jax.Array:
    """2 x 2 max pooling, stride 2, of [B, H, W, C] (an odd last row or column dropped, as
    'VALID' pooling does), as a reshape and a max (whose gradient, unlike `nn.max_pool`'s, is fast
    inside loops on the CPU)."""
    b, height, width, c = h.shape
    h = h[:, : height // 2 * 2, : width // 2 * 2]
    return h.reshape(b, height // 2, 2, width // 2, 2, c).max(axis=(2, 4))
