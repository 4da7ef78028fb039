"""EDGE, the ensemble dependence-graph estimator (Noshad, Zeng & Hero, ICASSP 2019), of I(X;T)
and I(T;Y) in bits.

For a pair of variables (A, B) with N samples, each variable is hashed to buckets (a discrete
variable, the labels, is its own bucket), and with N_i the count of A's bucket i, M_j of B's
bucket j and N_ij of the pair (the edges of the dependence graph):

  I(A;B) = sum over edges (N_ij / N) g(log2(N_ij N / (N_i M_j))),  g(v) = min(max(v, 0.001), U)

(a sum over the samples, each with its own buckets' counts, divided by N). I(X;T) pairs the
inputs with the layer (U = log2 N, the largest value), I(T;Y) the layer with the labels
(U = log2 K, K classes). The hashing of a continuous variable V [N, d], as defined here (the
constants marked [code] are those of Noshad's public implementation, EDGE_4_4_1.py):

  1. Projection [code]: if d > 6, z = V W with W [d, d'], d' = min(d, floor(log2(N / 10))) (at
     least 1), W_ij ~ N(0, 1 / (d s_i^2)), s_i the column's standard deviation (1 where below
     1e-4); W is drawn from a generator seeded by (`seed`, d, d'). If d <= 6, z = V.
  2. Bucket width per projected coordinate c: e_c = g0 x 0.4 x 18 d' / max(1 + ln d, 1) x
     (r_c + 1e-4) [code], with g0 the variable's scale (`layer_scale` for a layer,
     `input_scale` for the inputs) and r_c the mean, over all N samples, of the distance along
     coordinate c to the k-th nearest sample counting the sample itself, k = floor(0.43
     N^(2/3 + 0.17 d'/(d'+1))) [code; its factor exp(-1/max(10^4, d^4)) is within 1e-4 of 1 and
     left out; the code averages over 500 random samples, here over all N].
  3. Ensemble [code]: L = `num_estimates` estimates; estimate l = 0..L-1 scales the widths by
     1 + 0.1 l/(L-1) and shifts by b = (l / L) x width: bucket = floor((z + b) / width) per
     coordinate, and a bucket is a row of those integers (64-bit row hashes, as the binned
     estimator's). The estimate is the median of the L values.

Defaults: L = 5 and the scales 1 (a layer: "gamma close to 1" for continuous data in Noshad's
documentation) and 0.001 (the inputs, treated as discrete: every distinct input is its own
bucket, as deep-bottleneck's use of EDGE sets it). Not done here: Noshad's optional second pass
that rescales the widths from a first estimate, and the weighted ("optimal weights") ensemble.
Each hash and count is one sort per item; the k-nearest-neighbour distances are a sort and a
binary search per coordinate: O(N log N) per item. Items with a NaN or infinite activation
give NaN.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators import common, exact

FLOOR = 0.001  # g's lower clip [code]
_FLOOR_HASH_UNITS = 6  # at most this many units: no projection [code]


@dataclasses.dataclass(frozen=True)
class EDGE(common.Estimator):
    """`EDGE(num_estimates=5, layer_scale=1.0, input_scale=0.001, seed=0)`; see the module
    docstring."""

    num_estimates: int = 5
    layer_scale: float = 1.0
    input_scale: float = 0.001
    seed: int = 0

    needs_inputs = True

    def __post_init__(self):
        for field in ("num_estimates", "seed"):
            value = getattr(self, field)
            low = 1 if field == "num_estimates" else 0
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value}")
            object.__setattr__(self, field, int(value))
        for field in ("layer_scale", "input_scale"):
            value = getattr(self, field)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{field} must be a positive number, got {value!r}") from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field} must be a positive number, got {value}")
            object.__setattr__(self, field, value)

    @property
    def name(self) -> str:
        return "edge"

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool, inputs=None):
        del exact
        b, n, _ = acts_BxNxD.shape
        bad = ~common.finite_items(acts_BxNxD)
        acts = jnp.where(bad[:, None, None], 0.0, acts_BxNxD).astype(jnp.float32)
        y = jnp.broadcast_to(labels, (b, n)).astype(jnp.uint64)
        t_ids = self.bucket_ids(acts, self.layer_scale)  # [L, B, N]
        x = inputs.astype(jnp.float32).reshape(-1, n, inputs.shape[-1])  # shared inputs: hashed once
        x_ids = jnp.broadcast_to(self.bucket_ids(x, self.input_scale), t_ids.shape)
        cap_xt, cap_ty = math.log2(n), math.log2(max(num_classes, 2))
        i_xt = jnp.median(jax.vmap(lambda xi, ti: dependence_information(xi, ti, cap_xt))(x_ids, t_ids), axis=0)
        i_ty = jnp.median(jax.vmap(lambda ti: dependence_information(ti, y, cap_ty))(t_ids), axis=0)
        nan = jnp.float32(jnp.nan)
        return jnp.where(bad, nan, i_xt).astype(jnp.float32), jnp.where(bad, nan, i_ty).astype(jnp.float32)

    def bucket_ids(self, v_BxNxD: jax.Array, scale: float) -> jax.Array:
        """uint64 bucket ids [L, B, N] of each sample, for each of the L estimates."""
        _, n, d = v_BxNxD.shape
        z = v_BxNxD
        if d > _FLOOR_HASH_UNITS:
            std = jnp.std(v_BxNxD, axis=1)  # [B, d]
            std = jnp.where(std < 1e-4, 1.0, std)
            gauss = jnp.asarray(_projection(self.seed, d, projected_units(n, d)))
            weights = gauss[None] / (std[..., None] * math.sqrt(d))
            z = jnp.einsum("bnd,bde->bne", v_BxNxD, weights, precision=jax.lax.Precision.HIGHEST)
        d_proj = z.shape[-1]
        rho = jax.vmap(jax.vmap(lambda c: knn_distance(c, neighbours(n, d_proj)), in_axes=1))(z)  # [B, d']
        width = scale * 0.4 * 18.0 * d_proj / max(1.0 + math.log(d), 1.0) * (rho + 1e-4)  # [B, d']
        count = self.num_estimates
        j = np.arange(count)
        scales = jnp.asarray(1.0 + 0.1 * j / max(count - 1, 1), jnp.float32)  # estimate j's width factor
        shifts = jnp.asarray(j / count, jnp.float32)  # and its shift, in widths

        def one(scale, shift):  # one estimate: a map over them, so the hashing is compiled once
            w = width * scale
            codes = jnp.floor((z + shift * w[:, None, :]) / w[:, None, :])
            codes = jnp.clip(codes, -(2.0**62), 2.0**62).astype(jnp.int64)
            halves = jnp.concatenate([codes.astype(jnp.int32), (codes >> 32).astype(jnp.int32)], axis=-1)
            return exact.row_hash(halves)

        return jax.lax.map(lambda a: one(*a), (scales, shifts))


def projected_units(n: int, d: int) -> int:
    """d' = min(d, floor(log2(N / 10))), at least 1."""
    return max(1, min(d, math.floor(math.log2(n / 10.0)))) if n > 10 else 1


