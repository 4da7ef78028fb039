"""Tests of the entropy bias corrections (Chao-Shen, Grassberger, NSB; plug-in and Miller-Madow)
against plain-numpy and scipy references written here, and through the plug-in estimators."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import integrate, special

from ib_jax import estimators
from ib_jax.estimators import corrections


def reference(counts, correction: str, cells: float = math.inf) -> float:
    """Each correction in plain numpy (nats in, bits out), from its paper's formula."""
    n_i = np.asarray([c for c in counts if c > 0], np.float64)
    n = n_i.sum()
    if correction == "none":
        p = n_i / n
        h = -np.sum(p * np.log(p))
    elif correction == "miller_madow":
        p = n_i / n
        h = -np.sum(p * np.log(p)) + (len(n_i) - 1) / (2 * n)
    elif correction == "chao_shen":
        f1 = np.sum(n_i == 1)
        if f1 == n:
            f1 = n - 1
        p = (1 - f1 / n) * n_i / n
        h = -np.sum(p * np.log(p) / (1 - (1 - p) ** n))
    elif correction == "grassberger":
        g = special.digamma(n_i) + 0.5 * (-1.0) ** n_i * (special.digamma((n_i + 1) / 2) - special.digamma(n_i / 2))
        h = np.log(n) - np.sum(n_i * g) / n
    else:
        return nsb_reference(n_i, cells)
    return float(h / np.log(2))


def _log_rising(a: float, count: float) -> float:
    """log a (a + 1) ... (a + count - 1), summed term by term."""
    return float(np.sum(np.log(a + np.arange(int(count)))))


def nsb_reference(n_i, cells: float) -> float:
    """NSB by scipy's adaptive quadrature over u = log(beta) (finite K; the prior d xi / d beta)
    or u = log(kappa) (K infinite: the Dirichlet-process limit), the likelihood's Gamma ratios
    as explicit products."""
    n, m = n_i.sum(), len(n_i)
    infinite = math.isinf(cells)

    def log_post(u):
        b = math.exp(u)
        if infinite:
            return m * u - _log_rising(b, n) + math.log(special.polygamma(1, b + 1)) + u
        prior = cells * special.polygamma(1, cells * b + 1) - special.polygamma(1, b + 1)
        if prior <= 0:
            return -np.inf
        like = -_log_rising(cells * b, n) + sum(_log_rising(b, c) for c in n_i)
        return like + math.log(prior) + u

    def mean_h(u):
        b = math.exp(u)
        if infinite:
            return special.digamma(n + b + 1) - (np.sum(n_i * special.digamma(n_i + 1)) + b * special.digamma(1)) / (
                n + b
            )
        kappa = cells * b
        seen = np.sum((n_i + b) * special.digamma(n_i + b + 1))
        return special.digamma(n + kappa + 1) - (seen + (cells - m) * b * special.digamma(b + 1)) / (n + kappa)

    grid = np.linspace(-40, 40 if infinite else 12, 801)
    values = np.array([log_post(u) for u in grid])
    top = values.max()
    lo, hi = grid[values > top - 40][[0, -1]]
    weight = lambda u: math.exp(log_post(u) - top)  # noqa: E731
    z = integrate.quad(weight, lo - 1, hi + 1, limit=400, epsabs=0, epsrel=1e-11)[0]
    num = integrate.quad(lambda u: weight(u) * mean_h(u), lo - 1, hi + 1, limit=400, epsabs=0, epsrel=1e-11)[0]
    return num / z / math.log(2)


def _counts(seed: int, cells: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(cells, 0.5))
    return np.bincount(rng.choice(cells, n, p=p), minlength=cells).astype(np.float64)


CASES = [(0, 10, 30), (1, 10, 2000), (2, 200, 50), (3, 200, 1500), (4, 2000, 300)]


_WIDTH = 2048  # every count vector padded with empty cells to this length: one compilation per correction


@functools.partial(jax.jit, static_argnames=("correction", "cells"))
def _entropy(counts, correction, cells):
    return corrections.entropy_bits(counts, correction, cells)


def _bits(counts, correction, cells=math.inf):
    counts = np.asarray(counts, np.float64)
    padded = np.zeros((*counts.shape[:-1], _WIDTH))
    padded[..., : counts.shape[-1]] = counts
    with jax.enable_x64(True):
        values = np.asarray(_entropy(jnp.asarray(padded), correction, float(cells)))
    return float(values) if values.ndim == 0 else values


