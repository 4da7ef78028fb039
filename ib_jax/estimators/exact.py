"""Exact information of a discrete layer: distinct rows of the activation values themselves.

With every input distinct and the network deterministic, I(X;T) = H(T) and
I(T;Y) = H(T) - H(T|Y) = H(T) + H(Y) - H(T,Y), where T's symbols are the distinct rows of the
activations, compared bitwise (float32 bit patterns, -0.0 taken as +0.0), with no bins. On a
quantized network (`ib_jax.quantization`) these are the network's exact values: no estimator
chose a resolution. On a float network they are what float32 resolution gives: nearly every
sample has its own row, so I(X;T) is log2 N and I(T;Y) is H(Y) on the training set.

Exact means that no hash collision can change a count. Rows are hashed to 64 bits as the fixed
binning hashes its codes (`binned.row_ids`); one sort of (hash, label, row index) keys then orders
the rows so that equal hashes are adjacent, and every pair of adjacent rows with equal hashes is
compared element by element. If any two differ (a collision), the item's
layer is ranked again exactly, column by column (`binned.row_rank`), before anything is counted.
An item with a NaN or infinite activation gives NaN.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from ib_jax.estimators import binned, common, plugin

_CHUNK_ELEMENTS = 1 << 23  # activations hashed and compared at once (the gathers' temporaries)


def bit_codes(acts: jax.Array) -> jax.Array:
    """int32 codes [..., D]: the float32 bit patterns of the activations, -0.0 as +0.0, so that
    equal codes are equal values."""
    a = acts.astype(jnp.float32)
    return jax.lax.bitcast_convert_type(jnp.where(a == 0, jnp.float32(0), a), jnp.int32)


def _spread(codes: jax.Array) -> jax.Array:
    """A bijection of int32 codes (murmur3's 32-bit finaliser) that spreads every bit over the
    word. Float bit patterns often differ only in high bits (an 8-bit grid leaves the low mantissa
    bits zero), and a multilinear hash modulo 2**32 sees a difference of 2**k only through the
    low 32 - k bits of its weights: spread first, the row hash keeps all 64 bits."""
    x = codes.astype(jnp.uint32)
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    return (x ^ (x >> 16)).astype(jnp.int32)


def row_hash(codes_CxNxD: jax.Array) -> jax.Array:
    """uint64 [C, N] hashes of rows of int32 codes (equal rows, equal hashes)."""
    return binned.row_ids(_spread(codes_CxNxD), max_code=2**31)


_PACKED_BITS = 24  # label and row-index bits packed below the hash in one sort key, at most


def _sorted_keys(hashes_CxN: jax.Array, labels_CxN: jax.Array, label_bits: int):
    """The rows' keys sorted so that equal hashes are adjacent, each key's hash part (equal for
    equal rows) and (hash, label) part, and the rows' order. Where the label and the row index
    fit in `_PACKED_BITS` bits they are packed below the hash and one single-operand sort does
    it (XLA's CPU sort is several times faster without a payload; the hash keeps 40+ bits and a
    rare collision is caught like any other); else the index rides as a payload."""
    c, n = hashes_CxN.shape
    index_bits = max(1, (n - 1).bit_length())
    if label_bits + index_bits <= _PACKED_BITS:
        low = label_bits + index_bits
        iota = jnp.arange(n, dtype=jnp.uint64)
        keys = jnp.sort((hashes_CxN << low) | (labels_CxN << index_bits) | iota, axis=1)
        order = (keys & jnp.uint64((1 << index_bits) - 1)).astype(jnp.int32)
        return keys >> low, keys >> index_bits, order
    iota = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (c, n))
    keys, order = jax.lax.sort(((hashes_CxN << label_bits) | labels_CxN, iota), dimension=1, num_keys=1)
    return keys >> label_bits, keys, order


def _counted(acts_CxNxD: jax.Array, labels, num_classes: int, bias_correction: str = "none"):
    """(I(X;T), I(T;Y), collided) [C] from hashes, with each item's collisions detected."""
    c, n, _ = acts_CxNxD.shape
    bad = ~common.finite_items(acts_CxNxD)
    codes = jnp.where(bad[:, None, None], 0, bit_codes(acts_CxNxD))
    bits = binned.label_bits(num_classes)
    labels_CxN = jnp.broadcast_to(labels, (c, n)).astype(jnp.uint64)
    t_keys, ty_keys, order = _sorted_keys(row_hash(codes), labels_CxN, bits)
    rows = jnp.take_along_axis(codes, order[..., None], axis=1)  # equal hashes adjacent
    same_hash = t_keys[:, 1:] == t_keys[:, :-1]
    same_row = jnp.all(rows[:, 1:] == rows[:, :-1], axis=-1)
    collided = jnp.any(same_hash & ~same_row, axis=1)
    return (*binned.information_from_sorted(t_keys, ty_keys, bad, labels, num_classes, bias_correction), collided)


def _ranked(acts_CxNxD: jax.Array, labels, num_classes: int, bias_correction: str = "none"):
    """(I(X;T), I(T;Y)) [C] from the exact column-by-column ranking (no hash)."""
    bad = ~common.finite_items(acts_CxNxD)
    ids = binned.row_rank(jnp.where(bad[:, None, None], 0, bit_codes(acts_CxNxD)))
    return binned.information_from_ids(ids, bad, labels, num_classes, bias_correction)


@dataclasses.dataclass(frozen=True)
class Exact(plugin.PlugIn, common.Estimator):
    """The exact count of distinct activation rows (see the module docstring); a
    `bias_correction` (`corrections.CORRECTIONS`) corrects the plug-in entropies of the finite
    sample (NSB over an unbounded alphabet)."""

    bias_correction: str = "none"

    def __post_init__(self):
        binned.check_bias_correction(self.bias_correction)

    supports_exact = True  # method="exact" ranks every item without hashing (for checks)

    @property
    def name(self) -> str:
        return "exact"

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        chunk = _CHUNK_ELEMENTS // (acts_BxNxD.shape[1] * acts_BxNxD.shape[2])
        per_item = () if labels.ndim == 1 else (labels,)

        def run(fn):
            if per_item:
                return common.in_chunks(
                    lambda a, y: fn(a, y, num_classes, self.bias_correction), acts_BxNxD, chunk, labels
                )
            return common.in_chunks(lambda a: fn(a, labels, num_classes, self.bias_correction), acts_BxNxD, chunk)

        if exact:
            return run(_ranked)
        i_xt, i_ty, collided = run(_counted)
        return jax.lax.cond(jnp.any(collided), lambda: run(_ranked), lambda: (i_xt, i_ty))

    def cells(self, num_units: int) -> float:
        """T's alphabet for NSB: unbounded (any float32 value)."""
        del num_units
        return math.inf

    def ids(self, acts_BxNxD, exact: bool):
        """Row ids for the confidence and the convergence subsets (`plugin.PlugIn`): the row hashes
        (`row_hash`; with `exact`, the column-by-column ranks). A collision, about N**2 / 2**65 per
        item, would merge two symbols there only, never in the value itself (checked row by row)."""
        bad = ~common.finite_items(acts_BxNxD)
        codes = jnp.where(bad[:, None, None], 0, bit_codes(acts_BxNxD))
        return (binned.row_rank(codes) if exact else row_hash(codes)), bad


def exact_information(
    acts: jax.Array, labels: jax.Array, *, num_classes: int | None = None, method: str = "hash"
) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of one layer's activations `acts` [..., N, D], counted exactly
    over the distinct rows of the values themselves (no bins).

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts` (a labelling per item).
      num_classes: inferred from concrete labels, required inside jit.
      method: "hash" (hashes verified row by row; exact) or "exact" (column-by-column ranking
        only: slower, for checks).

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    return common.one_layer(acts, labels, Exact(), num_classes=num_classes, method=method)
