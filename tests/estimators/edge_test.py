"""Tests of EDGE: closed forms, invariance, the k-NN distance and a numpy reference."""

import math

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import estimators
from ib_jax.estimators import edge


def reference(acts, labels, inputs, *, num_estimates=5, layer_scale=1.0, input_scale=0.001, seed=0):
    """Plain numpy of the definition in ib_jax.estimators.edge: brute-force k-NN distances,
    buckets as tuples counted with np.unique, the median of the ensemble."""
    n = len(labels)

    def hashed(v, scale):
        v = np.asarray(v, np.float32)
        d = v.shape[1]
        z = v
        if d > 6:
            dp = max(1, min(d, math.floor(math.log2(n / 10))))
            std = v.std(axis=0)
            std = np.where(std < 1e-4, 1.0, std)
            w = np.random.default_rng([seed, d, dp]).standard_normal((d, dp)).astype(np.float32)
            z = v @ (w / (std[:, None] * math.sqrt(d)))
        dp = z.shape[1]
        k = min(n, max(1, math.floor(0.43 * n ** (2 / 3 + 0.17 * dp / (dp + 1)))))
        rho = np.array([np.sort(np.abs(c[:, None] - c[None, :]), axis=1)[:, k - 1].mean() for c in z.T])
        width = scale * 0.4 * 18 * dp / max(1 + math.log(d), 1) * (rho + 1e-4)
        out = []
        for j in range(num_estimates):
            wj = (width * (1 + 0.1 * j / max(num_estimates - 1, 1))).astype(np.float32)
            codes = np.floor((z + np.float32(j / num_estimates) * wj) / wj).astype(np.int64)
            out.append(np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1))
        return out

    def information(a, b, cap):
        _, ia, ca = np.unique(a, return_inverse=True, return_counts=True)
        _, ib, cb = np.unique(b, return_inverse=True, return_counts=True)
        _, ij, cj = np.unique(np.stack([a, b], 1), axis=0, return_inverse=True, return_counts=True)
        ratio = cj[ij.reshape(-1)] * n / (ca[ia] * cb[ib])
        return np.clip(np.log2(ratio), 0.001, cap).mean()

    t_ids, x_ids = hashed(acts, layer_scale), hashed(inputs, input_scale)
    k = len(np.unique(labels))
    i_xt = np.median([information(x, t, math.log2(n)) for x, t in zip(x_ids, t_ids)])
    i_ty = np.median([information(t, labels, math.log2(max(k, 2))) for t in t_ids])
    return i_xt, i_ty


class EdgeTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(0)

    def test_knn_distance_matches_brute_force(self):
        v = np.round(self.rng.normal(size=300), 1).astype(np.float32)  # ties included
        for k in (1, 2, 17, 300):
            want = np.sort(np.abs(v[:, None] - v[None, :]), axis=1)[:, k - 1].mean()
            self.assertAlmostEqual(float(edge.knn_distance(v, k)), want, places=5)

    def test_matches_numpy_reference(self):
        x = self.rng.integers(0, 2, (400, 12)).astype(np.float32)  # projected: 12 > 6 units
        t = np.tanh(x @ self.rng.normal(size=(12, 3)).astype(np.float32))  # floor hashing: 3 units
        y = self.rng.integers(0, 3, 400).astype(np.int32)
        got = estimators.edge_information(t, y, x)
        np.testing.assert_allclose([float(v) for v in got], reference(t, y, x), atol=1e-4)

    def test_independent_variables_give_about_zero(self):
        x, t = self.rng.uniform(size=(2, 4000, 1)).astype(np.float32)
        i_xt, _ = estimators.edge_information(t, np.zeros(4000, np.int32), x, input_scale=1.0)
        self.assertLess(float(i_xt), 0.1)

    def test_t_equal_to_discrete_x_gives_its_entropy(self):
        x = self.rng.integers(0, 4, (2000, 2)).astype(np.float32)
        p = np.unique(x, axis=0, return_counts=True)[1] / 2000
        i_xt, _ = estimators.edge_information(x, np.zeros(2000, np.int32), x)
        self.assertAlmostEqual(float(i_xt), float(-(p * np.log2(p)).sum()), places=4)

    def test_invariant_to_row_order(self):
        x = self.rng.normal(size=(500, 8)).astype(np.float32)
        t = np.tanh(x[:, :3])
        y = (x[:, 0] > 0).astype(np.int32)
        order = self.rng.permutation(500)
        a = estimators.edge_information(t, y, x)
        b = estimators.edge_information(t[order], y[order], x[order])
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)

    def test_bad_arguments(self):
        for kwargs, match in (({"num_estimates": 0}, "num_estimates"), ({"layer_scale": -1.0}, "layer_scale")):
            with self.assertRaisesRegex(ValueError, match):
                estimators.EDGE(**kwargs)


if __name__ == "__main__":
    absltest.main()