def neighbours(n: int, d: int) -> int:
    """k = floor(0.43 N^(2/3 + 0.17 d/(d+1))), between 1 and N."""
    return int(min(n, max(1, math.floor(0.43 * n ** (2.0 / 3.0 + 0.17 * d / (d + 1.0))))))


@functools.cache
def _projection(seed: int, d: int, d_proj: int) -> np.ndarray:
    return np.random.default_rng([seed, d, d_proj]).standard_normal((d, d_proj)).astype(np.float32)


def knn_distance(values_N: jax.Array, k: int) -> jax.Array:
    """The mean over the N values of the distance to the k-th nearest value, the value itself
    counted first (1-D). The k nearest of sorted value i are the window s[i-t .. i-t+k-1] for
    the t in range that minimises max(s_i - s_{i-t}, s_{i-t+k-1} - s_i): the first term grows
    with t and the second shrinks, so a binary search finds where they cross."""
    s = jnp.sort(values_N)
    n = s.shape[0]
    i = jnp.arange(n)
    t_lo = jnp.maximum(0, i + k - n)  # the window must end by n - 1
    t_hi = jnp.minimum(i, k - 1)  # and start at 0 or later

    def cost(t):
        t = jnp.clip(t, t_lo, t_hi)
        return jnp.maximum(s[i] - s[i - t], s[i - t + k - 1] - s[i])

    def step(_, bounds):  # the smallest t in [lo, hi) with s_i - s_{i-t} >= s_{i-t+k-1} - s_i, or hi
        lo, hi = bounds
        mid = jnp.clip((lo + hi) // 2, t_lo, t_hi)
        crossed = s[i] - s[i - mid] >= s[i - mid + k - 1] - s[i]
        active = lo < hi
        return jnp.where(active & ~crossed, mid + 1, lo), jnp.where(active & crossed, mid, hi)

    lo, _ = jax.lax.fori_loop(0, max(1, k).bit_length() + 1, step, (t_lo, t_hi + 1))
    best = jnp.minimum(cost(lo), jnp.where(lo - 1 >= t_lo, cost(lo - 1), jnp.inf))
    return jnp.mean(best)


def _counts(*keys_N: jax.Array) -> jax.Array:
    """For each sample, how many samples share its keys (all of them): int [N]."""
    n = keys_N[0].shape[0]
    iota = jnp.arange(n, dtype=jnp.int32)
    *sorted_keys, order = jax.lax.sort((*keys_N, iota), num_keys=len(keys_N))
    new = jnp.zeros(n, bool).at[0].set(True)
    for k in sorted_keys:
        new = new | jnp.concatenate([jnp.ones(1, bool), k[1:] != k[:-1]])
    run = jnp.cumsum(new) - 1
    sizes = jnp.zeros(n, jnp.int32).at[run].add(1)
    return jnp.zeros(n, jnp.int32).at[order].set(sizes[run])


def dependence_information(a_BxN: jax.Array, b_BxN: jax.Array, cap: float) -> jax.Array:
    """(1/N) sum over samples of g(log2(N_ij N / (N_i M_j))) [B] from bucket ids [B, N]."""
    n = a_BxN.shape[-1]

    def one(a, b):
        n_i, m_j, n_ij = _counts(a), _counts(b), _counts(a, b)
        ratio = n_ij.astype(jnp.float64) * n / (n_i.astype(jnp.float64) * m_j)
        return jnp.mean(jnp.clip(jnp.log2(ratio), FLOOR, cap))

    return jax.vmap(one)(a_BxN, b_BxN)


def edge_information(
    acts: jax.Array,
    labels: jax.Array,
    inputs: jax.Array,
    *,
    num_estimates: int = 5,
    layer_scale: float = 1.0,
    input_scale: float = 0.001,
    seed: int = 0,
    num_classes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """EDGE's I(X;T) and I(T;Y) in bits of one layer (see the module docstring).

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts`.
      inputs: the inputs X, flattened: [N, Dx] (shared by the items) or [..., N, Dx].
      num_estimates, layer_scale, input_scale, seed: the ensemble's size, the bucket-width
        scales of the layer and of the inputs, and the projection's seed.
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    estimator = EDGE(num_estimates=num_estimates, layer_scale=layer_scale, input_scale=input_scale, seed=seed)
    return common.one_layer(acts, labels, estimator, num_classes=num_classes, inputs=inputs)
