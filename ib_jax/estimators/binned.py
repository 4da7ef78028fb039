"""Binned mutual information between a layer T, the input X and the label Y, in bits.

Every input is distinct and the network deterministic, so I(X;T) = H(T) and
I(T;Y) = H(T) + H(Y) - H(T,Y), where T is the layer's discretised pattern: one symbol per
distinct row of bin codes. Both are plug-in estimates, bounded by log2 N.

Binnings (exactly one):
  * `bin_size=b`: code = floor(a / b), no range limits (the reimplemented project, ibsgd).
  * `num_bins=n, value_range=(lo, hi)`: n equal-width bins covering [lo, hi],
    code = clip(floor((a - lo) * (n / (hi - lo))), 0, n - 1), so values outside the range go to
    the nearest end bin and a == hi falls in the top bin. IDNNs instead builds 30 *edges*
    (`linspace(-1, 1, 30)`, 29 intervals) and `np.digitize`s, which gives values below -1 a bin of
    their own; its binning of a tanh layer is ours with `num_bins=29, value_range=(-1, 1)`.

How (all on the device, jitted, no host round trip): each row of codes is hashed to 64 bits by
an integer matrix product with random odd 32-bit weights (two 32-bit multilinear lanes; int8
operands when the layer's codes span at most 256 values, else int32; both wrap modulo 2**32),
mixed by the bijective splitmix64 finaliser. The label goes into the key's low
`ceil(log2 num_classes)` bits, so a single sort of one uint64 key per row yields both H(T) (runs
of equal high bits) and H(T,Y) (runs of equal keys). Rows that differ in a single code never
collide; other distinct rows collide with probability about N**2 / 2**(65 - label_bits) per call
(1.6e-9 for N = 60,000 and 10 classes). `method="exact"` replaces the hash by an exact
column-by-column ranking (one sort per unit: slow, for checks).

Activations that are NaN or infinite, or whose codes do not fit in int32 (|a / b| >= 2**31),
give NaN for that item (never a silent number).
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators import common, corrections
from ib_jax.estimators.plugin import PlugIn, label_bits  # noqa: F401  (binned.label_bits: exact reads it)

_CHUNK_ELEMENTS = 1 << 24  # activations hashed at once per layer (bounds the temporaries)
_INT8_MAX_UNITS = 1 << 17  # int8 products summed in int32 stay exact below this width
_NARROW_UNITS = 128  # narrower layers hash elementwise, wider ones by a matrix product
_CONTRACT_UNITS = (((2,), (0,)), ((), ()))  # [C, N, D] x [D, K] -> [C, N, K]
_SEED = 0x1B_1A_C5
# Integer products are exact on every backend; the precision is stated anyway, so that no
# backend's default (TF32 or bf16 passes for floats on GPUs and TPUs) can apply to a hash.
_EXACT = jax.lax.Precision.HIGHEST


BIAS_CORRECTIONS = corrections.CORRECTIONS
check_bias_correction = corrections.check


def grid_cells(num_bins: int | None, num_units: int) -> float:
    """The cells of a grid of `num_bins` bins per unit over `num_units` units, num_bins ** D (the
    alphabet NSB's prior spreads over); inf for an unbounded grid (`num_bins` None) or one of
    at least 2**53 cells."""
    if num_bins is None or num_units * math.log2(max(num_bins, 1)) >= 53:
        return math.inf
    return float(num_bins**num_units)


@dataclasses.dataclass(frozen=True)
class Binning(PlugIn, common.Estimator):
    """The fixed binning estimator: `Binning(bin_size=0.5)` or
    `Binning(num_bins=30, value_range=(-1.0, 1.0))`; `bias_correction` corrects each plug-in
    entropy (`corrections.CORRECTIONS`: "miller_madow" adds (m - 1) / (2 N ln 2), m its occupied
    cells; NSB's alphabet is the grid's num_bins ** D cells, unbounded for `bin_size`).
    Hashable, so it can be a static argument."""

    bin_size: float | None = None
    num_bins: int | None = None
    value_range: tuple[float, float] | None = None
    bias_correction: str = "none"

    def __post_init__(self):
        check_bias_correction(self.bias_correction)
        if (self.bin_size is None) == (self.num_bins is None):
            raise ValueError("give exactly one binning: bin_size=b, or num_bins=n with value_range=(lo, hi)")
        if self.bin_size is not None:
            if self.value_range is not None:
                raise ValueError("value_range goes with num_bins, not bin_size")
            if not (math.isfinite(self.bin_size) and self.bin_size > 0):
                raise ValueError(f"bin_size must be a positive number, got {self.bin_size}")
            object.__setattr__(self, "bin_size", float(self.bin_size))
        else:
            if int(self.num_bins) != self.num_bins or self.num_bins < 1:
                raise ValueError(f"num_bins must be an integer >= 1, got {self.num_bins}")
            if self.value_range is None or len(self.value_range) != 2:
                raise ValueError("num_bins needs value_range=(lo, hi)")
            lo, hi = (float(v) for v in self.value_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"value_range must be finite with lo < hi, got {self.value_range}")
            object.__setattr__(self, "num_bins", int(self.num_bins))
            object.__setattr__(self, "value_range", (lo, hi))

    def scaled(self, acts: jax.Array) -> jax.Array:
        """Activations in units of bins, before flooring (float32)."""
        acts = acts.astype(jnp.float32)
        if self.bin_size is not None:
            return acts / jnp.float32(self.bin_size)
        lo, hi = self.value_range
        return jnp.clip((acts - jnp.float32(lo)) * jnp.float32(self.num_bins / (hi - lo)), 0, self.num_bins - 1)

    def codes(self, acts: jax.Array) -> jax.Array:
        """Integer bin codes (int32); meaningful for finite activations only."""
        return jnp.floor(self.scaled(acts)).astype(jnp.int32)

    supports_exact = True

    @property
    def name(self) -> str:
        return "binned"

    def ids(self, acts_BxNxD, exact: bool):
        """Row ids [B, N] (equal for equal rows of codes; `row_ids`) and the [B] bad-item flags."""
        d = acts_BxNxD.shape[-1]
        chunk = _CHUNK_ELEMENTS // (acts_BxNxD.shape[1] * d)
        if exact:

            def ids_fn(acts):
                bad = _bad_items(acts, self)
                return row_rank(jnp.where(bad[:, None, None], 0, self.codes(acts))), bad

            return common.in_chunks(ids_fn, acts_BxNxD, chunk)
        if d < _NARROW_UNITS:
            return common.in_chunks(lambda a: _narrow_hash(a, self), acts_BxNxD, chunk)
        if d >= _INT8_MAX_UNITS or (self.num_bins is not None and self.num_bins > 254):
            return common.in_chunks(lambda a: _int32_hash(a, self), acts_BxNxD, chunk)
        # The int8 pass first; only if any code fell outside its range, the int32 pass (at the
        # layer level, so that no item is copied into a conditional).
        ids, marked = common.in_chunks(lambda a: _int8_hash(a, self), acts_BxNxD, chunk)
        return jax.lax.cond(
            jnp.any(marked),
            lambda a: common.in_chunks(lambda c: _int32_hash(c, self), a, chunk),
            lambda a: (ids, jnp.zeros_like(marked)),
            acts_BxNxD,
        )

    def cells(self, num_units: int) -> float:
        """T's alphabet for NSB: the grid's cells (`grid_cells`)."""
        return grid_cells(self.num_bins, num_units)

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        ids, bad = self.ids(acts_BxNxD, exact)
        cells = self.cells(acts_BxNxD.shape[-1])
        return information_from_ids(ids, bad, labels, num_classes, self.bias_correction, cells)


@functools.cache
def _weights(num_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 32-bit weights per unit for the two hash lanes, as int8 bytes [D, 8] (little-endian,
    lane-major) and as the int32 numbers they spell [D, 2]. Every weight is odd."""
    rng = np.random.default_rng([_SEED, num_units])
    bytes_Dx2x4 = rng.integers(-128, 128, size=(num_units, 2, 4), dtype=np.int64)
    bytes_Dx2x4[..., 0] |= 1  # odd weights: a change in one code always changes the hash
    words_Dx2 = (bytes_Dx2x4 * (256 ** np.arange(4))).sum(-1) % (1 << 32)
    return bytes_Dx2x4.reshape(num_units, 8).astype(np.int8), words_Dx2.astype(np.uint32).view(np.int32)


def _bad_items(acts_CxNxD: jax.Array, binning: Binning) -> jax.Array:
    """[C] True where an item has a NaN or infinite activation, or a code beyond int32.

    One full sum of |a / b| per item comes first: it is finite and below 2**31 exactly when no
    element can be NaN, infinite or beyond int32. Only if some item fails it does the
    element-wise test run (a sum propagates NaN and inf; XLA's CPU min/max reductions may drop
    NaN).
    """

    def elementwise(acts):
        bad = ~common.finite_items(acts)
        if binning.bin_size is not None:
            bad |= jnp.max(jnp.abs(binning.scaled(acts)), axis=(1, 2)) >= 2.0**31
        return bad

    total_C = jnp.sum(jnp.abs(binning.scaled(acts_CxNxD)), axis=(1, 2))
    return jax.lax.cond(jnp.all(total_C < 2.0**31), lambda a: jnp.zeros(a.shape[0], bool), elementwise, acts_CxNxD)


def _mix(lanes_CxNx2: jax.Array) -> jax.Array:
    """Two uint32 lanes -> one uint64, through splitmix64's finaliser (a bijection that spreads
    every input bit over the whole word)."""
    x = (lanes_CxNx2[..., 1].astype(jnp.uint64) << 32) | lanes_CxNx2[..., 0].astype(jnp.uint64)
    x = (x ^ (x >> 30)) * jnp.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> 27)) * jnp.uint64(0x94D049BB133111EB)
    return x ^ (x >> 31)


