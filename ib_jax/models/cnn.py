"""A LeNet-style convolutional network: convolution blocks, then dense layers, then the logits.

Block i: a 5x5 convolution of `channels[i]` channels ('SAME' padding), the activation, 2x2 max
pooling (stride 2). Then the dense layers of widths `hidden` with the activation, and the linear
logits. The measured layers are each block's output (after pooling), each dense layer and the
logits, named "conv1", ..., "dense1", ..., "logits"; each returned flattened per sample.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from ib_jax import errors
from ib_jax.model import ACTIVATIONS
from ib_jax.models import layers
from ib_jax.models.base import ModelInfo

KERNEL = (5, 5)


class CNN(layers.ImageModel):
    """`__call__(x_BxF)` -> (logits [B, C], acts): the flat inputs are reshaped to
    `image_shape` (H, W, C); `acts` holds each measured layer flattened, [B, D], logits last.
    `quantize_bits` and `layer_noise` act on every measured layer as the MLP's do on its
    layers (`layers.ImageModel.measured`)."""

    @nn.compact
    def __call__(self, x_BxF: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        act = ACTIVATIONS[self.activation]
        inits = layers.fan_in_inits(self.kernel_init)
        h = layers.images(x_BxF, self.image_shape)
        acts = []
        for i, c in enumerate(self.channels):
            h = layers.max_pool2(act(layers.Conv(c, KERNEL, name=f"conv{i + 1}", **inits)(h)))
            h = self.measured(len(acts), h, self.activation)
            acts.append(layers.flat(h))
        return self.head(layers.flat(h), acts, inits)


def layer_names(channels: Sequence[int], hidden: Sequence[int]) -> tuple[str, ...]:
    """The measured layers' names, which are also their parameters' modules."""
    return layers.layer_names("conv", channels, hidden)


def check_image(image_shape: tuple[int, ...], channels: Sequence[int]) -> None:
    """ConfigError when the blocks' poolings would leave no pixel of an H x W image."""
    h, w = image_shape[:2]
    if min(h, w) < 2 ** len(channels):
        raise errors.ConfigError(
            f"--model cnn halves the image in each of its {len(channels)} blocks: a {h}x{w} image holds at most "
            f"{max(min(h, w).bit_length() - 1, 0)} (give fewer --channels)"
        )


MODEL = ModelInfo(
    description="LeNet-style: a 5x5 conv + 2x2 max-pool block per --channels, then dense --hidden, then the logits",
    build=layers.builder(CNN),
    layer_names=lambda config: layer_names(config.channels, config.hidden),
    layer_modules=lambda config: tuple((name,) for name in layer_names(config.channels, config.hidden)),
    images=True,
    title="CNN",
    flag_defaults={"channels": "16,32", "hidden": "128", "activation": "relu"},
    check=lambda config, image_shape: check_image(image_shape, config.channels),
)
