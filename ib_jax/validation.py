"""Distributions whose information is known, with their truth: the ground against which the
estimators are scored (plain numpy, float64; nothing here runs on the device).

  * `class_clusters`: K Gaussian classes on one axis (the other axes pure noise), and
    `class_clusters_information`, the true I(T;Y) (or I(T+Z;Y) of the layer plus Gaussian
    noise) by one-dimensional quadrature.
  * `noisy_layer_information`: I(X; T+Z) of given rows T with X uniform over them and
    Z ~ N(0, s2 I), by Monte Carlo with its standard error (a reference value, for the KDE
    family; no closed form exists).
  * `quantized_clusters`: the same clusters on a grid of cells of one width (integer codes), and
    `quantized_clusters_entropy` / `quantized_clusters_information`, their exact H(Q(T)) and
    I(Q(T);Y) as finite sums over differences of the normal CDF: the truth for the plug-in
    estimators (`exact`, and the bias they have at a finite N).
  * `diagonal_noise_information`: I(X;T) of a layer with noise of its own (per-sample diagonal
    Gaussians: additive or Gaussian dropout) by plain Monte Carlo, the reference of `noise_mc`.
  * `correlated_gaussians`: jointly Gaussian (X, T) with chosen canonical correlations in any
    dimensions, `gaussian_information` its closed-form I(X;T), and
    `gaussian_sliced_information` its sliced information over given slices (each slice
    Gaussian, in closed form); `clusters_sliced_information`, the sliced SI(T;Y) of
    `class_clusters` by 1-D quadrature per direction.
"""

import math

import numpy as np

_GRID_POINTS = 200_001  # quadrature nodes over +-12 standard deviations around the means
_LOG2 = math.log(2.0)


def class_means(num_classes: int, separation: float) -> np.ndarray:
    """The K class means of `class_clusters`' first coordinate: separation (k - (K-1)/2), centred."""
    return separation * (np.arange(num_classes) - (num_classes - 1) / 2.0)


def cell_codes(t: np.ndarray, width: float) -> np.ndarray:
    """The cell of each value on a grid of `width` (int32): floor(t / width) in float64, so cell
    j is [j width, (j + 1) width) whatever t's own precision."""
    return np.floor(np.asarray(t, np.float64) / width).astype(np.int32)


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
    t[:, 0] += class_means(num_classes, separation)[y]
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
    means = class_means(num_classes, separation)
    x = np.linspace(means.min() - 12 * s, means.max() + 12 * s, points)
    log_phi = -0.5 * ((x[None, :] - means[:, None]) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))  # [K, G]
    log_p = np.logaddexp.reduce(log_phi, axis=0) - math.log(num_classes)
    integrand = np.exp(log_phi) * (log_phi - log_p[None, :])  # >= 0 in sum over k
    nats = np.trapezoid(integrand, x, axis=1).mean()
    return float(max(nats, 0.0) / _LOG2)


def quantized_clusters(
    seed: int, *, n: int, dim: int, num_classes: int, separation: float, spread: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """`class_clusters` (same arguments, same draws) quantized on a grid of cells of `width`:
    (codes [n, dim] int32 = floor(t / width), y [n] int32). Cell j of a coordinate is
    [j width, (j + 1) width)."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    t, y = class_clusters(seed, n=n, dim=dim, num_classes=num_classes, separation=separation, spread=spread)
    return cell_codes(t, width), y


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) to full relative precision in both tails (erfc, not 1 + erf)."""
    return 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in np.ravel(z)]).reshape(np.shape(z))


