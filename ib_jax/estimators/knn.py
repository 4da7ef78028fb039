"""k-nearest-neighbour estimators, in bits: I(T;Y) by Ross's mixed discrete-continuous estimator
(PLoS ONE 2014; what scikit-learn's `mutual_info_classif` applies to one feature at a time, here
jointly over all D units), and I(X;T) by Kraskov, Stögbauer & Grassberger's estimator 1 (2004).

Distances are max-norm (Chebyshev) in every space, between coordinates each scaled to unit
standard deviation over the N samples (`standardize`, as bmi, scikit-learn and NPEET do: the
estimators are not invariant to the coordinates' scales; a constant coordinate is left as it
is). With psi the digamma function:

  I(T;Y), Ross: for sample i of class y_i (N_y samples of that class), k_i = min(k, N_y - 1), d_i
    the distance to its k_i-th nearest sample of the same class, and m_i the samples of any
    class (itself included) nearer than d_i (at distance 0 where d_i = 0, as scikit-learn's
    radius just below d_i counts):
      I = psi(N') + <psi(k_i)> - <psi(N_y_i)> - <psi(m_i)>,
    the means over the N' samples whose class holds more than one sample (the others are left
    out, as scikit-learn does).
  I(X;T), KSG 1: eps_i the distance to the k-th nearest sample in the joint space (the larger
    of the max-norm distances in X and in T), n_x(i) and n_t(i) the other samples strictly
    nearer than eps_i in X and in T alone:
      I = psi(k) + psi(N) - <psi(n_x + 1) + psi(n_t + 1)>.

The values are returned raw (both estimators can go slightly below 0 where the variables are
independent; scikit-learn clips Ross's at 0, this module does not). How: a block of rows at a
time, its max-norm distances to all N samples are built one coordinate at a time (a [rows, N]
buffer, never N x N: `_BLOCK_ELEMENTS` floats), the k nearest taken by `lax.top_k` and the
counts by comparison, in the same pass; O(N^2 (D + Dx)) per item, on the device. Items with a
NaN or infinite activation give NaN.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from ib_jax.estimators import common

_BLOCK_ELEMENTS = 1 << 21  # distances held at once (rows x N): 8 MB of float32


@dataclasses.dataclass(frozen=True)
class KNN(common.Estimator):
    """`KNN(k=3, standardize=True)`: Ross's I(T;Y) and KSG's I(X;T) with k neighbours; see the
    module docstring."""

    k: int = 3
    standardize: bool = True

    needs_inputs = True

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        object.__setattr__(self, "k", int(self.k))
        if not isinstance(self.standardize, bool | np.bool_):
            raise ValueError(f"standardize must be True or False, got {self.standardize!r}")
        object.__setattr__(self, "standardize", bool(self.standardize))

    @property
    def name(self) -> str:
        return "knn"

    def check_size(self, n: int, num_classes: int) -> None:
        if n <= self.k:
            raise ValueError(f"the knn estimator needs more than k = {self.k} samples, got {n}")

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool, inputs=None):
        del exact, num_classes
        b, n, _ = acts_BxNxD.shape
        bad = ~common.finite_items(acts_BxNxD)
        acts = jnp.where(bad[:, None, None], 0.0, acts_BxNxD).astype(jnp.float32)
        y = jnp.broadcast_to(labels, (b, n)).astype(jnp.int32)
        x = inputs.astype(jnp.float32).reshape(-1, n, inputs.shape[-1])
        if self.standardize:
            acts, x = scaled(acts), scaled(x)
        x = jnp.broadcast_to(x, (b, *x.shape[1:]))
        i_xt = jax.lax.map(lambda a: ksg_information(a[0], a[1], self.k), (x, acts))
        i_ty = jax.lax.map(lambda a: ross_information(a[0], a[1], self.k), (acts, y))
        nan = jnp.float32(jnp.nan)
        return jnp.where(bad, nan, i_xt).astype(jnp.float32), jnp.where(bad, nan, i_ty).astype(jnp.float32)


def scaled(v_BxNxD: jax.Array) -> jax.Array:
    """Each coordinate divided by its standard deviation over the N samples (a constant one
    left as it is)."""
    std = jnp.std(v_BxNxD, axis=1, keepdims=True)
    return v_BxNxD / jnp.where(std > 0, std, 1.0)


def _rows_per_block(n: int) -> int:
    return max(1, min(n, _BLOCK_ELEMENTS // max(n, 1)))


def _blocks(n: int, fn):
    """`fn(rows [R] int32) -> per-row outputs` over all N rows in blocks of R; the last block is
    aligned to the end (overlapping its predecessor) so every block is full."""
    r = _rows_per_block(n)
    starts = np.minimum(np.arange(0, n, r), n - r).astype(np.int32)
    outs = jax.lax.map(lambda s: fn(s + jnp.arange(r, dtype=jnp.int32)), jnp.asarray(starts))
    return jax.tree.map(lambda o: jnp.zeros((n, *o.shape[2:]), o.dtype).at[starts[:, None] + np.arange(r)].set(o), outs)


def max_distances(points_NxD: jax.Array, rows: jax.Array) -> jax.Array:
    """Max-norm distances [R, N] from the points `rows` to every point, built one coordinate at
    a time (no [R, N, D] temporary)."""
    columns = points_NxD.T  # [D, N]
    mine = points_NxD[rows]  # [R, D]

    def one(j, acc):
        return jnp.maximum(acc, jnp.abs(mine[:, j][:, None] - columns[j][None, :]))

    return jax.lax.fori_loop(0, columns.shape[0], one, jnp.zeros((rows.shape[0], columns.shape[1]), points_NxD.dtype))


def _kth_smallest(d_RxN: jax.Array, k: int) -> jax.Array:
    """The k smallest of each row, ascending, [R, k]."""
    return -jax.lax.top_k(-d_RxN, k)[0]


def _ksg_bits(n_x: jax.Array, n_t: jax.Array, k: int, n: int) -> jax.Array:
    """KSG 1 in bits from each sample's marginal counts [N]: psi(k) + psi(N) - <psi(n_x + 1) + psi(n_t + 1)>."""
    terms = digamma((n_x + 1).astype(jnp.float32)) + digamma((n_t + 1).astype(jnp.float32))
    nats = digamma(float(k)) + digamma(float(n)) - jnp.mean(terms.astype(jnp.float64))
    return nats / math.log(2.0)


