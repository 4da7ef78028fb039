"""What the model registry knows of a model (`ModelInfo`), and the kernels of its measured layers."""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A network the mains train, known by name (`--model`).

    `build(config, num_classes, image_shape)` makes the Linen module from the run's
    `train.TrainConfig` (its `hidden`, `channels`, `activation`, `init`, `quantize_bits`,
    `noise`); `image_shape` is the data's (H, W, C), or None for flat inputs. The module maps
    flat inputs [B, F] to (logits [B, C], the measured layers [B, D_l] each, logits last).
    `layer_names(config)` names the measured layers; `layer_modules(config)` gives, per measured
    layer, the parameter modules whose kernels produce it (the gradient statistics and |W|_F).
    `images`: the model needs image-shaped data. `flag_defaults`: the flags' values for this
    model where a user gives none (`--hidden`, `--channels`, `--activation`). `title`: its name
    in figures' titles ("" for the default MLP). `check(config, image_shape)`: ConfigError for an
    image it cannot read."""

    description: str
    build: Callable[[Any, int, tuple[int, ...] | None], nn.Module]
    layer_names: Callable[[Any], tuple[str, ...]]
    layer_modules: Callable[[Any], tuple[tuple[str, ...], ...]]
    images: bool
    flag_defaults: Mapping[str, str]
    title: str = ""
    check: Callable[[Any, tuple[int, ...] | None], None] = lambda config, image_shape: None

    def num_hidden(self, config) -> int:
        """The measured layers before the logits (those `--layer_noise` may name)."""
        return len(self.layer_names(config)) - 1


def kernel_groups(params, modules: tuple[tuple[str, ...], ...]) -> tuple[tuple[jax.Array, ...], ...]:
    """Per measured layer, the kernels (every parameter named "kernel") of its `modules`, in
    the parameters' order."""
    groups = []
    for names in modules:
        leaves = []
        for name in names:
            for path, leaf in jax.tree_util.tree_flatten_with_path(params[name])[0]:
                if getattr(path[-1], "key", None) == "kernel":
                    leaves.append(leaf)
        groups.append(tuple(leaves))
    return tuple(groups)
