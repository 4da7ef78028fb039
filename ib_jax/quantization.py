"""Quantized layers whose information needs no estimator (Lorenzen, Igel & Nielsen, ICLR 2022).

Every layer's output is rounded to one of 2**k levels on a grid over [lo, hi], in training and in
every measurement, so each layer is a discrete, deterministic function of X and its information
is an exact count of distinct rows (the `exact` estimator).

    q(a) = lo + s * round((clip(a, lo, hi) - lo) / s),   s = (hi - lo) / (2**k - 1)

The gradient passes straight through inside [lo, hi] and is zero outside (the straight-through
estimator of quantization-aware training).

Ranges: bounded activations use their own range (tanh and softsign [-1, 1], sigmoid [0, 1]);
relu and softplus use [0, r]; linear layers and the logits use [-r, r]. The range r of such an
unbounded layer is part of the network's state (the "quantization" collection), tracked as
quantization-aware training does (Jacob et al. 2018): at initialisation r is the largest |a| of
the layer on the training inputs (each layer calibrated on the quantized layers before it); after
every epoch, r <- 0.9 r + 0.1 m, with m the largest |a| the epoch's training batches produced
before quantization. r is fixed within an epoch, so training and the measurement at an epoch use
one grid, and it is checkpointed with the parameters.
"""

import functools

import jax
import jax.numpy as jnp

BITS = (2, 16)  # the accepted range of k
RANGE_MOMENTUM = 0.9  # r <- RANGE_MOMENTUM r + (1 - RANGE_MOMENTUM) m after each epoch
MIN_RANGE = 1e-6  # a dead unbounded layer keeps a non-degenerate grid
COLLECTION = "quantization"  # the ranges r, in the variables
STATS = "quantization_stats"  # the largest |a| of a forward pass, sown when mutable (named as the ranges)

# Fixed ranges of bounded activations; None: [0, r] (non-negative) or [-r, r] (signed), r tracked.
BOUNDED = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
NON_NEGATIVE = ("relu", "softplus")


def check_bits(bits: int) -> None:
    """ValueError unless `bits` is 0 (off) or in BITS."""
    if bits != 0 and not BITS[0] <= bits <= BITS[1]:
        raise ValueError(f"quantize_bits must be 0 (off) or {BITS[0]}..{BITS[1]}, got {bits}")


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def quantize(a: jax.Array, lo, hi, bits: int) -> jax.Array:
    """`a` rounded to the 2**bits levels lo, lo + s, ..., hi (s = (hi - lo) / (2**bits - 1)),
    values outside [lo, hi] to the nearest end. The gradient is straight-through inside [lo, hi]
    and zero outside; none flows to lo and hi. Use it in one's own Flax module on a layer's
    output, then measure that layer with the `exact` estimator."""
    step = (hi - lo) / (2**bits - 1)
    levels = jnp.round((jnp.clip(a, lo, hi) - lo) / step)
    return jnp.asarray(lo + step * levels, a.dtype)


@quantize.defjvp
def _quantize_jvp(bits, primals, tangents):
    a, lo, hi = primals
    inside = (a >= lo) & (a <= hi)
    return quantize(a, lo, hi, bits), jnp.where(inside, tangents[0], jnp.zeros_like(tangents[0]))


def layer_bounds(activation: str | None, r) -> tuple:
    """(lo, hi) of a layer with `activation` (None: the linear logits) and tracked range r."""
    if activation in BOUNDED:
        return BOUNDED[activation]
    if activation in NON_NEGATIVE:
        return 0.0, r
    return -r, r


def tracks_range(activation: str | None) -> bool:
    """Whether a layer with `activation` (None: the logits) has a tracked range r."""
    return activation not in BOUNDED


def updated_ranges(ranges, epoch_max):
    """The ranges after an epoch: r <- RANGE_MOMENTUM r + (1 - RANGE_MOMENTUM) m, floored."""
    return jax.tree.map(
        lambda r, m: jnp.maximum(RANGE_MOMENTUM * r + (1.0 - RANGE_MOMENTUM) * m, MIN_RANGE), ranges, epoch_max
    )


def quantized_output(module, index: int, h: jax.Array, activation: str | None, bits: int) -> jax.Array:
    """Layer `index`'s output `h` on its grid, inside a Flax Linen `module`'s call: a tracked range
    r lives in the module's `COLLECTION` as "range_<index>", calibrated at `init` on its inputs,
    and the layer's largest |a| is sown in `STATS` for the training step (`updated_ranges`)."""
    r = None
    if tracks_range(activation):
        largest = jnp.max(jnp.abs(h))
        r = module.variable(COLLECTION, f"range_{index}", lambda: jnp.maximum(largest, MIN_RANGE)).value
        if not module.is_initializing():  # `init` returns parameters and ranges, no statistics
            module.sow(STATS, f"range_{index}", largest, reduce_fn=lambda _, x: x, init_fn=lambda: 0.0)
    lo, hi = layer_bounds(activation, r)
    return quantize(h, lo, hi, bits)