def _ross_bits(k_i: jax.Array, counts: jax.Array, m: jax.Array) -> jax.Array:
    """Ross's estimate in bits from each sample's k_i, class size N_y and count m [N], over the
    samples whose class holds more than one."""
    kept = (counts > 1).astype(jnp.float64)
    used = jnp.sum(kept)
    mean = lambda v: jnp.sum(kept * v) / used  # noqa: E731
    safe = lambda v: jnp.maximum(v, 1).astype(jnp.float64)  # noqa: E731
    nats = digamma(used) + mean(digamma(safe(k_i))) - mean(digamma(safe(counts))) - mean(digamma(safe(m)))
    return nats / math.log(2.0)


def _positions(order: jax.Array) -> jax.Array:
    """Each sample's position [N] in a sorted order (`order`: the samples' indices in it)."""
    n = order.shape[0]
    return jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))


def ksg_information(x_NxDx: jax.Array, t_NxD: jax.Array, k: int) -> jax.Array:
    """KSG estimator 1 of I(X;T) in bits (the module docstring)."""
    n = t_NxD.shape[0]

    def block(rows):
        own = rows[:, None] == jnp.arange(n)[None, :]
        dx = jnp.where(own, jnp.inf, max_distances(x_NxDx, rows))
        dt = jnp.where(own, jnp.inf, max_distances(t_NxD, rows))
        eps = _kth_smallest(jnp.maximum(dx, dt), k)[:, k - 1]
        return jnp.sum(dx < eps[:, None], axis=1), jnp.sum(dt < eps[:, None], axis=1)

    return _ksg_bits(*_blocks(n, block), k, n)


def ross_information(t_NxD: jax.Array, y_N: jax.Array, k: int) -> jax.Array:
    """Ross's estimator of I(T;Y) in bits (the module docstring)."""
    n = t_NxD.shape[0]
    counts = jnp.zeros(n, jnp.int32).at[y_N].add(1)[y_N]  # N_y of each sample's class
    k_i = jnp.minimum(k, counts - 1)  # 0 for a class of one sample: left out

    def block(rows):
        d = max_distances(t_NxD, rows)
        own = rows[:, None] == jnp.arange(n)[None, :]
        same = (y_N[rows][:, None] == y_N[None, :]) & ~own
        nearest = _kth_smallest(jnp.where(same, d, jnp.inf), k)  # [R, k]
        radius = jnp.take_along_axis(nearest, jnp.maximum(k_i[rows] - 1, 0)[:, None], axis=1)[:, 0]
        m = jnp.maximum(jnp.sum(d < radius[:, None], axis=1), jnp.sum(d <= 0.0, axis=1))
        return m

    return _ross_bits(k_i, counts, _blocks(n, block))