def _lanes_elementwise(codes_CxNxD: jax.Array) -> jax.Array:
    """Both 32-bit lanes [C, N, 2] of int32 codes, elementwise in one fused loop (narrow layers)."""
    _, words_Dx2 = _weights(codes_CxNxD.shape[-1])
    codes_CxNxDx1 = codes_CxNxD.astype(jnp.uint32)[..., None]
    return jnp.sum(codes_CxNxDx1 * jnp.asarray(words_Dx2.view(np.uint32)), axis=-2, dtype=jnp.uint32)


def _lanes_int32(codes_CxNxD: jax.Array) -> jax.Array:
    """Both lanes by an int32 matrix product (wide layers, any codes)."""
    _, words_Dx2 = _weights(codes_CxNxD.shape[-1])
    lanes = jax.lax.dot_general(
        codes_CxNxD, jnp.asarray(words_Dx2), _CONTRACT_UNITS, precision=_EXACT, preferred_element_type=jnp.int32
    )
    return lanes.astype(jnp.uint32)


def _lanes_int8(small_CxNxD: jax.Array) -> jax.Array:
    """Both lanes by an int8 matrix product against the weights' bytes (wide layers, int8 codes)."""
    bytes_Dx8, _ = _weights(small_CxNxD.shape[-1])
    part = jax.lax.dot_general(
        small_CxNxD, jnp.asarray(bytes_Dx8), _CONTRACT_UNITS, precision=_EXACT, preferred_element_type=jnp.int32
    )
    part = part.astype(jnp.uint32).reshape(*part.shape[:-1], 2, 4)
    return jnp.sum(part << (8 * jnp.arange(4, dtype=jnp.uint32)), axis=-1, dtype=jnp.uint32)


