"""Entropy of counts with the bias corrections of the plug-in estimators, in bits, on the device.

`entropy_bits(counts, correction, cells)` takes counts [..., M] (float64; zeros are empty
cells; N = their sum) and returns [...]:

  * "none": the plug-in (maximum-likelihood) entropy -sum p log p, p = n / N.
  * "miller_madow": plug-in + (m - 1) / 2N (Miller 1955; m occupied cells).
  * "chao_shen": coverage-adjusted Horvitz-Thompson, -sum p~ log p~ / (1 - (1 - p~)^N) with
    p~ = C n / N, C = 1 - f1 / N (f1 singletons; f1 = N - 1 where every count is 1)
    (Chao & Shen 2003).
  * "grassberger": log N - (1/N) sum n G(n), G(n) = psi(n) + (-1)^n / 2 (psi((n + 1) / 2) -
    psi(n / 2)) (Grassberger 2003, his eq. 35; not the older psi(n) + (-1)^n / (n + 1)).
  * "nsb": Nemenman, Shafee & Bialek (2002): the posterior mean of H under a mixture of
    symmetric Dirichlet priors Dir(beta) over `cells` cells, weighted so that the prior on H is
    flat, d xi / d beta with xi(beta) = psi(K beta + 1) - psi(beta + 1) the prior mean of H.

How NSB is integrated. With kappa = K beta (the total concentration), the posterior of log kappa
is exp(L(kappa)) (d xi / d kappa) kappa, with L = log Gamma(kappa) - log Gamma(N + kappa) +
sum_i [log Gamma(n_i + beta) - log Gamma(beta)], and E[H | n, beta] = psi(N + kappa + 1) -
sum_i (n_i + beta) / (N + kappa) psi(n_i + beta + 1) over all K cells (empty ones included).
For `cells` = inf (or above 2**53) the K -> infinity limit is taken: L = m log kappa + log
Gamma(kappa) - log Gamma(N + kappa) + const, E[H | kappa] = psi(N + kappa + 1) - sum_i n_i /
(N + kappa) psi(n_i + 1) - kappa / (N + kappa) psi(1), d xi / d kappa = psi_1(kappa + 1), so
only scalars enter the integral. The integral over log kappa is done on the device on grids of
`_POINTS` points: the first spans kappa in [1e-8, 1e14] (to 1e4 K for finite K); each of
`_STAGES` - 1 zooms spans the previous grid's points within `_WINDOW` nats of its peak (one step
either side), which hold all but about e^-30 of the mass; the trapezoid rule on the last grid
(whose step is a small fraction of the posterior's width) gives the mean. Against scipy's adaptive
quadrature (tests) the result agrees to 1e-6 relative. Where the posterior is improper, NSB has
no estimate and the value is NaN: with infinitely many cells and no coincidence (every count 1),
the likelihood grows without bound in kappa.
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy import special

CORRECTIONS = ("none", "miller_madow", "chao_shen", "grassberger", "nsb")
INFINITE_CELLS = 2.0**53  # at least this many cells: NSB takes the K -> infinity limit
_POINTS = 256  # of each stage's grid
_STAGES = 3
_WINDOW = 30.0  # nats below the peak that each zoomed grid covers
_LOG_KAPPA = (math.log(1e-8), math.log(1e14))
_LN2 = math.log(2.0)


def check(value: str) -> None:
    """ValueError unless `value` is one of `CORRECTIONS`."""
    if value not in CORRECTIONS:
        raise ValueError(f"bias_correction must be one of {', '.join(CORRECTIONS)}, got {value!r}")


def entropy_bits(counts: jax.Array, correction: str = "none", cells: float = math.inf) -> jax.Array:
    """The entropy in bits [...] of counts [..., M] (see the module docstring); `cells` is the
    number of possible cells K (NSB only; inf for an unbounded alphabet). Needs x64."""
    counts = jnp.asarray(counts, jnp.float64)
    n = jnp.sum(counts, axis=-1)
    occupied = counts > 0
    safe = jnp.where(occupied, counts, 1.0)
    if correction in ("none", "miller_madow"):
        h = jnp.log(n) - jnp.sum(jnp.where(occupied, counts * jnp.log(safe), 0.0), axis=-1) / n
        if correction == "miller_madow":
            h = h + (jnp.sum(occupied, axis=-1) - 1.0) / (2.0 * n)
    elif correction == "chao_shen":
        singletons = jnp.sum(counts == 1, axis=-1).astype(jnp.float64)
        singletons = jnp.where(singletons == n, n - 1.0, singletons)
        coverage = 1.0 - singletons / n
        p = coverage[..., None] * safe / n[..., None]
        inclusion = 1.0 - jnp.exp(n[..., None] * jnp.log1p(-p))  # 1 - (1 - p)^N
        h = -jnp.sum(jnp.where(occupied, p * jnp.log(p) / inclusion, 0.0), axis=-1)
    elif correction == "grassberger":
        h = jnp.log(n) - jnp.sum(jnp.where(occupied, counts * _grassberger_g(safe), 0.0), axis=-1) / n
    elif correction == "nsb":
        flat = counts.reshape(-1, counts.shape[-1])
        h = jax.vmap(lambda c: _nsb(c, float(cells)))(flat).reshape(counts.shape[:-1])
    else:
        check(correction)
    return h / _LN2


def _grassberger_g(n: jax.Array) -> jax.Array:
    sign = 1.0 - 2.0 * jnp.mod(n, 2.0)  # (-1)^n for integer n
    return special.digamma(n) + 0.5 * sign * (special.digamma((n + 1.0) / 2.0) - special.digamma(n / 2.0))


def _log_rising_inverse(a, n):
    """log Gamma(a) - log Gamma(a + n) = -log (a (a + 1) ... (a + n - 1)), through the log-beta
    function, which stays accurate where both log-gammas are huge (a >> n)."""
    return special.betaln(a, n) - special.gammaln(n)


def _nsb(counts_M: jax.Array, cells: float) -> jax.Array:
    """NSB's posterior mean entropy in nats of one item's counts [M]."""
    n = jnp.sum(counts_M)
    occupied = counts_M > 0
    m = jnp.sum(occupied).astype(jnp.float64)
    safe = jnp.where(occupied, counts_M, 1.0)
    infinite = cells >= INFINITE_CELLS or math.isinf(cells)
    if infinite:
        fixed = jnp.sum(jnp.where(occupied, counts_M * special.digamma(safe + 1.0), 0.0))

        def log_post_and_h(log_kappa):
            kappa = jnp.exp(log_kappa)
            log_like = m * log_kappa + _log_rising_inverse(kappa, n)
            prior = special.polygamma(1, kappa + 1.0)
            h = special.digamma(n + kappa + 1.0) - (fixed + kappa * special.digamma(1.0)) / (n + kappa)
            return log_like + jnp.log(prior) + log_kappa, h
    else:
        k = float(cells)

        def log_post_and_h(log_kappa):
            kappa = jnp.exp(log_kappa)
            beta = kappa / k
            per_cell = jnp.where(occupied, -_log_rising_inverse(beta, safe), 0.0)
            log_like = _log_rising_inverse(kappa, n) + jnp.sum(per_cell)
            prior = special.polygamma(1, kappa + 1.0) - special.polygamma(1, beta + 1.0) / k
            seen = jnp.sum(jnp.where(occupied, (safe + beta) * special.digamma(safe + beta + 1.0), 0.0))
            empty = (k - m) * beta * special.digamma(beta + 1.0)
            h = special.digamma(n + kappa + 1.0) - (seen + empty) / (n + kappa)
            return log_like + jnp.log(jnp.maximum(prior, 1e-300)) + log_kappa, h

    evaluate = jax.vmap(log_post_and_h)
    hi = _LOG_KAPPA[1] if infinite else max(_LOG_KAPPA[1], math.log(cells) + math.log(1e4))
    grid = jnp.linspace(_LOG_KAPPA[0], hi, _POINTS)
    for _ in range(_STAGES - 1):  # zoom in on the coarse points within _WINDOW nats of the peak
        log_post, _ = evaluate(grid)
        inside = log_post >= jnp.max(log_post) - _WINDOW
        step = grid[1] - grid[0]
        lo = jnp.min(jnp.where(inside, grid, jnp.inf)) - step
        top = jnp.max(jnp.where(inside, grid, -jnp.inf)) + step
        grid = jnp.linspace(lo, top, _POINTS)
    log_post, h = evaluate(grid)
    weights = jnp.exp(log_post - jnp.max(log_post))
    weights = weights.at[0].multiply(0.5).at[-1].multiply(0.5)  # the trapezoid rule on an even grid
    value = jnp.sum(weights * h) / jnp.sum(weights)
    if infinite:  # every count 1: the posterior is improper (no coincidence, no estimate)
        value = jnp.where(m >= n, jnp.nan, value)
    return value
