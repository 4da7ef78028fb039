"""The information of a layer that carries noise of its own (`ib_jax.noise`), under that noise, in
bits: I(X;T) and I(T;Y) where, given sample i, T is Gaussian around the layer's noiseless value
mu_i with the diagonal variance v_i of the network's noise (SIGMA^2 per unit, additive; or
P / (1 - P) mu_i^2 per unit, Gaussian dropout). X is uniform over the N measured samples.

  I(X;T) = h(T) - h(T|X),  h(T|X) = (1/N) sum_i sum_d (1/2) log(2 pi e v_id)  (analytic),
  h(T) = -E log p(T), p = (1/N) sum_j N(mu_j, diag v_j)  (the mixture of the N samples' Gaussians).

Both are taken together by Monte Carlo over the mixture: M draws t = mu_i + sqrt(v_i) z per
sample (`samples`), and with l_j(t) the log density of component j,

  I(X;T) = log N - E_{i,z} [ log sum_j exp(l_j(t) - l_i(t)) ],
  I(T;Y) = I(X;T) - sum_y p_y [ log N_y - E_{i in y, z} log sum_{j in y} exp(l_j(t) - l_i(t)) ],

the second from the class-conditional mixtures (H(T|Y=y) likewise). Each sum holds its own term
exp(0) = 1, so I(X;T) <= log N. With additive noise the value is `kde_mc`'s (the same
definition, the same draws from the same seed would give the same number; the tests check
agreement within the Monte Carlo error).

The standard error of each value is that of its Monte Carlo over z (the sum over i is exact):
sqrt(sum_i s_i^2 / M) / N, s_i^2 the variance of sample i's M terms; reported as the extras
`se_xt` and `se_ty` (bits; `samples` must be >= 2).

Zero variance: under multiplicative noise a unit at exactly 0 (a ReLU that is off) has
variance 0, T is exactly 0 there, and T given X is no longer a density. The rule here: every
unit's variance is at least `min_std`^2 (default 1e-3^2): such a unit is taken as
N(0, min_std^2). A unit that is 0 for every sample then adds exactly nothing (its factor is the
same for every component); a unit that is 0 for some samples and not for others separates the
two groups as the exact zero pattern does. Additive noise with SIGMA >= min_std is unchanged.

How: per item (one at a time), the queries in row blocks and the components in column blocks
(never N x N: `_TILE_ELEMENTS` terms at once), l_j(t) from two matrix products (t^2 by 1/v_j
and t by mu_j / v_j) in float64, a running log-sum-exp per class (the densities of narrow
variances overflow any fixed scale), and a product with the one-hot labels for the per-class
sums. Items with a NaN or infinite activation give NaN.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from ib_jax import noise as noise_lib
from ib_jax.estimators import common

_TILE_ELEMENTS = 1 << 20  # (query, component) pairs per step
_MAX_BLOCK = 1024


def check_samples(samples) -> None:
    """ValueError unless `samples` (draws per sample) is an integer >= 2: the standard error
    needs two."""
    if isinstance(samples, bool) or int(samples) != samples or samples < 2:
        raise ValueError(
            f"noise_mc's samples (--noise_samples) must be an integer >= 2 (its standard error needs two), "
            f"got {samples}"
        )


@dataclasses.dataclass(frozen=True)
class NoiseMC(common.Estimator):
    """`NoiseMC(noise, samples=4, seed=0, min_std=1e-3, every_layer=False)`: the information of
    the layers that carry `noise` (`ib_jax.noise.LayerNoise`, or its flag form
    "additive:0.1"), measured on their noiseless activations. In a network's layers (hidden
    layers, then the logits) those without noise give NaN; with `every_layer`, every measured
    layer is taken to carry it (one layer's activations measured directly). See the module
    docstring."""

    noise: noise_lib.LayerNoise
    samples: int = 4
    seed: int = 0
    min_std: float = 1e-3
    every_layer: bool = False
    noisy_layer: bool = True  # set per layer by `at_layer`

    takes_means = True
    extras = ("se_xt", "se_ty")

    def __post_init__(self):
        layer_noise = self.noise
        if isinstance(layer_noise, str):
            try:
                layer_noise = noise_lib.LayerNoise.parse(layer_noise)
            except Exception as e:  # ConfigError: a ValueError here, as every estimator's
                raise ValueError(str(e)) from None
        if not isinstance(layer_noise, noise_lib.LayerNoise) or not layer_noise.active:
            raise ValueError(
                "the noise_mc estimator needs a network with noise of its own: pass --layer_noise additive:SIGMA "
                "or gaussian_dropout:P"
            )
        object.__setattr__(self, "noise", layer_noise)
        check_samples(self.samples)
        object.__setattr__(self, "samples", int(self.samples))
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed}")
        object.__setattr__(self, "seed", int(self.seed))
        if not (math.isfinite(float(self.min_std)) and float(self.min_std) > 0):
            raise ValueError(f"min_std must be > 0, got {self.min_std}")
        object.__setattr__(self, "min_std", float(self.min_std))

    @property
    def name(self) -> str:
        return "noise_mc"

    def at_layer(self, index: int, num_layers: int) -> "NoiseMC":
        if self.every_layer:
            return self
        return dataclasses.replace(self, noisy_layer=self.noise.noisy(index, num_layers - 1))

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        del exact
        b, n, d = acts_BxNxD.shape
        if not self.noisy_layer:
            nan = jnp.full((b,), jnp.nan, jnp.float32)
            return nan, nan, {"se_xt": nan, "se_ty": nan}
        shared = labels.ndim == 1
        per_item = (jnp.arange(b, dtype=jnp.uint32),) + (() if shared else (labels,))

        def fn(a, item, *y):
            keys = common.item_keys(a, item, self.seed)
            return _terms(a, labels if shared else y[0], keys, self.noise, self.min_std, num_classes, self.samples)

        log_all, log_same = common.in_chunks(fn, acts_BxNxD, 1, *per_item)  # [B, N, M] each
        i_xt = math.log(n) - jnp.mean(log_all, axis=(1, 2))
        i_ty = i_xt - common.mean_log_class_size(labels, num_classes) + jnp.mean(log_same, axis=(1, 2))
        m = self.samples

        def standard_error(v):  # [B, N, M] -> [B]: the Monte Carlo error of the mean over (i, z)
            return jnp.sqrt(jnp.sum(jnp.var(v, axis=2, ddof=1), axis=1) / m) / n

        bad = ~common.finite_items(acts_BxNxD)
        to_bits = lambda x: jnp.where(bad, jnp.nan, x / math.log(2.0)).astype(jnp.float32)  # noqa: E731
        extras = {"se_xt": to_bits(standard_error(log_all)), "se_ty": to_bits(standard_error(log_same - log_all))}
        return to_bits(i_xt), to_bits(i_ty), extras


def _terms(acts_KxNxD, labels, keys_K, layer_noise, min_std: float, num_classes: int, samples: int):
    """log sum_j exp(l_j(t) - l_i(t)) over all j and over the j of i's class, for `samples` draws t
    of each sample i: [K, N, M] each (float64). The draws are made a block of samples at a time
    (block b's from `fold_in(key, b)`), never all at once."""
    k, n, d = acts_KxNxD.shape
    m = samples
    mu = jnp.where(jnp.isfinite(acts_KxNxD), acts_KxNxD, 0.0).astype(jnp.float64)
    if layer_noise.kind == "additive":  # only differences matter: centre, as kde does
        mu = mu - jnp.mean(mu, axis=1, keepdims=True)
    var = jnp.maximum(layer_noise.variance(mu), min_std**2)  # [K, N, D]
    w = 1.0 / var
    log_det = jnp.sum(jnp.log(var), axis=-1)  # [K, N]
    const = jnp.sum(mu * mu * w, axis=-1) + log_det
    labels = jnp.broadcast_to(labels, (k, n)).astype(jnp.int32)
    onehot = (labels[:, :, None] == jnp.arange(num_classes, dtype=jnp.int32)).astype(jnp.float64)
    col = min(n, _MAX_BLOCK)
    ncol = -(-n // col)
    per_block = max(1, min(n, _TILE_ELEMENTS // (col * m), _MAX_BLOCK // m))  # samples per row block
    nrow = -(-n // per_block)

    def blocks(x, size, count, fill=0.0):
        x = jnp.pad(x, ((0, 0), (0, count * size - n), *((0, 0),) * (x.ndim - 2)), constant_values=fill)
        return jnp.moveaxis(x.reshape(k, count, size, *x.shape[2:]), 1, 0)

    w_b, muw_b, onehot_b = blocks(w, col, ncol), blocks(mu * w, col, ncol), blocks(onehot, col, ncol)
    const_b = blocks(const, col, ncol, jnp.inf)  # padding components: log density -inf
    highest = jax.lax.Precision.HIGHEST

    def row_block(args):
        mu_s, var_s, log_det_s, index = args  # [K, S, D], [K, S, D], [K, S], []
        draw = lambda key: jax.random.normal(jax.random.fold_in(key, index), (per_block, m, d), jnp.float32)  # noqa: E731
        z = jax.vmap(draw)(keys_K).astype(jnp.float64)  # [K, S, M, D]
        t = (mu_s[:, :, None, :] + jnp.sqrt(var_s)[:, :, None, :] * z).reshape(k, per_block * m, d)
        own = (-0.5 * (jnp.sum(z * z, axis=-1) + log_det_s[:, :, None])).reshape(k, per_block * m)
        t2 = t * t

        def column_block(carry, c):
            top, sums = carry  # [K, R], [K, R, C]
            w_j, muw_j, const_j, onehot_j = c
            quad = jnp.einsum("krd,kjd->krj", t2, w_j, precision=highest) - 2.0 * jnp.einsum(
                "krd,kjd->krj", t, muw_j, precision=highest
            )
            rel = -0.5 * (quad + const_j[:, None, :]) - own[:, :, None]  # l_j(t) - l_i(t)
            new_top = jnp.maximum(top, jnp.max(rel, axis=-1))
            part = jnp.einsum("krj,kjc->krc", jnp.exp(rel - new_top[:, :, None]), onehot_j, precision=highest)
            return (new_top, sums * jnp.exp(top - new_top)[:, :, None] + part), None

        start = (jnp.full(own.shape, -jnp.inf, jnp.float64), jnp.zeros((*own.shape, num_classes), jnp.float64))
        (top, sums), _ = jax.lax.scan(column_block, start, (w_b, muw_b, const_b, onehot_b))
        return top, sums

    rows = (
        blocks(mu, per_block, nrow),
        blocks(var, per_block, nrow, 1.0),
        blocks(log_det, per_block, nrow),
        jnp.arange(nrow, dtype=jnp.uint32),
    )
    top, sums = jax.lax.map(row_block, rows)  # [nrow, K, S * M], [nrow, K, S * M, C]
    top = jnp.moveaxis(top, 0, 1).reshape(k, nrow * per_block, m)[:, :n]
    sums = jnp.moveaxis(sums, 0, 1).reshape(k, nrow * per_block, m, num_classes)[:, :n]
    same = jnp.take_along_axis(sums, labels[:, :, None, None], axis=3)[..., 0]
    return top + jnp.log(jnp.sum(sums, axis=-1)), top + jnp.log(same)


def noise_mc_information(
    means: jax.Array,
    labels: jax.Array,
    *,
    noise: str | noise_lib.LayerNoise,
    samples: int = 4,
    seed: int = 0,
    min_std: float = 1e-3,
    num_classes: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of a layer with noise of its own, with their Monte Carlo standard
    errors (see the module docstring).

    Args:
      means: the layer's noiseless activations mu [..., N, D]; the leading axes are items.
      labels: int [N], or [..., N] with the leading axes of `means`.
      noise: the layer's noise: "additive:SIGMA", "gaussian_dropout:P" or a `LayerNoise`.
      samples: draws of T per sample (>= 2).
      seed: the draws' seed.
      min_std: the smallest standard deviation of a unit (the rule for zero variance).
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      i_xt, i_ty, se_xt, se_ty: float32 [...] in bits.
    """
    estimator = NoiseMC(noise, samples, seed, min_std, every_layer=True)
    i_xt, i_ty, extras = common.measure((means,), labels, estimator, num_classes=num_classes, with_extras=True)
    return i_xt[..., 0], i_ty[..., 0], extras["se_xt"][..., 0], extras["se_ty"][..., 0]