def _cell_probabilities(means: np.ndarray, spread: float, width: float) -> np.ndarray:
    """P(cell j | class k) [K, J] of N(m_k, spread^2) on cells [j width, (j + 1) width) covering
    every mean +- 40 spreads (the mass beyond, < 1e-300, is below float64's resolution): the
    difference of the normal CDF at the cell's edges, the upper tail's as a difference of the
    survival function so that no cell loses its digits to 1 - 1."""
    lo = math.floor((means.min() - 40 * spread) / width)
    hi = math.floor((means.max() + 40 * spread) / width) + 1
    edges = np.arange(lo, hi + 1) * width  # [J + 1]
    z = (edges[None, :] - means[:, None]) / spread  # [K, J + 1]
    below = _normal_cdf(z)  # Phi, accurate where z < 0
    above = _normal_cdf(-z)  # 1 - Phi, accurate where z > 0
    left = np.where(z[:, :-1] < 0, below[:, 1:] - below[:, :-1], above[:, :-1] - above[:, 1:])
    return np.clip(left, 0.0, None)


def _entropy_bits(p: np.ndarray, axis=-1) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def quantized_clusters_entropy(*, dim: int, num_classes: int, separation: float, spread: float, width: float) -> float:
    """The exact entropy H(Q(T)) in bits of `quantized_clusters`' codes (= I(X;Q(T)) of a
    deterministic layer): the first coordinate's cells have the mixture's probabilities
    p_j = (1/K) sum_k [Phi((b_{j+1} - m_k)/s) - Phi((b_j - m_k)/s)], the other dim - 1
    coordinates are independent with the same sum for one class at 0, and
    H = H(p) + (dim - 1) H(q): a finite sum over the cells within 40 spreads of a mean."""
    means = class_means(num_classes, separation)
    first = _entropy_bits(_cell_probabilities(means, spread, width).mean(0))
    noise = _entropy_bits(_cell_probabilities(np.zeros(1), spread, width)[0]) if dim > 1 else 0.0
    return float(first + (dim - 1) * noise)


def quantized_clusters_information(*, num_classes: int, separation: float, spread: float, width: float) -> float:
    """The exact I(Q(T);Y) in bits of `quantized_clusters` (any dim: the other coordinates are
    independent of y and of the first), H(p) - (1/K) sum_k H(p_k) with p_k the cell
    probabilities of class k (see `quantized_clusters_entropy`)."""
    means = class_means(num_classes, separation)
    given = _cell_probabilities(means, spread, width)  # [K, J]
    return float(max(_entropy_bits(given.mean(0)) - _entropy_bits(given).mean(), 0.0))


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


