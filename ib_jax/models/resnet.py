"""A small pre-activation ResNet (He et al., "Identity mappings in deep residual networks", 2016).

A 3x3 convolution of `channels[0]` channels (the stem); then one stage per entry of `channels`,
each of `BLOCKS` residual blocks; the first block of every stage after the first halves H and W
(stride 2). A block is norm -> activation -> 3x3 conv -> norm -> activation -> 3x3 conv, added
to its input (through a 1x1 convolution of the pre-activated input where the shape changes).
After the last stage: norm -> activation -> global average pooling -> the dense layers of widths
`hidden` (none by default) -> the linear logits. With the default channels 16, 32, 64 this is
ResNet-8 (1 + 3 x 2 convolutions + the logits).

The norm is GroupNorm (groups of gcd(C, 8)), not BatchNorm: a measured layer is then a function
of its own sample, as the information plane assumes (BatchNorm's training mode mixes the samples
of a batch into each one's T), the network has no running statistics to carry as a second,
mutable state through the vmapped seeds and checkpoints, and training and evaluation are the
same function.

The measured layers are each stage's output (the residual sum, signed and unbounded: quantized
on [-r, r]), each dense layer and the logits: "stage1", ..., "dense1", ..., "logits".
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ib_jax.model import ACTIVATIONS
from ib_jax.models import layers
from ib_jax.models.base import ModelInfo

BLOCKS = 1  # residual blocks per stage


def _norm(channels: int, name: str | None = None) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(channels, 8), name=name)


class Block(nn.Module):
    """A pre-activation residual block of `channels` channels, `stride` 1 or 2."""

    channels: int
    stride: int
    activation: Callable
    inits: dict

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        pre = self.activation(_norm(h.shape[-1])(h))
        shortcut = h
        if self.stride != 1 or h.shape[-1] != self.channels:
            shortcut = layers.Conv(self.channels, (1, 1), self.stride, name="shortcut", **self.inits)(pre)
        y = layers.Conv(self.channels, (3, 3), self.stride, name="Conv_0", **self.inits)(pre)
        y = self.activation(_norm(self.channels)(y))
        y = layers.Conv(self.channels, (3, 3), name="Conv_1", **self.inits)(y)
        return shortcut + y


class ResNet(layers.ImageModel):
    """`__call__(x_BxF)` -> (logits [B, C], acts), as `cnn.CNN`: the flat inputs reshaped to
    `image_shape` (H, W, C); each measured layer flattened [B, D], logits last."""

    @nn.compact
    def __call__(self, x_BxF: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        act = ACTIVATIONS[self.activation]
        inits = layers.fan_in_inits(self.kernel_init)
        h = layers.images(x_BxF, self.image_shape)
        h = layers.Conv(self.channels[0], (3, 3), name="stem", **inits)(h)
        acts = []
        for s, c in enumerate(self.channels):
            for b in range(BLOCKS):
                stride = 2 if s > 0 and b == 0 else 1
                h = Block(c, stride, act, inits, name=f"stage{s + 1}_block{b + 1}")(h)
            h = self.measured(len(acts), h, None)
            acts.append(layers.flat(h))
        h = jnp.mean(act(_norm(self.channels[-1], name="final_norm")(h)), axis=(1, 2))
        return self.head(h, acts, inits)


def layer_names(channels: Sequence[int], hidden: Sequence[int]) -> tuple[str, ...]:
    """The measured layers' names."""
    return layers.layer_names("stage", channels, hidden)


def layer_modules(channels: Sequence[int], hidden: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    """Per measured layer, the modules whose kernels produce it (the stem belongs to stage 1;
    the last norm has no kernel)."""
    stages = tuple(
        (*(("stem",) if s == 0 else ()), *(f"stage{s + 1}_block{b + 1}" for b in range(BLOCKS)))
        for s in range(len(channels))
    )
    return (*stages, *((f"dense{j + 1}",) for j in range(len(hidden))), ("logits",))


MODEL = ModelInfo(
    description="pre-activation ResNet with GroupNorm: a stage of residual blocks per --channels (16,32,64: "
    "ResNet-8), global average pooling, dense --hidden (none by default), the logits",
    build=layers.builder(ResNet),
    layer_names=lambda config: layer_names(config.channels, config.hidden),
    layer_modules=lambda config: layer_modules(config.channels, config.hidden),
    images=True,
    title="ResNet",
    flag_defaults={"channels": "16,32,64", "hidden": "", "activation": "relu"},
)