def _narrow_hash(acts_CxNxD: jax.Array, binning: Binning) -> tuple[jax.Array, jax.Array]:
    return _mix(_lanes_elementwise(binning.codes(acts_CxNxD))), _bad_items(acts_CxNxD, binning)


def _int32_hash(acts_CxNxD: jax.Array, binning: Binning) -> tuple[jax.Array, jax.Array]:
    bad = _bad_items(acts_CxNxD, binning)
    return _mix(_lanes_int32(jnp.where(bad[:, None, None], 0, binning.codes(acts_CxNxD)))), bad


def _int8_hash(acts_CxNxD: jax.Array, binning: Binning) -> tuple[jax.Array, jax.Array]:
    """Hashes valid where the returned [C] flag is False: every code in [-127, 126], after a
    constant shift of 127 for `num_bins` (a shift keeps equal rows equal). One compare sends NaN
    and codes below -127 to the marker 127, and the conversion saturates codes above 127 to 127
    (XLA's float-to-int conversion clamps); the flag is one max over the int8 codes."""
    shifted = jnp.floor(binning.scaled(acts_CxNxD)) - (127.0 if binning.num_bins is not None else 0.0)
    small = jnp.where(shifted >= -127.0, shifted, 127.0).astype(jnp.int8)
    return _mix(_lanes_int8(small)), jnp.max(small, axis=(1, 2)) == 127


