"""Tests of the sliced estimator and the k-NN estimators' one-dimensional (sorting) forms: the
1-D forms equal the brute-force ones (ties, a lone class, the windows' full fallback), the
sliced values equal the mean of the numpy reference over the same projections, and they meet
the truths of jointly Gaussian variables and of class clusters."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators, validation
from ib_jax.estimators import knn, sliced
from tests.estimators import knn_test


class OneDimensionalTest(parameterized.TestCase):
    @parameterized.parameters((1, 0.0, False), (3, 0.9, False), (3, 0.5, True), (7, 0.999, False))
    def test_sorting_forms_equal_brute_force(self, k, rho, ties):
        rng = np.random.default_rng(k)
        n = 400
        x = rng.standard_normal(n)
        t = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        y = rng.integers(0, 4, n)
        y[0] = 4  # a class of one sample
        if ties:
            x, t = np.round(x * 2) / 2, np.round(t * 3) / 3
        x, t = x.astype(np.float32), t.astype(np.float32)
        with jax.enable_x64(True):
            ksg = jax.jit(
                lambda a, b: (knn.ksg_information_1d(a, b, k), knn.ksg_information(a[:, None], b[:, None], k))
            )
            ross = jax.jit(lambda b, c: (knn.ross_information_1d(b, c, k), knn.ross_information(b[:, None], c, k)))
            fast, full = ksg(x, t)
            fast_ty, full_ty = ross(t, jnp.asarray(y))
        ref_xt, ref_ty = knn_test.reference(x[:, None], t[:, None], y, k)
        self.assertAlmostEqual(float(fast), float(full), delta=1e-9)
        self.assertAlmostEqual(float(fast_ty), float(full_ty), delta=1e-9)
        self.assertAlmostEqual(float(fast), ref_xt, delta=1e-5)
        self.assertAlmostEqual(float(fast_ty), ref_ty, delta=1e-5)

    def test_more_unsettled_samples_than_the_patch_are_computed_in_full(self):
        # Two far clusters side by side in x, stacked in t: windows of sqrt(kN) positions miss
        # the neighbours of most samples, so the whole item takes the full branch.
        rng = np.random.default_rng(1)
        n = 600
        x = np.concatenate([rng.uniform(0, 1, n // 2), rng.uniform(0, 1, n // 2)]).astype(np.float32)
        t = np.concatenate([rng.uniform(0, 1e-3, n // 2), 100 + rng.uniform(0, 1e-3, n // 2)]).astype(np.float32)
        with jax.enable_x64(True):
            fast = float(jax.jit(lambda a, b: knn.ksg_information_1d(a, b, 3))(x, t))
        self.assertAlmostEqual(fast, knn_test.reference(x[:, None], t[:, None], np.zeros(n, int), 3)[0], delta=1e-5)


class SlicedTest(chex.TestCase):
    def test_mean_of_the_reference_over_the_same_slices(self):
        rng = np.random.default_rng(0)
        n, m = 120, 6
        x = rng.standard_normal((n, 5)).astype(np.float32)
        t = np.tanh(x @ rng.standard_normal((5, 4))).astype(np.float32)
        y = rng.integers(0, 3, n).astype(np.int32)
        for dim in (1, 2):
            si_xt, si_ty, se_xt, se_ty = estimators.sliced_information(t, y, x, slices=m, dim=dim, k=3, seed=4)
            key = jax.random.key(4)
            theta = np.asarray(sliced.frames(jax.random.fold_in(key, 0), m, 5, dim))
            phi = np.asarray(sliced.frames(jax.random.fold_in(key, 1), m, 4, dim))
            values = np.array([knn_test.reference(x @ theta[s], t @ phi[s], y, 3, standardize=True) for s in range(m)])
            np.testing.assert_allclose([si_xt, si_ty], values.mean(0), atol=2e-4)
            np.testing.assert_allclose([se_xt, se_ty], values.std(0, ddof=1) / np.sqrt(m), atol=2e-4)

    def test_frames_are_orthonormal_and_fixed(self):
        f = np.asarray(sliced.frames(jax.random.key(0), 50, 6, 3))
        np.testing.assert_allclose(np.einsum("mdk,mdl->mkl", f, f), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-5)
        np.testing.assert_array_equal(f, np.asarray(sliced.frames(jax.random.key(0), 50, 6, 3)))
        unit = np.asarray(sliced.frames(jax.random.key(1), 4000, 3, 1))[:, :, 0]
        np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(unit.mean(0), 0.0, atol=0.03)  # uniform on the sphere: no direction preferred

    def test_gaussian_truth(self):
        # The truth for these very slices, in closed form per slice (each projection pair Gaussian).
        rho = [0.95, 0.8, 0.5]
        n, m = 3000, 40
        x, t = validation.correlated_gaussians(0, n=n, dim_x=4, dim_t=3, correlations=rho)
        y = np.zeros(n, np.int32)
        si_xt, _, se_xt, _ = estimators.sliced_information(t, y, x, slices=m, seed=2)
        key = jax.random.key(2)
        theta = np.asarray(sliced.frames(jax.random.fold_in(key, 0), m, 4, 1))
        phi = np.asarray(sliced.frames(jax.random.fold_in(key, 1), m, 3, 1))
        truth, _ = validation.gaussian_sliced_information(validation.cross_covariance(4, 3, rho), theta, phi)
        self.assertGreater(truth, 0.1)
        self.assertAlmostEqual(float(si_xt), truth, delta=0.03)
        self.assertLess(float(se_xt), 0.1)
        independent, _, _, _ = estimators.sliced_information(t, y, x[::-1].copy(), slices=m, seed=2)
        self.assertAlmostEqual(float(independent), 0.0, delta=0.02)

    def test_class_clusters_truth(self):
        n, m = 2000, 30
        t, y = validation.class_clusters(0, n=n, dim=3, num_classes=4, separation=3.0, spread=1.0)
        x = t.copy()
        _, si_ty, _, se_ty = estimators.sliced_information(t, y, x, slices=m, seed=5)
        phi = np.asarray(sliced.frames(jax.random.fold_in(jax.random.key(5), 1), m, 3, 1))
        truth, _ = validation.clusters_sliced_information(phi, num_classes=4, separation=3.0, spread=1.0)
        self.assertGreater(truth, 0.3)
        self.assertAlmostEqual(float(si_ty), truth, delta=0.05)

    def test_narrow_layers_items_and_bad_arguments(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((60, 3)).astype(np.float32)
        acts = rng.standard_normal((2, 60, 2)).astype(np.float32)
        y = rng.integers(0, 2, 60).astype(np.int32)
        both = estimators.sliced_information(acts, y, x, slices=4, dim=5)  # wider than both spaces: all of them
        one = estimators.sliced_information(acts[1], y, x, slices=4, dim=5)
        chex.assert_shape(both[0], (2,))
        np.testing.assert_allclose([v[1] for v in both], one, atol=1e-6)
        for bad in ({"slices": 1}, {"dim": 0}, {"k": 0}, {"seed": -1}):
            with self.assertRaises(ValueError):
                estimators.Sliced(**bad)
        with self.assertRaisesRegex(ValueError, "inputs"):
            estimators.information_plane([acts[0]], y, estimator=estimators.Sliced(slices=4))


if __name__ == "__main__":
    absltest.main()
