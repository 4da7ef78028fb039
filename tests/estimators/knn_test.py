"""Tests of the k-NN estimators: a brute-force numpy reference of both definitions (ties
included), closed forms (bivariate Gaussians, class clusters), blocks, items and bad input."""

import math

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import estimators, validation
from ib_jax.estimators import knn


def _digamma(v):
    """psi at positive integers: -gamma + sum_{j < v} 1/j."""
    v = np.asarray(v, np.int64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, v.max() + 1))])
    return -0.5772156649015329 + harmonic[v - 1]


def _chebyshev(a):
    return np.abs(a[:, None, :] - a[None, :, :]).max(axis=-1)


def reference(x, t, y, k, standardize=False):
    """KSG 1's I(X;T) and Ross's I(T;Y) in bits, brute force (module docstring); distances of
    the float32 values in float32, as the estimator's, so that the same pairs tie."""
    x, t = np.asarray(x, np.float32), np.asarray(t, np.float32)
    if standardize:
        x, t = (v / np.where(v.std(0) > 0, v.std(0), 1).astype(np.float32) for v in (x, t))
    n = len(t)
    dx, dt = _chebyshev(x), _chebyshev(t)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dt, np.inf)
    eps = np.sort(np.maximum(dx, dt), axis=1)[:, k - 1]
    n_x, n_t = (dx < eps[:, None]).sum(1), (dt < eps[:, None]).sum(1)
    i_xt = _digamma(k) + _digamma(n) - np.mean(_digamma(n_x + 1) + _digamma(n_t + 1))
    d = _chebyshev(t)
    terms = []
    for i in range(n):
        same = np.flatnonzero((y == y[i]) & (np.arange(n) != i))
        if not len(same):
            continue
        k_i = min(k, len(same))
        radius = np.sort(d[i, same])[k_i - 1]
        m = (d[i] < radius).sum() if radius > 0 else (d[i] <= 0).sum()
        terms.append((k_i, len(same) + 1, m))
    k_i, n_y, m = (np.array(v) for v in zip(*terms))
    i_ty = _digamma(len(terms)) + np.mean(_digamma(k_i)) - np.mean(_digamma(n_y)) - np.mean(_digamma(m))
    return i_xt / math.log(2), i_ty / math.log(2)


class KnnTest(chex.TestCase):
    def test_matches_brute_force_with_ties_and_a_lone_class(self):
        rng = np.random.default_rng(0)
        n = 150
        x = np.round(rng.normal(size=(n, 4)), 1).astype(np.float32)  # rounded: ties in every space
        t = np.round(np.tanh(x @ rng.normal(size=(4, 3))), 1).astype(np.float32)
        y = (rng.integers(0, 3, n) + (t[:, 0] > 0)).astype(np.int32)
        y[0] = 5  # a class of one sample: left out of Ross's sums
        for k in (1, 3, 7):
            with self.subTest(k=k):  # unscaled: every tie of the rounded values survives
                got = estimators.knn_information(t, y, x, k=k, standardize=False)
                np.testing.assert_allclose(np.asarray(got, np.float64), reference(x, t, y, k), atol=2e-5)
        scale = np.array([1.0, 30.0, 0.01], np.float32)  # coordinates of very different scales
        t_scaled = rng.normal(size=(n, 3)).astype(np.float32) * scale
        x_free = rng.normal(size=(n, 4)).astype(np.float32) * 7.0  # no ties: the scalings' roundings differ
        got = estimators.knn_information(t_scaled, y, x_free, k=3)
        np.testing.assert_allclose(np.asarray(got, np.float64), reference(x_free, t_scaled, y, 3, True), atol=1e-4)
        unit = estimators.knn_information(t_scaled / t_scaled.std(0), y, x_free, k=3)
        np.testing.assert_allclose(np.asarray(got), np.asarray(unit), atol=1e-4)

    def test_blocks_change_nothing(self):
        rng = np.random.default_rng(1)
        x, t = rng.normal(size=(2, 90, 3)).astype(np.float32)
        y = rng.integers(0, 2, 90).astype(np.int32)
        whole = estimators.knn_information(t, y, x)
        saved = knn._BLOCK_ELEMENTS
        try:
            knn._BLOCK_ELEMENTS = 90 * 7  # 7 rows a block: the last block overlaps its predecessor
            blocked = estimators.knn_information(t, y, x)
        finally:
            knn._BLOCK_ELEMENTS = saved
        np.testing.assert_allclose(np.asarray(blocked), np.asarray(whole), atol=1e-6)

    def test_closed_forms(self):
        rng = np.random.default_rng(2)
        n = 3000
        a = rng.normal(size=n)
        cases = []
        for rho in (0.0, 0.9):  # bivariate Gaussians: I = -log2(1 - rho^2) / 2
            b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=n)
            cases.append((b[:, None], a[:, None], -0.5 * math.log2(1 - rho**2)))
        values = [
            float(estimators.knn_information(t.astype(np.float32), np.zeros(n, np.int32), x.astype(np.float32))[0])
            for t, x, _ in cases
        ]
        for value, (_, _, truth) in zip(values, cases):
            self.assertAlmostEqual(value, truth, delta=0.04)
        t, y = validation.class_clusters(3, n=n, dim=1, num_classes=2, separation=2.0, spread=1.0)
        truth = validation.class_clusters_information(num_classes=2, separation=2.0, spread=1.0)
        self.assertAlmostEqual(float(estimators.knn_information(t, y, t)[1]), truth, delta=0.04)

    def test_items_labels_and_jit(self):
        rng = np.random.default_rng(4)
        x, t = rng.normal(size=(2, 80, 2)).astype(np.float32)
        y = (t[:, 0] > 0).astype(np.int32)
        y2 = rng.permutation(y)
        both = np.asarray(estimators.knn_information(np.stack([t, t]), np.stack([y, y2]), x)[1])
        alone = [float(estimators.knn_information(t, labels, x)[1]) for labels in (y, y2)]
        np.testing.assert_allclose(both, alone, atol=1e-6)
        jitted = jax.jit(lambda a, b, c: estimators.knn_information(a, b, c, num_classes=2))
        np.testing.assert_allclose(jitted(t, y, x)[1], alone[0], atol=1e-6)
        nan = np.asarray(estimators.knn_information(np.stack([t, t * np.nan]), y, x)[0])
        self.assertTrue(np.isfinite(nan[0]) and np.isnan(nan[1]))

    def test_bad_arguments_are_value_errors(self):
        t = np.zeros((5, 2), np.float32)
        y = np.zeros(5, np.int32)
        with self.assertRaisesRegex(ValueError, "k must be an integer >= 1"):
            estimators.KNN(k=0)
        with self.assertRaisesRegex(ValueError, "standardize must be True or False"):
            estimators.KNN(standardize="yes")
        with self.assertRaisesRegex(ValueError, "more than k = 5 samples"):
            estimators.knn_information(t, y, t, k=5)
        with self.assertRaisesRegex(ValueError, "needs the inputs X"):
            estimators.common.one_layer(t, y, estimators.KNN())


if __name__ == "__main__":
    absltest.main()