def row_ids(codes_CxNxD: jax.Array, max_code: int, exact: bool = False) -> jax.Array:
    """uint64 ids [C, N] of rows of codes in [0, max_code] (int32): equal for equal rows; unequal
    rows collide as described in the module docstring (never, with `exact`)."""
    d = codes_CxNxD.shape[-1]
    if exact:
        return row_rank(codes_CxNxD)
    if d < _NARROW_UNITS:
        return _mix(_lanes_elementwise(codes_CxNxD))
    if max_code <= 253 and d < _INT8_MAX_UNITS:
        return _mix(_lanes_int8((codes_CxNxD - 127).astype(jnp.int8)))
    return _mix(_lanes_int32(codes_CxNxD))


def row_rank(codes_CxNxD: jax.Array) -> jax.Array:
    """Exact uint64 ids [C, N]: equal iff rows are equal (one sort per unit; x64 must be on)."""
    c, n, _ = codes_CxNxD.shape
    iota = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (c, n))
    offset = codes_CxNxD.astype(jnp.int64) - jnp.min(codes_CxNxD, axis=1, keepdims=True)

    def refine(group_CxN, column_CxN):
        key = (group_CxN << 32) | column_CxN.astype(jnp.uint64)
        key_sorted, order = jax.lax.sort((key, iota), dimension=1, num_keys=1)
        new = jnp.concatenate([jnp.zeros((c, 1), bool), key_sorted[:, 1:] != key_sorted[:, :-1]], axis=1)
        rank_sorted = jnp.cumsum(new, axis=1, dtype=jnp.uint64)
        return jnp.zeros_like(group_CxN).at[jnp.arange(c)[:, None], order].set(rank_sorted), None

    group, _ = jax.lax.scan(refine, jnp.zeros((c, n), jnp.uint64), jnp.moveaxis(offset, 2, 0))
    return group


def miller_madow(occupied, n: int):
    """Miller-Madow's correction of a plug-in entropy in bits: (m - 1) / (2 N ln 2)."""
    return (occupied - 1.0) / (2.0 * n * math.log(2.0))


