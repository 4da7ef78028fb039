"""Distributions whose information is known, with their truth: the ground against which the
estimators are scored (plain numpy, float64; nothing here runs on the device).

  * `class_clusters`: K Gaussian classes on one axis (the other axes pure noise), and
    `class_clusters_information`, the true I(T;Y) (or I(T+Z;Y) of the layer plus Gaussian
    noise) by one-dimensional quadrature.
  * `noisy_layer_information`: I(X; T+Z) of given rows T with X uniform over them and
    Z ~ N(0, s2 I), by Monte Carlo with its standard error (a reference value, for the KDE
    family; no closed form exists).
"""

import math

import numpy as np

_GRID_POINTS = 200_001  # quadrature nodes over +-12 standard deviations around the means
_LOG2 = math.log(2.0)


def class_clusters(
    seed: int, *, n: int, dim: int, num_classes: int, separation: float, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of K = `num_classes` balanced classes, rows shuffled: (t [n, dim] float32,
    y [n] int32). Given y, t's first coordinate is N(separation (y - (K-1)/2), spread^2) (K means
    equally spaced on one axis, centred); the other dim - 1 coordinates are independent
    N(0, spread^2) noise that carries no information about y."""
    if num_classes < 1 or n < num_classes or n % num_classes:
        raise ValueError(f"n ({n}) must be a positive multiple of num_classes ({num_classes})")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not spread > 0:
        raise ValueError(f"spread must be > 0, got {spread}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(num_classes), n // num_classes)).astype(np.int32)
    t = rng.standard_normal((n, dim)) * spread
    t[:, 0] += separation * (y - (num_classes - 1) / 2.0)
    return t.astype(np.float32), y


def class_clusters_information(
    *, num_classes: int, separation: float, spread: float, noise_variance: float = 0.0
) -> float:
    """The true I(T+Z;Y) in bits of `class_clusters` with Z ~ N(0, noise_variance I) (0: the
    layer itself, I(T;Y)). Only the first coordinate depends on y, with variance s^2 =
    spread^2 + noise_variance given y, so

      I = (1/K) sum_k  int N(x; m_k, s^2) log2(N(x; m_k, s^2) / p(x)) dx,   p = (1/K) sum_k N(., m_k, s^2),

    each term an integral over one axis, by the trapezoidal rule on 200,001 nodes over
    [min m - 12 s, max m + 12 s] (the tails beyond hold < 1e-30 of the mass). Tested: 0 at
    separation 0, log2 K for far-apart classes, and unchanged (to 1e-9) on a grid 4x coarser."""
    return _clusters_information(num_classes, separation, spread, noise_variance, _GRID_POINTS)


def _clusters_information(num_classes, separation, spread, noise_variance, points) -> float:
    variance = spread**2 + noise_variance
    if not variance > 0:
        raise ValueError("spread^2 + noise_variance must be > 0")
    s = math.sqrt(variance)
    means = separation * (np.arange(num_classes) - (num_classes - 1) / 2.0)
    x = np.linspace(means.min() - 12 * s, means.max() + 12 * s, points)
    log_phi = -0.5 * ((x[None, :] - means[:, None]) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))  # [K, G]
    log_p = np.logaddexp.reduce(log_phi, axis=0) - math.log(num_classes)
    integrand = np.exp(log_phi) * (log_phi - log_p[None, :])  # >= 0 in sum over k
    nats = np.trapezoid(integrand, x, axis=1).mean()
    return float(max(nats, 0.0) / _LOG2)


def noisy_layer_information(
    t_NxD: np.ndarray, noise_variance: float, *, draws: int = 100_000, seed: int = 0
) -> tuple[float, float]:
    """I(X; T+Z) in bits for X uniform over the N given rows and Z ~ N(0, noise_variance I),
    by Monte Carlo: (estimate, standard error). With M = max(1, draws // N) draws of z per row
    (spread evenly over the rows),

      I = log N - mean_{i,z} log sum_j exp(-(|t_i + z - t_j|^2 - |z|^2) / (2 s2))   (nats),

    the mixture's entropy less the noise's (the own term is 1). The standard error is
    the spread over the draws with the rows fixed, (sum_i Var_z(LSE_i) / M)^(1/2) / N: the
    estimate of this fixed set of rows, a reference for the KDE family."""
    t = np.asarray(t_NxD, np.float64)
    if t.ndim != 2 or len(t) < 1:
        raise ValueError(f"t must be [N, D], got shape {t.shape}")
    if not noise_variance > 0:
        raise ValueError(f"noise_variance must be > 0, got {noise_variance}")
    n, d = t.shape
    m = max(1, draws // n)
    rng = np.random.default_rng(seed)
    sq = (t * t).sum(1)
    lse = np.empty((n, m))
    rows = max(1, 2_000_000 // (n * m))  # rows per chunk: about 2e6 pair terms at once
    for start in range(0, n, rows):
        ti = t[start : start + rows]
        z = rng.standard_normal((len(ti), m, d)) * math.sqrt(noise_variance)
        q = (ti[:, None, :] + z).reshape(-1, d)
        d2 = (q * q).sum(1)[:, None] + sq[None, :] - 2.0 * q @ t.T - (z * z).sum(-1).reshape(-1, 1)
        e = -d2 / (2.0 * noise_variance)
        top = e.max(axis=1, keepdims=True)
        lse[start : start + rows] = (np.log(np.exp(e - top).sum(1)) + top[:, 0]).reshape(len(ti), m)
    estimate = math.log(n) - lse.mean()
    error = math.sqrt(np.sum(lse.var(axis=1, ddof=1) / m)) / n if m > 1 else float("nan")
    return estimate / _LOG2, error / _LOG2
