"""The registry's entry of the MLP (`ib_jax.model.MLP`), the mains' default network."""

from ib_jax import model
from ib_jax.models.base import ModelInfo


def _build(config, num_classes: int, image_shape=None) -> model.MLP:
    del image_shape  # the MLP reads the flat inputs
    return model.MLP(
        hidden=config.hidden,
        num_classes=num_classes,
        activation=config.activation,
        kernel_init=config.init,
        quantize_bits=config.quantize_bits,
        layer_noise=config.noise,
    )


MODEL = ModelInfo(
    description="dense layers of widths --hidden, then the logits (the flattened inputs)",
    build=_build,
    layer_names=lambda config: tuple(f"layer {i + 1}" for i in range(len(config.hidden) + 1)),
    layer_modules=lambda config: tuple((f"Dense_{i}",) for i in range(len(config.hidden) + 1)),
    images=False,
    flag_defaults={},
)