def _group_entropy(sorted_CxN: jax.Array, bias_correction: str = "none", cells: float = math.inf) -> jax.Array:
    """Plug-in entropy in bits (float64) [C] of the runs of equal values in a sorted array,
    Miller-Madow corrected with `bias_correction="miller_madow"` (m = the number of runs), or
    by another correction of `corrections` from the runs' counts (NSB over `cells` cells).

    H = log2 N - (1/N) sum_g c_g log2 c_g, where the sum telescopes over the elements: the k-th
    element of a run adds k log2 k - (k-1) log2 (k-1). Only run starts are needed (one cummax).
    """
    c, n = sorted_CxN.shape
    idx = jnp.arange(n, dtype=jnp.int32)
    first = jnp.concatenate([jnp.ones((c, 1), bool), sorted_CxN[:, 1:] != sorted_CxN[:, :-1]], axis=1)
    k = (idx - jax.lax.cummax(jnp.where(first, idx, 0), axis=1) + 1).astype(jnp.float64)
    previous = (k - 1) * jnp.log2(jnp.maximum(k - 1, 1.0))  # 0 for k = 1
    if bias_correction not in ("none", "miller_madow"):  # from the runs' counts (at each run's last element)
        last = jnp.concatenate([first[:, 1:], jnp.ones((c, 1), bool)], axis=1)
        return corrections.entropy_bits(jnp.where(last, k, 0.0), bias_correction, cells)
    h = math.log2(n) - jnp.sum(k * jnp.log2(k) - previous, axis=1) / n
    if bias_correction == "miller_madow":
        h = h + miller_madow(jnp.sum(first, axis=1).astype(jnp.float64), n)
    return h


def information_from_ids(
    ids_BxN, bad_B, labels, num_classes: int, bias_correction: str = "none", cells: float = math.inf
):
    """I(X;T), I(T;Y) [B] from row ids (equal iff the rows' codes are equal): one sort of
    (id, label) keys gives H(T) and H(T,Y). `labels` is [N] (shared) or [B, N]; `cells` is
    T's alphabet for NSB."""
    bits = label_bits(num_classes)
    keys = jax.lax.sort((ids_BxN << bits) | labels.astype(jnp.uint64), dimension=1)
    return information_from_sorted(keys >> bits, keys, bad_B, labels, num_classes, bias_correction, cells)


def information_from_sorted(
    t_keys_BxN, ty_keys_BxN, bad_B, labels, num_classes: int, bias_correction: str = "none", cells: float = math.inf
):
    """I(X;T), I(T;Y) [B] from sorted keys whose runs are T's symbols (`t_keys`) and the (T, Y)
    pairs (`ty_keys`, sorted in the same order); NaN where `bad_B`. With a `bias_correction`
    every entropy (H(T), H(Y), H(T,Y)) is corrected; NSB's alphabets are `cells` for T, the
    classes for Y and their product for (T, Y)."""
    h_t = _group_entropy(t_keys_BxN, bias_correction, cells)
    h_ty = _group_entropy(ty_keys_BxN, bias_correction, cells * num_classes)
    p_y = common.label_distribution(labels, num_classes)
    h_y = common.entropy_bits(p_y)
    if bias_correction == "miller_madow":
        h_y = h_y + miller_madow(jnp.sum(p_y > 0, axis=-1).astype(jnp.float64), labels.shape[-1])
    elif bias_correction != "none":
        h_y = corrections.entropy_bits(p_y * labels.shape[-1], bias_correction, num_classes)
    i_ty = jnp.maximum(h_t + h_y - h_ty, 0.0)  # >= 0 up to rounding
    nan = jnp.float32(jnp.nan)
    return jnp.where(bad_B, nan, h_t).astype(jnp.float32), jnp.where(bad_B, nan, i_ty).astype(jnp.float32)


def binned_information(
    acts: jax.Array,
    labels: jax.Array,
    *,
    bin_size: float | None = None,
    num_bins: int | None = None,
    value_range: tuple[float, float] | None = None,
    num_classes: int | None = None,
    method: str = "hash",
) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of one layer's activations `acts` [..., N, D], binned.

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts` (a labelling per item).
      bin_size / num_bins, value_range: the binning (exactly one; see the module docstring).
      num_classes: inferred from concrete labels, required inside jit.
      method: "hash" (fast) or "exact" (slow, for checks).

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    binning = Binning(bin_size=bin_size, num_bins=num_bins, value_range=value_range)
    return common.one_layer(acts, labels, binning, num_classes=num_classes, method=method)