class CorrectionsTest(chex.TestCase, parameterized.TestCase):
    @parameterized.product(correction=["none", "miller_madow", "chao_shen", "grassberger"], case=CASES)
    def test_against_numpy(self, correction, case):
        counts = _counts(*case)
        self.assertAlmostEqual(_bits(counts, correction), reference(counts, correction), places=9)

    @parameterized.parameters(*CASES)
    def test_nsb_against_quadrature(self, seed, cells, n):
        counts = _counts(seed, cells, n)
        for alphabet in (float(cells), 10.0 * cells, math.inf):
            expected = nsb_reference(counts[counts > 0], alphabet)
            self.assertAlmostEqual(_bits(counts, "nsb", alphabet) / expected, 1.0, delta=1e-6, msg=str(alphabet))

    def test_corner_cases(self):
        singletons = np.ones(20)
        # Chao-Shen's rule f1 = N - 1 where every count is 1; NSB has no estimate without a
        # coincidence over an unbounded alphabet, and a finite one over a bounded one.
        self.assertAlmostEqual(_bits(singletons, "chao_shen"), reference(singletons, "chao_shen"), places=9)
        self.assertTrue(math.isnan(_bits(singletons, "nsb")))
        finite = _bits(singletons, "nsb", 40.0)
        self.assertAlmostEqual(finite, nsb_reference(singletons, 40.0), places=5)
        self.assertLess(finite, math.log2(40.0))
        one_cell = np.array([0.0, 25.0, 0.0])
        for correction in ("none", "miller_madow", "chao_shen"):
            self.assertEqual(_bits(one_cell, correction), 0.0, msg=correction)
        self.assertAlmostEqual(_bits(one_cell, "grassberger"), reference(one_cell, "grassberger"), places=9)
        self.assertGreaterEqual(_bits(one_cell, "nsb", 3.0), 0.0)
        # Grassberger's G(1) = -gamma - log 2: a single observation's estimate is log N + gamma + log 2.
        self.assertAlmostEqual(_bits([1.0], "grassberger"), (np.euler_gamma + np.log(2)) / np.log(2), places=9)

    def test_every_correction_reduces_the_plug_in_bias(self):
        """On an undersampled uniform distribution (K = 1,000, N = 300, mean of 20 draws), each
        correction lies nearer the truth log2 K than the plug-in."""
        rng = np.random.default_rng(0)
        draws = np.stack([np.bincount(rng.integers(0, 1000, 300), minlength=1000) for _ in range(20)])
        error = {c: np.mean(_bits(draws, c, 1000.0)) - math.log2(1000) for c in corrections.CORRECTIONS}
        for correction in corrections.CORRECTIONS[1:]:
            self.assertLess(abs(error[correction]), abs(error["none"]), msg=correction)
        self.assertLess(abs(error["nsb"]), 0.2)

    def test_plug_in_estimators_correct_every_entropy(self):
        """binned and exact: I(X;T) = H_c(T), I(T;Y) = H_c(T) + H_c(Y) - H_c(T,Y), each
        entropy corrected from its counts (NSB over num_bins ** D cells for T, K for Y)."""
        rng = np.random.default_rng(5)
        acts = np.round(rng.normal(size=(300, 2)), 0).astype(np.float32)
        labels = rng.integers(0, 3, 300).astype(np.int32)

        def counts(rows):
            return np.unique(rows, axis=0, return_counts=True)[1].astype(np.float64)

        joint = np.concatenate([acts, labels[:, None].astype(np.float32)], axis=1)
        cases = [(estimators.Binning(bin_size=1.0, bias_correction=c), math.inf) for c in corrections.CORRECTIONS[2:]]
        cases += [  # NSB over the grid's 8 ** 2 cells; exact's codes are the same rows
            (estimators.Binning(num_bins=8, value_range=(-4.0, 4.0), bias_correction="nsb"), 64.0),
            (estimators.Exact(bias_correction="chao_shen"), math.inf),
        ]
        for estimator, cells in cases:
            correction = estimator.bias_correction
            h_t = reference(counts(acts), correction, cells)
            h_y = reference(counts(labels[:, None]), correction, 3.0)
            h_ty = reference(counts(joint), correction, 3.0 * cells)
            i_xt, i_ty = estimators.information_plane([acts], labels, estimator=estimator)
            self.assertAlmostEqual(float(i_xt[0]), h_t, places=4, msg=f"{correction} {estimator}")
            self.assertAlmostEqual(float(i_ty[0]), max(h_t + h_y - h_ty, 0.0), places=4, msg=correction)
        with self.assertRaisesRegex(ValueError, "bias_correction must be one of none, miller_madow, chao_shen"):
            estimators.Binning(bin_size=1.0, bias_correction="jackknife")


if __name__ == "__main__":
    absltest.main()
