"""The activations of chosen layers of any Flax module, Linen or NNX, from the forward pass the
user already runs: the first step of measuring the information plane of one's own network.

    out, acts = capture.apply(linen_module, {"params": params}, x, layers=["conv1", "Dense_0"])
    out, acts = capture.apply(nnx_module, x, layers=["conv1", "block/relu"])   # NNX holds its state

A layer is named in one of two ways:
  * a submodule's path, "/"-joined: its `__call__` output. Linen: the submodule names ("conv1",
    "Dense_0", "block/Dense_1"), taken with Flax's `capture_intermediates`. NNX: the attribute
    path ("conv1", "block/linear", "layers/0" for an `nnx.List`), taken with `nnx.capture`'s
    method outputs. "output" is the top module's own output;
  * a value the module sows: Linen in the "intermediates" collection (`self.sow("intermediates",
    "conv1_relu", x)`), NNX as an `nnx.Intermediate` (`self.sow(nnx.Intermediate, "conv1_relu",
    x)`), its path likewise ("block/conv1_relu"): the way to measure a value that no submodule
    returns, such as a layer's output after its nonlinearity.

Each activation is flattened per item to [B, D] float32 (a convolution's [B, H, W, C] becomes
[B, H*W*C]): the leading axis is the batch. `apply` is pure, so it works inside or outside
`jax.jit`, and under `jax.vmap`; an NNX module's call runs as the user's own would (its
state, such as dropout's RNG counts, advances), inside `nnx.jit` or outside it.
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


def _is_nnx(module) -> bool:
    from flax import nnx  # pylint: disable=g-import-not-at-top

    return isinstance(module, nnx.Module)


def _nnx_intermediates(module, args, kwargs) -> tuple[Any, dict[str, Any]]:
    """An NNX module's call with its submodules' outputs and sown values, as {path: values}."""
    from flax import nnx  # pylint: disable=g-import-not-at-top

    if "mutable" in kwargs or "method" in kwargs:
        raise ValueError("an NNX module is called as it is: mutable= and method= are Linen's apply arguments")
    out, captured = nnx.capture(module, nnx.Intermediate, method_outputs=nnx.Intermediate)(*args, **kwargs)
    flat = {"/".join(str(k) for k in path): variable.get_value() for path, variable in nnx.to_flat_state(captured)}
    return out, flat


def apply(module, variables, *args, layers: Sequence[str], **kwargs):
    """`module.apply(variables, *args, **kwargs)` (Linen) or `module(*args, **kwargs)` (NNX),
    with the activations of `layers`.

    Args:
      module: any Flax Linen module, or an `nnx.Module`.
      variables: a Linen module's variables ({"params": ...}, and any other collections). An NNX
        module holds its own: this is then the call's first argument (`apply(model, x, ...)`).
      *args, **kwargs: what `module.apply` takes (`method=`, `rngs=`, `mutable=`, the module's
        own keyword arguments), or what an NNX module's `__call__` takes. With `mutable`, the
        returned updates leave out "intermediates".
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
    if _is_nnx(module):
        user_mutable, state = False, None
        out, flat = _nnx_intermediates(module, (variables, *args), kwargs)
    else:
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


def layer_names(module, variables, *args, **kwargs) -> list[str]:
    """Every name `apply` accepts for this module and these inputs: each submodule's path (in
    call order; for NNX, in the order of the attribute paths), the sown values and "output".
    Traced abstractly, computing nothing (an NNX module's state is left as it was)."""
    kwargs.pop("mutable", None)
    if _is_nnx(module):
        from flax import nnx  # pylint: disable=g-import-not-at-top

        graph, state = nnx.split(module)

        def nnx_names(state, *args):
            return _nnx_intermediates(nnx.merge(graph, state), args, kwargs)[1]

        shapes = jax.eval_shape(nnx_names, state, variables, *args)
        return _names(shapes)

    def names_of(variables, *args):
        _, state = module.apply(variables, *args, capture_intermediates=True, mutable=[INTERMEDIATES], **kwargs)
        return state[INTERMEDIATES]

    shapes = jax.eval_shape(names_of, variables, *args)
    return _names(_flat(shapes))
