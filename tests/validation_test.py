"""Tests of the known-information distributions: their truths' closed forms, their samples'
statistics, and the Monte Carlo reference against the KDE bounds and separated points."""

import math

import chex
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators, validation


class ClassClustersTest(parameterized.TestCase):
    @parameterized.parameters(2, 10)
    def test_separation_zero_is_zero_and_far_apart_is_log2_k(self, k):
        self.assertLess(validation.class_clusters_information(num_classes=k, separation=0.0, spread=1.0), 1e-12)
        far = validation.class_clusters_information(num_classes=k, separation=60.0, spread=1.0)
        self.assertAlmostEqual(far, math.log2(k), places=6)

    def test_quadrature_converged_and_monotone(self):
        """The same value on a grid 4x coarser (the error is far below 1e-4 bits); more
        separation, more information; noise lowers it as a larger spread does."""
        fine = validation.class_clusters_information(num_classes=10, separation=1.3, spread=0.7)
        coarse = validation._clusters_information(10, 1.3, 0.7, 0.0, 50_001)
        self.assertAlmostEqual(fine, coarse, delta=1e-9)
        values = [validation.class_clusters_information(num_classes=2, separation=s, spread=1.0) for s in (0.5, 1, 2)]
        self.assertTrue(values[0] < values[1] < values[2] < 1.0)
        noisy = validation.class_clusters_information(num_classes=2, separation=1.0, spread=0.6, noise_variance=0.64)
        self.assertAlmostEqual(noisy, values[1], delta=1e-9)  # 0.36 + 0.64 = 1

    def test_two_classes_match_an_independent_monte_carlo(self):
        """K = 2 by a numpy Monte Carlo of 4e6 samples of E[log2(p(x|y) / p(x))]."""
        rng = np.random.default_rng(0)
        sep, s = 1.5, 1.0
        y = rng.integers(0, 2, 4_000_000)
        x = sep * (y - 0.5) + rng.standard_normal(len(y)) * s
        log_phi = -0.5 * ((x[:, None] - sep * (np.arange(2) - 0.5)[None, :]) / s) ** 2
        pointwise = (
            log_phi[np.arange(len(y)), y] - np.logaddexp(log_phi[:, 0], log_phi[:, 1]) + math.log(2)
        ) / math.log(2)
        want = validation.class_clusters_information(num_classes=2, separation=sep, spread=s)
        self.assertAlmostEqual(pointwise.mean(), want, delta=4 * pointwise.std() / math.sqrt(len(y)))

    def test_samples_have_the_stated_statistics(self):
        n, k, sep, spread = 20_000, 4, 2.0, 0.5
        t, y = validation.class_clusters(3, n=n, dim=3, num_classes=k, separation=sep, spread=spread)
        chex.assert_shape(t, (n, 3))
        self.assertEqual((t.dtype, y.dtype), (np.float32, np.int32))
        np.testing.assert_array_equal(np.bincount(y), [n // k] * k)  # balanced
        self.assertFalse(np.all(np.diff(y) >= 0))  # shuffled
        se = spread / math.sqrt(n // k)
        for c in range(k):
            rows = t[y == c]
            self.assertAlmostEqual(rows[:, 0].mean(), sep * (c - (k - 1) / 2), delta=5 * se)
            np.testing.assert_allclose(rows[:, 1:].mean(0), 0.0, atol=5 * se)
            np.testing.assert_allclose(rows.var(0), spread**2, rtol=0.1)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "multiple"):
            validation.class_clusters(0, n=10, dim=1, num_classes=3, separation=1.0, spread=1.0)
        with self.assertRaisesRegex(ValueError, "spread"):
            validation.class_clusters(0, n=10, dim=1, num_classes=2, separation=1.0, spread=0.0)


class QuantizedClustersTest(chex.TestCase):
    def test_codes_are_the_clusters_on_the_grid(self):
        t, y = validation.class_clusters(5, n=600, dim=3, num_classes=3, separation=1.0, spread=0.5)
        codes, y_codes = validation.quantized_clusters(
            5, n=600, dim=3, num_classes=3, separation=1.0, spread=0.5, width=0.3
        )
        self.assertEqual(codes.dtype, np.int32)
        np.testing.assert_array_equal(codes, np.floor(t.astype(np.float64) / 0.3))
        np.testing.assert_array_equal(y_codes, y)
        with self.assertRaisesRegex(ValueError, "width"):
            validation.quantized_clusters(5, n=6, dim=1, num_classes=3, separation=1.0, spread=0.5, width=0.0)

    def test_closed_forms(self):
        """Separation 0: no information; classes far apart on cells wider than nothing: log2 K;
        cells ever finer: the continuous I(T;Y) of the quadrature."""
        kwargs = dict(num_classes=4, spread=1.0, width=0.5)
        self.assertLess(validation.quantized_clusters_information(separation=0.0, **kwargs), 1e-12)
        self.assertAlmostEqual(validation.quantized_clusters_information(separation=80.0, **kwargs), 2.0, places=9)
        fine = validation.quantized_clusters_information(num_classes=4, separation=2.0, spread=1.0, width=0.002)
        continuous = validation.class_clusters_information(num_classes=4, separation=2.0, spread=1.0)
        self.assertAlmostEqual(fine, continuous, delta=1e-5)

    def test_cell_probabilities_match_numerical_integration(self):
        """dim 1, K = 3: H and I from cell probabilities integrated numerically (Simpson on 400
        nodes per cell of the mixture's density), independent of the normal CDF."""
        k, sep, spread, width = 3, 1.7, 0.8, 0.45
        means = sep * (np.arange(k) - 1.0)
        cells = np.arange(math.floor((means.min() - 12) / width), math.floor((means.max() + 12) / width) + 1)
        u = np.linspace(0.0, 1.0, 401)
        simpson = np.where((np.arange(401) % 2) == 1, 4.0, 2.0)
        simpson[[0, -1]] = 1.0
        x = (cells[:, None] + u[None, :]) * width  # [J, 401]
        density = np.exp(-0.5 * ((x[None] - means[:, None, None]) / spread) ** 2) / (spread * math.sqrt(2 * math.pi))
        given = (density * simpson).sum(-1) * width / (3 * 400)  # [K, J]
        entropy = lambda p: -np.sum(p[p > 0] * np.log2(p[p > 0]))  # noqa: E731
        h = entropy(given.mean(0))
        i = h - np.mean([entropy(g) for g in given])
        kwargs = dict(num_classes=k, separation=sep, spread=spread, width=width)
        self.assertAlmostEqual(validation.quantized_clusters_entropy(dim=1, **kwargs), h, delta=1e-8)
        self.assertAlmostEqual(validation.quantized_clusters_information(**kwargs), i, delta=1e-8)

    def test_entropy_of_many_dimensions_matches_a_large_sample(self):
        """dim 2: the plug-in entropy of 10^6 codes (Miller-Madow corrected) within 0.01 bits of
        H(Q(T)) = H(first coordinate) + H(one noise coordinate)."""
        kwargs = dict(num_classes=2, separation=2.0, spread=1.0, width=0.5)
        codes, _ = validation.quantized_clusters(1, n=1_000_000, dim=2, **kwargs)
        _, counts = np.unique(codes, axis=0, return_counts=True)
        p = counts / counts.sum()
        plug_in = -np.sum(p * np.log2(p)) + (len(counts) - 1) / (2 * len(codes) * math.log(2))
        self.assertAlmostEqual(plug_in, validation.quantized_clusters_entropy(dim=2, **kwargs), delta=0.01)


class NoisyLayerTest(chex.TestCase):
    def test_separated_points_give_log2_n(self):
        t = np.arange(64, dtype=np.float32)[:, None] * 10.0  # 10 apart, noise sd 0.1
        estimate, error = validation.noisy_layer_information(t, 0.01, draws=6_400)
        self.assertAlmostEqual(estimate, 6.0, places=6)
        self.assertLess(error, 1e-6)

    def test_between_the_kde_bounds(self):
        """On random tanh layers the reference lies between Kolchinsky & Tracey's bounds."""
        rng = np.random.default_rng(1)
        for d, variance in ((2, 0.05), (5, 0.01)):
            t = np.tanh(rng.standard_normal((300, d)) * 2).astype(np.float32)
            labels = np.zeros(300, np.int32)
            lower = float(estimators.kde_information(t, labels, noise_variance=variance, bound="lower")[0])
            upper = float(estimators.kde_information(t, labels, noise_variance=variance, bound="upper")[0])
            estimate, error = validation.noisy_layer_information(t, variance, draws=30_000)
            self.assertLess(error, 0.02)
            self.assertLessEqual(lower, estimate + 4 * error)
            self.assertLessEqual(estimate - 4 * error, upper)


class FiniteTruthsTest(chex.TestCase):
    def test_diagonal_noise_reference_equals_the_isotropic_one_under_additive_noise(self):
        rng = np.random.default_rng(0)
        t = rng.normal(size=(60, 3))
        a, ea = validation.diagonal_noise_information(t, np.full_like(t, 0.3), draws=60_000, seed=1)
        b, eb = validation.noisy_layer_information(t, 0.3, draws=60_000, seed=2)
        self.assertAlmostEqual(a, b, delta=4 * math.hypot(ea, eb))
        far, error = validation.diagonal_noise_information(
            100 * np.arange(8.0)[:, None], np.full((8, 1), 0.01), draws=800
        )
        self.assertAlmostEqual(far, 3.0, delta=4 * error)  # separated Gaussians: log2 N

    def test_gaussian_closed_forms(self):
        rho = [0.9, 0.5]
        self.assertAlmostEqual(
            validation.gaussian_information(rho), -0.5 * math.log2((1 - 0.81) * (1 - 0.25)), places=12
        )
        x, t = validation.correlated_gaussians(0, n=200_000, dim_x=3, dim_t=2, correlations=rho)
        np.testing.assert_allclose(x.T @ t / len(x), validation.cross_covariance(3, 2, rho), atol=0.01)
        np.testing.assert_allclose(t.var(0), 1.0, atol=0.01)
        cross = validation.cross_covariance(3, 2, rho)
        # Frames spanning both whole spaces give I(X;T) itself; the first axes, that pair's information.
        whole = validation.gaussian_sliced_information(cross, np.eye(3)[None], np.eye(2)[None])[0]
        self.assertAlmostEqual(whole, validation.gaussian_information(rho), places=9)
        first = validation.gaussian_sliced_information(cross, np.eye(3)[None, :, :1], np.eye(2)[None, :, :1])[0]
        self.assertAlmostEqual(first, validation.gaussian_information([0.9]), places=9)
        # Random directions: each slice's correlation is theta^T C phi, checked on samples.
        theta = np.random.default_rng(1).normal(size=(3, 3, 1))
        theta /= np.linalg.norm(theta, axis=1, keepdims=True)
        phi = np.random.default_rng(2).normal(size=(3, 2, 1))
        phi /= np.linalg.norm(phi, axis=1, keepdims=True)
        got, _ = validation.gaussian_sliced_information(cross, theta, phi)
        r = [np.corrcoef(x @ theta[m, :, 0], t @ phi[m, :, 0])[0, 1] for m in range(3)]
        self.assertAlmostEqual(got, float(np.mean([-0.5 * math.log2(1 - c * c) for c in r])), delta=0.01)
        with self.assertRaises(ValueError):
            validation.correlated_gaussians(0, n=10, dim_x=1, dim_t=1, correlations=[0.5, 0.5])

    def test_clusters_sliced_information(self):
        kwargs = dict(num_classes=4, separation=2.0, spread=1.0)
        axis = validation.clusters_sliced_information(np.eye(3)[:1], points=20_001, **kwargs)[0]
        self.assertAlmostEqual(axis, validation.class_clusters_information(**kwargs), delta=1e-6)
        across = validation.clusters_sliced_information(np.eye(3)[1:2], **kwargs)[0]
        self.assertAlmostEqual(across, 0.0, delta=1e-9)  # a direction across the informative axis
        diagonal = validation.clusters_sliced_information(np.array([[1.0, 1.0, 0.0]]), **kwargs)[0]
        self.assertAlmostEqual(
            diagonal,
            validation.class_clusters_information(num_classes=4, separation=2.0 / math.sqrt(2), spread=1.0),
            delta=1e-6,
        )


if __name__ == "__main__":
    absltest.main()