def diagonal_noise_information(
    means_NxD: np.ndarray, variances_NxD: np.ndarray, *, draws: int = 100_000, seed: int = 0
) -> tuple[float, float]:
    """I(X;T) in bits for X uniform over N samples and T given sample i Gaussian with mean
    mu_i and diagonal variance v_i (a layer with noise of its own: additive, v = SIGMA^2, or
    Gaussian dropout, v = P/(1-P) mu^2), by plain Monte Carlo: (estimate, standard error).
    h(T|X) in closed form, h(T) = -E log p(T) over draws from the mixture; the reference that
    `estimators.noise_mc` is tested against, written independently of it (plain numpy, direct
    differences, no expanded quadratic form). Give it a `seed` other than the one that drew the
    means: numpy streams of one seed repeat, and draws equal to the data would bias it."""
    mu = np.asarray(means_NxD, np.float64)
    var = np.asarray(variances_NxD, np.float64)
    if mu.ndim != 2 or mu.shape != var.shape or not np.all(var > 0):
        raise ValueError("means and variances must be [N, D] of the same shape, variances > 0")
    n, d = mu.shape
    m = max(2, draws // n)
    rng = np.random.default_rng(seed)
    log_det = np.log(var).sum(1)  # [N]
    h_given_x = 0.5 * np.mean(log_det) + 0.5 * d * math.log(2 * math.pi * math.e)
    neg_log_p = np.empty((n, m))
    for i in range(n):
        t = mu[i] + np.sqrt(var[i]) * rng.standard_normal((m, d))  # [M, D]
        sq = ((t[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :]).sum(-1)  # [M, N]
        log_comp = -0.5 * (sq + log_det[None, :] + d * math.log(2 * math.pi))
        neg_log_p[i] = -(np.logaddexp.reduce(log_comp, axis=1) - math.log(n))
    estimate = neg_log_p.mean() - h_given_x
    error = math.sqrt(np.sum(neg_log_p.var(axis=1, ddof=1) / m)) / n
    return estimate / _LOG2, error / _LOG2


def correlated_gaussians(
    seed: int, *, n: int, dim_x: int, dim_t: int, correlations: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of jointly Gaussian (X, T), X ~ N(0, I) in `dim_x` and T ~ N(0, I) in `dim_t`
    dimensions, whose only dependence is coordinate i of X with coordinate i of T, correlation
    `correlations[i]` (the canonical correlations; r = len(correlations) <= both dims). Returns
    (x [n, dim_x], t [n, dim_t]) float32. The cross-covariance is `cross_covariance(...)`."""
    rho = np.asarray(correlations, np.float64)
    r = len(rho)
    if r > min(dim_x, dim_t) or np.any(np.abs(rho) >= 1):
        raise ValueError("give at most min(dim_x, dim_t) correlations, each in (-1, 1)")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim_x))
    t = rng.standard_normal((n, dim_t))
    t[:, :r] = rho * x[:, :r] + np.sqrt(1 - rho**2) * t[:, :r]
    return x.astype(np.float32), t.astype(np.float32)


def cross_covariance(dim_x: int, dim_t: int, correlations) -> np.ndarray:
    """Cov(X, T) [dim_x, dim_t] of `correlated_gaussians` (both marginals are N(0, I))."""
    c = np.zeros((dim_x, dim_t))
    rho = np.asarray(correlations, np.float64)
    c[np.arange(len(rho)), np.arange(len(rho))] = rho
    return c


def gaussian_information(correlations) -> float:
    """The true I(X;T) in bits of `correlated_gaussians`: -1/2 sum_i log(1 - rho_i^2)."""
    rho = np.asarray(correlations, np.float64)
    return float(-0.5 * np.sum(np.log1p(-(rho**2))) / _LOG2)


def gaussian_sliced_information(cross: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> tuple[float, float]:
    """The sliced information of jointly Gaussian (X, T) with identity marginal covariances and
    cross-covariance `cross` [Dx, Dt], over the given slices: theta [m, Dx, k] and phi [m, Dt, k]
    orthonormal frames. Each slice's (theta^T X, phi^T T) is Gaussian with identity marginals
    and cross-covariance R = theta^T C phi, so its information is -1/2 log det(I - R R^T) (for
    k = 1: -1/2 log(1 - rho^2)). Returns (the mean over slices, its standard error) in bits: the
    truth of `estimators.sliced` for these very slices (the estimator's own draw), or, with
    many slices, SI itself to any precision."""
    th = np.asarray(theta, np.float64)
    ph = np.asarray(phi, np.float64)
    r = np.einsum("mxk,xt,mtl->mkl", th, np.asarray(cross, np.float64), ph)
    eye = np.eye(r.shape[1])
    _, logdet = np.linalg.slogdet(eye[None] - r @ np.swapaxes(r, 1, 2))
    values = -0.5 * logdet / _LOG2
    return float(values.mean()), _standard_error(values)


def _standard_error(values: np.ndarray) -> float:
    """std / sqrt(m) of m values (NaN for one)."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


def clusters_sliced_information(
    phi: np.ndarray, *, num_classes: int, separation: float, spread: float, points: int = 20_001
) -> tuple[float, float]:
    """The sliced SI(T;Y) in bits of `class_clusters` over the given unit directions phi [m, D]
    (or [m, D, 1]): the projection phi^T T is itself a set of K clusters on one axis, with
    separation |phi_0| x separation and the same spread (the other coordinates are isotropic
    noise), so each slice's I(phi^T T; Y) is `class_clusters_information` of those, by 1-D
    quadrature (`points` nodes). Returns (the mean over slices, its standard error)."""
    p = np.asarray(phi, np.float64).reshape(len(phi), -1)
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    values = np.array([_clusters_information(num_classes, abs(c) * separation, spread, 0.0, points) for c in p[:, 0]])
    return float(values.mean()), _standard_error(values)