# One-dimensional variables (the sliced estimator's projections): the same estimators by sorting,
# O(N (log N + W)) instead of O(N^2), with the same values. Every distance is taken, as the
# brute-force functions take it, as |a - b| of the same float32 values (IEEE subtraction is
# sign-symmetric), all of them read from the outputs of one sort: XLA may otherwise compute a
# fused input again, and round it otherwise, in each place it is used.


def _others_nearer(sorted_v: jax.Array, pos: jax.Array, radius: jax.Array) -> jax.Array:
    """For the entry at each position `pos` [M] of the ascending `sorted_v` [N], how many other
    entries lie strictly nearer than `radius` [M]: two binary searches (the distance to the
    entries on either side grows monotonically with their distance in position)."""
    n = sorted_v.shape[0]
    v = sorted_v[pos]
    steps = max(1, int(math.ceil(math.log2(n + 1))) + 1)

    def search(lo, hi, below):  # the first index in [lo, hi) where `below` turns False (or True)
        def step(_, bounds):
            lo, hi = bounds
            mid = (lo + hi) // 2
            go_right = below(jnp.clip(mid, 0, n - 1)) & (lo < hi)
            return jnp.where(go_right, mid + 1, lo), jnp.where(go_right | (lo >= hi), hi, mid)

        return jax.lax.fori_loop(0, steps, step, (lo, hi))[0]

    right = search(pos + 1, jnp.full_like(pos, n), lambda q: (sorted_v[q] - v) < radius)
    left = search(jnp.zeros_like(pos), pos, lambda q: ~((v - sorted_v[q]) < radius))
    return (right - pos - 1) + (pos - left)


def _window_kth(key_sorted, other_sorted, k: int, width: int):
    """In the order of one coordinate (`key_sorted` ascending, `other_sorted` the other
    coordinate of the same samples), the k-th smallest max-norm distance of each sample to the
    samples within `width` positions on either side, and whether it is exact: whether every
    sample outside the window is at least that far in the sorting coordinate alone. [N] each."""
    n = key_sorted.shape[0]
    offsets = np.concatenate([np.arange(-width, 0), np.arange(1, width + 1)])
    q = jnp.arange(n)[:, None] + offsets[None, :]
    valid = (q >= 0) & (q < n)
    qc = jnp.clip(q, 0, n - 1)
    d = jnp.maximum(jnp.abs(key_sorted[qc] - key_sorted[:, None]), jnp.abs(other_sorted[qc] - other_sorted[:, None]))
    eps = _kth_smallest(jnp.where(valid, d, jnp.inf), k)[:, k - 1]
    p = jnp.arange(n)
    below = jnp.where(p - width - 1 >= 0, key_sorted - key_sorted[jnp.maximum(p - width - 1, 0)], jnp.inf)
    above = jnp.where(p + width + 1 < n, key_sorted[jnp.minimum(p + width + 1, n - 1)] - key_sorted, jnp.inf)
    return eps, jnp.minimum(below, above) >= eps


_PATCHED = 64  # samples whose k-th neighbour `ksg_information_1d` computes in full, beyond the windows


def window_width(n: int, k: int) -> int:
    """The window of `ksg_information_1d`: about sqrt(k N) positions on each side, where the
    k-th neighbour of samples of two independent continuous variables lies within one of the
    two orders' windows (the rare other cases are computed in full)."""
    return int(min(max(n - 1, 1), max(2 * k, math.ceil(math.sqrt(k * n)))))


