"""The networks the mains train, by name (`--model`): one module each and one line in `MODELS`.

    mlp     dense layers (`ib_jax.model.MLP`), the default
    cnn     LeNet-style convolution blocks, then dense layers (`cnn.CNN`)
    resnet  a small pre-activation ResNet with GroupNorm (`resnet.ResNet`)

A model is a Flax Linen module from flat inputs [B, F] (an image model reshapes them to the
data's H x W x C) to (logits, the measured layers flattened per sample, logits last), described
by a `ModelInfo`: see `base.ModelInfo` for what a new one provides.
"""

from ib_jax import errors
from ib_jax.models import cnn, mlp, resnet
from ib_jax.models.base import ModelInfo, kernel_groups

MODELS: dict[str, ModelInfo] = {"mlp": mlp.MODEL, "cnn": cnn.MODEL, "resnet": resnet.MODEL}


def info(name: str) -> ModelInfo:
    """The registry's entry of `name`; ConfigError, one line, for an unknown one."""
    if name not in MODELS:
        raise errors.ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def check_data(name: str, image_shape: tuple[int, ...] | None, dataset_name: str, config) -> None:
    """ConfigError, one line, when model `name` cannot read the data: an image model needs
    image-shaped inputs (H x W x C)."""
    model = info(name)
    if model.images and image_shape is None:
        raise errors.ConfigError(
            f"--model {name} needs images, and the inputs of {dataset_name} have no image shape (use --model mlp, or "
            "an npz whose x_train items are H x W or H x W x C)"
        )
    if image_shape is not None:
        model.check(config, image_shape)


def rows_at_once(name: str, backend: str) -> int:
    """How many rows a device runs at once by default (`--seeds_per_device` 0): all (0), but one
    for an image model on a CPU. Rows vmapped through a convolution become one grouped
    convolution (each row its own kernels), which XLA's CPU backend runs about 5x slower than the
    rows one after another (a CNN epoch of 1,000 MNIST images, 10 rows: 14.7 s vmapped, 2.9 s in
    turns, 0.32 s one row alone)."""
    return 1 if info(name).images and backend == "cpu" else 0


__all__ = ["MODELS", "ModelInfo", "check_data", "info", "kernel_groups", "rows_at_once"]
