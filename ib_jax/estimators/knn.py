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

    return jax.lax.fori_loop(0, columns.shape[0], one, jnp.zeros((rows.shape[0], columns.shape[1]), jnp.float32))


def _kth_smallest(d_RxN: jax.Array, k: int) -> jax.Array:
    """The k smallest of each row, ascending, [R, k]."""
    return -jax.lax.top_k(-d_RxN, k)[0]


def ksg_information(x_NxDx: jax.Array, t_NxD: jax.Array, k: int) -> jax.Array:
    """KSG estimator 1 of I(X;T) in bits (the module docstring)."""
    n = t_NxD.shape[0]

    def block(rows):
        own = rows[:, None] == jnp.arange(n)[None, :]
        dx = jnp.where(own, jnp.inf, max_distances(x_NxDx, rows))
        dt = jnp.where(own, jnp.inf, max_distances(t_NxD, rows))
        eps = _kth_smallest(jnp.maximum(dx, dt), k)[:, k - 1]
        n_x = jnp.sum(dx < eps[:, None], axis=1)
        n_t = jnp.sum(dt < eps[:, None], axis=1)
        return digamma((n_x + 1).astype(jnp.float32)) + digamma((n_t + 1).astype(jnp.float32))

    terms = _blocks(n, block)
    nats = digamma(float(k)) + digamma(float(n)) - jnp.mean(terms.astype(jnp.float64))
    return nats / math.log(2.0)


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

    m = _blocks(n, block)
    kept = (counts > 1).astype(jnp.float64)
    used = jnp.sum(kept)
    mean = lambda v: jnp.sum(kept * v) / used  # noqa: E731
    safe = lambda v: jnp.maximum(v, 1).astype(jnp.float64)  # noqa: E731
    nats = digamma(used) + mean(digamma(safe(k_i))) - mean(digamma(safe(counts))) - mean(digamma(safe(m)))
    return nats / math.log(2.0)


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