def ksg_information_1d(x_N: jax.Array, t_N: jax.Array, k: int) -> jax.Array:
    """`ksg_information` of two one-dimensional variables (float32 [N] each), the same value by
    sorting: each sample's k-th neighbour in the joint max-norm space is sought within a window
    of positions in the order of x and in the order of t; the samples that neither window
    settles (a few per thousand) are computed in full, against every sample, and where they are
    more than `_PATCHED`, the whole item is (`lax.cond`: call it under `lax.map`, not vmap, or
    both branches run). Counts by binary search."""
    n = x_N.shape[0]
    index = jnp.arange(n, dtype=jnp.int32)
    xs, tx, ix = jax.lax.sort((x_N, t_N, index), num_keys=1)  # x order
    ts, xt, it = jax.lax.sort((t_N, x_N, index), num_keys=1)  # t order
    pos_x, pos_t = _positions(ix), _positions(it)
    width = window_width(n, k)
    eps_x, exact_x = _window_kth(xs, tx, k, width)
    eps_t, exact_t = _window_kth(ts, xt, k, width)
    eps_x, exact_x = eps_x[pos_x], exact_x[pos_x]  # per sample
    eps_t, exact_t = eps_t[pos_t], exact_t[pos_t]

    points = jnp.stack([xs, tx], axis=1)  # x order

    def in_full_at(rows):  # the k-th neighbour distance of the samples at x positions `rows`, in full
        own = rows[:, None] == jnp.arange(n)[None, :]
        return _kth_smallest(jnp.where(own, jnp.inf, max_distances(points, rows)), k)[:, k - 1]

    def patched(_):  # the few samples that neither window settles, in full
        missed = jnp.nonzero(~(exact_x | exact_t), size=_PATCHED, fill_value=-1)[0]
        found = missed >= 0
        rows = jnp.where(found, missed, 0)
        eps = jnp.minimum(eps_x, eps_t)
        return eps.at[rows].set(jnp.where(found, in_full_at(pos_x[rows]), eps[rows]))

    def in_full(_):
        return _blocks(n, in_full_at)[pos_x]

    unsettled = jnp.sum(~(exact_x | exact_t))
    eps = jax.lax.cond(unsettled <= _PATCHED, patched, in_full, None)
    return _ksg_bits(_others_nearer(xs, pos_x, eps), _others_nearer(ts, pos_t, eps), k, n)


def ross_information_1d(t_N: jax.Array, y_N: jax.Array, k: int) -> jax.Array:
    """`ross_information` of a one-dimensional variable (float32 [N]), the same value by sorting:
    in the order of (class, t) a sample's k nearest of its class lie within k positions on
    either side; the counts over all samples by binary search in the order of t."""
    n = t_N.shape[0]
    index = jnp.arange(n, dtype=jnp.int32)
    y_N = y_N.astype(jnp.int32)
    ys, tys, iy = jax.lax.sort((y_N, t_N, index), num_keys=2)  # class, then t
    ts, it = jax.lax.sort((t_N, index), num_keys=1)
    pos_t = _positions(it)
    counts = jnp.zeros(n, jnp.int32).at[ys].add(1)[ys]  # N_y, in class order
    k_i = jnp.minimum(k, counts - 1)
    offsets = np.concatenate([np.arange(-k, 0), np.arange(1, k + 1)])
    q = jnp.arange(n)[:, None] + offsets[None, :]
    qc = jnp.clip(q, 0, n - 1)
    same = (q >= 0) & (q < n) & (ys[qc] == ys[:, None])
    nearest = _kth_smallest(jnp.where(same, jnp.abs(tys[qc] - tys[:, None]), jnp.inf), k)
    radius = jnp.take_along_axis(nearest, jnp.maximum(k_i - 1, 0)[:, None], axis=1)[:, 0]
    pos = pos_t[iy]  # class order -> position in t order
    nearer = _others_nearer(ts, pos, radius) + (radius > 0)  # itself included when the radius is > 0
    equal = jnp.searchsorted(ts, ts[pos], side="right") - jnp.searchsorted(ts, ts[pos], side="left")
    return _ross_bits(k_i, counts, jnp.maximum(nearer, equal))


def knn_information(
    acts: jax.Array,
    labels: jax.Array,
    inputs: jax.Array,
    *,
    k: int = 3,
    standardize: bool = True,
    num_classes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """KSG's I(X;T) and Ross's I(T;Y) in bits of one layer (see the module docstring).

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts`.
      inputs: the inputs X, flattened: [N, Dx] (shared by the items) or [..., N, Dx].
      k: the neighbours.
      standardize: scale every coordinate of the layer and of X to unit standard deviation.
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    return common.one_layer(acts, labels, KNN(k, standardize), num_classes=num_classes, inputs=inputs)
