"""Adaptive binning (Chelombiev et al., ICLR 2019): bins that follow each item's own values, then
the plug-in estimate of the binned estimator, in bits.

Per item (one layer at one epoch, seed and split), over all of its N x D activations:
  * `strategy="entropy"`: u = the sorted *distinct* values, U = len(u); interior edges
    e_k = u[floor(k U / n)] for k = 1..n-1; code = #{k : e_k <= a} (numpy
    `searchsorted(e, a, side="right")`): each bin spans about U / n distinct values. The codes
    depend only on the order of the values, so the estimate is invariant to any strictly
    increasing transform of them.
  * `strategy="range"`: n equal bins on the item's [min, max]:
    code = min(floor((a - min) / (max - min) * n), n - 1); a constant item is one bin.
Rows of codes are then measured exactly as the fixed binning does (64-bit row hashes, one sort
of (hash, label) keys; `method="exact"` ranks rows exactly).

How: "entropy" sorts the item's N x D values once, as int32 keys in the values' order (sorts of
int32 run ~4x faster than of floats, whose comparator orders NaNs), keeps the distinct ones and
reads the n - 1 edges; every activation is then compared with the edges (no argsort, no
scatter). That sort is of values and the row hash's sort is of row keys, so the two cannot be
shared; the value sort is the floor of this estimator. Where it runs depends on the platform:
  * CPU, items of at least `HOST_SORT_MIN` (131,072) values: a host callback (`numpy_edges`)
    cuts each item into one part per core, sorts the parts in threads with numpy (whose sort
    releases the GIL), merges them with one stable sort (a linear merge of sorted runs) and
    indexes the distinct values: about twice as fast as XLA's CPU sort, which runs on one
    thread. JAX keeps no program with a host callback in its persistent compilation cache, so
    a program measuring such items is compiled at every start.
  * CPU, smaller items: as on GPU and TPU.
  * GPU, TPU: `edges_by_sort` on the device (XLA's parallel sort; a cumulative count of run
    starts gives each sorted value its distinct rank and a binary search finds the edges).
The two give the same edges exactly. Items with a NaN or infinite activation give NaN.
"""

import concurrent.futures
import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators import binned, common, plugin

STRATEGIES = ("entropy", "range")
_CHUNK_ELEMENTS = 1 << 23  # activations binned at once (the sort's temporaries)
# Items of at least this many values (N x D) are sorted on the host on CPU: below it one core's
# sort is short anyway, and the program stays in JAX's persistent compilation cache, which
# keeps no program with a host callback.
HOST_SORT_MIN = 1 << 17


@dataclasses.dataclass(frozen=True)
class AdaptiveBinning(plugin.PlugIn, common.Estimator):
    """`AdaptiveBinning(num_bins=30, strategy="entropy" | "range", bias_correction="none")`
    (`corrections.CORRECTIONS`; NSB's alphabet: num_bins ** D cells)."""

    num_bins: int = 30
    strategy: str = "entropy"
    bias_correction: str = "none"

    supports_exact = True

    def __post_init__(self):
        binned.check_bias_correction(self.bias_correction)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be 'entropy' or 'range', got {self.strategy!r}")
        if isinstance(self.num_bins, bool) or int(self.num_bins) != self.num_bins or not 1 <= self.num_bins <= 2**15:
            raise ValueError(f"num_bins must be an integer in [1, 32768], got {self.num_bins}")
        object.__setattr__(self, "num_bins", int(self.num_bins))

    @property
    def name(self) -> str:
        return f"adaptive_{self.strategy}"

    def codes(self, acts_KxNxD: jax.Array) -> jax.Array:
        """Integer codes in [0, num_bins) (int32), per item of a [K, N, D] batch."""
        n_bins = self.num_bins
        k = acts_KxNxD.shape[0]
        if self.strategy == "range":
            flat = acts_KxNxD.reshape(k, -1).astype(jnp.float32)
            lo = jnp.min(flat, axis=1)[:, None, None]
            span = (jnp.max(flat, axis=1) - jnp.min(flat, axis=1))[:, None, None]
            scaled = (acts_KxNxD - lo) / jnp.where(span > 0, span, 1.0) * jnp.float32(n_bins)
            return jnp.clip(jnp.floor(scaled), 0, n_bins - 1).astype(jnp.int32)
        if n_bins == 1:
            return jnp.zeros(acts_KxNxD.shape, jnp.int32)
        keys = _order_keys(acts_KxNxD)
        edges = entropy_edges(keys.reshape(k, -1), n_bins)
        return jax.vmap(lambda e, a: jnp.searchsorted(e, a, side="right", method="compare_all"))(edges, keys).astype(
            jnp.int32
        )

    def ids(self, acts_BxNxD, exact: bool):
        """Row ids [B, N] of the items' codes and the [B] bad-item flags."""
        _, n, d = acts_BxNxD.shape

        def ids_fn(acts):
            bad = ~common.finite_items(acts)
            codes = self.codes(jnp.where(bad[:, None, None], 0.0, acts))
            return binned.row_ids(codes, self.num_bins - 1, exact), bad

        return common.in_chunks(ids_fn, acts_BxNxD, _CHUNK_ELEMENTS // (n * d))

    def cells(self, num_units: int) -> float:
        """T's alphabet for NSB: num_bins ** D (`binned.grid_cells`)."""
        return binned.grid_cells(self.num_bins, num_units)

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        ids, bad = self.ids(acts_BxNxD, exact)
        cells = self.cells(acts_BxNxD.shape[-1])
        return binned.information_from_ids(ids, bad, labels, num_classes, self.bias_correction, cells)


def _order_keys(acts: jax.Array) -> jax.Array:
    """int32 keys in the order of the float32 values (-0 and +0 equal): XLA's CPU sort is ~4x
    faster on int32 than on float32, whose comparator orders NaNs."""
    bits = jax.lax.bitcast_convert_type(jnp.where(acts == 0, 0.0, acts).astype(jnp.float32), jnp.int32)
    return jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)


