"""The activations of chosen layers of any Flax Linen module, from the forward pass the user
already runs: the first step of measuring the information plane of one's own network.

A layer is named in one of two ways:
  * a submodule's path, "/"-joined ("conv1", "Dense_0", "block/Dense_1"): its `__call__`
    output, taken with Flax's `capture_intermediates`; "output" is the top module's own output;
  * a value the module sows in the "intermediates" collection (`self.sow("intermediates",
    "conv1_relu", x)`), its path likewise ("block/conv1_relu"): the way to measure a value that
    no submodule returns, such as a layer's output after its nonlinearity.

Each activation is flattened per item to [B, D] float32 (a convolution's [B, H, W, C] becomes
[B, H*W*C]): the leading axis is the batch. `apply` is pure, so it works inside or outside
`jax.jit`, and under `jax.vmap`.
"""

from collections.abc import Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

INTERMEDIATES = "intermediates"
OUTPUT = "output"


def _check_layers(layers: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layers, str):
        raise ValueError(f"layers must be a sequence of names, got the string {layers!r}")
    layers = tuple(layers)
    if not layers:
        raise ValueError("give at least one layer to capture")
    bad = [name for name in layers if not isinstance(name, str) or not name]
    if bad:
        raise ValueError(f"layer names must be non-empty strings, got {bad}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers are listed twice: {', '.join(layers)}")
    return layers


def _with_intermediates(mutable) -> Any:
    if mutable is True:
        return True
    if mutable is False or mutable is None:
        return [INTERMEDIATES]
    if isinstance(mutable, str):
        mutable = [mutable]
    return [*mutable, INTERMEDIATES] if INTERMEDIATES not in mutable else list(mutable)


def _flat(intermediates) -> dict[str, Any]:
    """{"conv1/__call__": (y,), "conv1_relu": (y,), ...} from the nested collection."""
    return flax.traverse_util.flatten_dict(flax.core.unfreeze(intermediates), sep="/")


def _names(flat: dict[str, Any]) -> list[str]:
    names = []
    for key in flat:
        if key == "__call__":
            names.append(OUTPUT)
        elif key.endswith("/__call__"):
            names.append(key[: -len("/__call__")])
        else:
            names.append(key)
    return names


def apply(module: nn.Module, variables, *args, layers: Sequence[str], **kwargs):
    """`module.apply(variables, *args, **kwargs)`, with the activations of `layers`.

    Args:
      module: any Flax Linen module.
      variables: its variables ({"params": ...}, and any other collections).
      *args, **kwargs: what `module.apply` takes (`method=`, `rngs=`, `mutable=`, the module's
        own keyword arguments). With `mutable`, the returned updates leave out "intermediates".
      layers: the names of the layers to capture (see the module docstring), in the order of
        the returned tuple.

    Returns:
      `(out, acts)`: `out` exactly as `module.apply` returns it, and `acts` a tuple with one
      float32 [B, D] array per layer.

    Raises:
      ValueError: a name that the module does not produce (the message lists those it does), a
        layer produced more than once (a module called twice: sow the value to measure under a
        name of its own), or an output that is not an array.
    """
    layers = _check_layers(layers)
    user_mutable = kwargs.pop("mutable", False)
    wanted = set(layers)

    def keep(mdl: nn.Module, method_name: str) -> bool:
        path = "/".join(mdl.path)
        return method_name == "__call__" and (path in wanted or (not path and OUTPUT in wanted))

    out, state = module.apply(
        variables, *args, capture_intermediates=keep, mutable=_with_intermediates(user_mutable), **kwargs
    )
    state = flax.core.unfreeze(state)
    flat = _flat(state.pop(INTERMEDIATES, {}))
    acts = []
    for name in layers:
        values = flat.get("__call__" if name == OUTPUT else f"{name}/__call__", flat.get(name))
        if values is None:
            known = layer_names(module, variables, *args, **kwargs)
            raise ValueError(f"no layer {name!r} in {type(module).__name__}; it has: {', '.join(known)}")
        if len(values) != 1:
            raise ValueError(
                f"layer {name!r} was produced {len(values)} times in one forward pass; sow the value "
                "to measure under a name of its own"
            )
        value = values[0]
        if not isinstance(value, jax.Array) or value.ndim < 1:
            raise ValueError(
                f"layer {name!r} is not an array with a batch axis (got {type(value).__name__}); "
                "sow the array to measure"
            )
        acts.append(jnp.reshape(value, (value.shape[0], -1)).astype(jnp.float32))
    if user_mutable is False or user_mutable is None:
        return out, tuple(acts)
    return (out, state), tuple(acts)


def layer_names(module: nn.Module, variables, *args, **kwargs) -> list[str]:
    """Every name `apply` accepts for this module and these inputs: each submodule's path (in
    call order), the sown values and "output". Traced abstractly, computing nothing."""
    kwargs.pop("mutable", None)

    def names_of(variables, *args):
        _, state = module.apply(variables, *args, capture_intermediates=True, mutable=[INTERMEDIATES], **kwargs)
        return state[INTERMEDIATES]

    shapes = jax.eval_shape(names_of, variables, *args)
    return _names(_flat(shapes))