def entropy_edges(keys_KxM: jax.Array, num_bins: int) -> jax.Array:
    """[K, n - 1] interior edges of the "entropy" strategy for each row of int32 order keys: on
    CPU for rows of at least `HOST_SORT_MIN` keys by `numpy_edges` (a host callback), otherwise
    by `edges_by_sort` on the device."""
    if keys_KxM.shape[1] < HOST_SORT_MIN:
        return edges_by_sort(keys_KxM, num_bins)
    return jax.lax.platform_dependent(
        keys_KxM,
        cpu=functools.partial(_edges_on_host, num_bins=num_bins),
        default=functools.partial(edges_by_sort, num_bins=num_bins),
    )


def edges_by_sort(keys_KxM: jax.Array, num_bins: int) -> jax.Array:
    """[K, n - 1] edges e_k = u[floor(k U / n)] of each row of int32 order keys, by XLA's sort."""
    k = keys_KxM.shape[0]
    values = jnp.sort(keys_KxM, axis=1)
    first = jnp.concatenate([jnp.ones((k, 1), bool), values[:, 1:] != values[:, :-1]], axis=1)
    rank = jnp.cumsum(first, axis=1, dtype=jnp.int32) - 1  # distinct rank of each sorted value
    distinct = rank[:, -1:] + 1  # U [K, 1]
    # e_k = u[floor(k U / n)]: the first sorted position whose distinct rank is that index.
    k_bins = jnp.arange(1, num_bins, dtype=jnp.int32)[None, :]  # floor(k U / n) without overflow:
    target = k_bins * (distinct // num_bins) + (k_bins * (distinct % num_bins)) // num_bins  # [K, n-1]
    position = jax.vmap(lambda r, t: jnp.searchsorted(r, t, side="left"))(rank, target)
    return jnp.take_along_axis(values, position, axis=1)  # [K, n-1], non-decreasing


def _edges_on_host(keys_KxM: jax.Array, num_bins: int) -> jax.Array:
    shape = jax.ShapeDtypeStruct((keys_KxM.shape[0], num_bins - 1), jnp.int32)
    callback = functools.partial(numpy_edges, num_bins=num_bins)
    return jax.pure_callback(callback, shape, keys_KxM, vmap_method="sequential")


@functools.cache
def _cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(_cores(), thread_name_prefix="ib_jax_sort")


def numpy_edges(keys_KxM: np.ndarray, num_bins: int) -> np.ndarray:
    """`edges_by_sort` in numpy: each row is cut into one part per core, the parts are sorted in
    threads (numpy's sort releases the GIL) and merged by a stable sort (one linear merge of
    sorted runs), then the distinct values are indexed. The same edges, exactly."""
    keys = np.asarray(keys_KxM)
    k, m = keys.shape
    parts = max(1, min(_cores(), m // (1 << 16)))
    bounds = np.linspace(0, m, parts + 1).astype(int)
    pieces = [keys[i, a:b] for i in range(k) for a, b in zip(bounds[:-1], bounds[1:])]
    done = list(_pool().map(np.sort, pieces))
    out = np.empty((k, num_bins - 1), np.int32)
    for i in range(k):
        row = done[i * parts : (i + 1) * parts]
        values = row[0] if parts == 1 else np.sort(np.concatenate(row), kind="stable")
        distinct = values[np.concatenate([[True], values[1:] != values[:-1]])]
        out[i] = distinct[(np.arange(1, num_bins, dtype=np.int64) * len(distinct)) // num_bins]
    return out


def adaptive_binned_information(
    acts: jax.Array,
    labels: jax.Array,
    *,
    num_bins: int = 30,
    strategy: str = "entropy",
    num_classes: int | None = None,
    method: str = "hash",
) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of one layer `acts` [..., N, D], with bins adapted to each item.

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts` (a labelling per item).
      num_bins: n >= 1 bins per item.
      strategy: "entropy" (equal counts of distinct values per bin) or "range" (n equal bins
        on the item's [min, max]); see the module docstring.
      num_classes: inferred from concrete labels, required inside jit.
      method: "hash" (fast) or "exact" (slow, for checks).

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    estimator = AdaptiveBinning(num_bins=num_bins, strategy=strategy)
    return common.one_layer(acts, labels, estimator, num_classes=num_classes, method=method)
