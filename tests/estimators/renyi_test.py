"""Tests of the matrix-based Rényi estimator: closed forms, invariances, a numpy reference."""

import math

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import estimators
from ib_jax.estimators import renyi

ALPHA = 1.01


def reference(acts, labels, inputs, *, alpha=ALPHA, batch_size=200, sigma=None, k=renyi.KNN):
    """Plain numpy, float64: per batch, Gram matrices from explicit differences, the k-NN width,
    eigenvalues of the trace-normalised matrices, S = log2(sum l^a) / (1 - a)."""
    n = len(labels)
    size = min(batch_size, n)

    def gram(a):
        d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
        if sigma is None:
            width = np.sort(d, axis=1)[:, min(k, len(a) - 1)].mean()
            width = width if width > 0 else 1.0
        else:
            width = sigma
        return np.exp(-(d**2) / (2 * width**2))

    def s(m):
        lam = np.clip(np.linalg.eigvalsh(m / np.trace(m)), 0, None)
        return math.log2((lam**alpha).sum()) / (1 - alpha)

    i_xt, i_ty = [], []
    for start in range(0, (n // size) * size, size):
        part = slice(start, start + size)
        k_t = gram(np.asarray(acts[part], np.float64))
        k_x = gram(np.asarray(inputs[part], np.float64))
        k_y = (labels[part][:, None] == labels[part][None, :]).astype(np.float64)
        i_xt.append(s(k_x) + s(k_t) - s(k_x * k_t))
        i_ty.append(s(k_y) + s(k_t) - s(k_y * k_t))
    return np.mean(i_xt), np.mean(i_ty)


class RenyiTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, 2, (450, 12)).astype(np.float32)
        self.y = rng.integers(0, 3, 450).astype(np.int32)
        self.t = np.tanh(self.x @ rng.normal(size=(12, 4)).astype(np.float32) * 0.7)

    def test_matches_numpy_reference(self):
        """Two batches of 200 (the last 50 samples left out), k-NN widths and a fixed width."""
        for sigma in (None, 0.8):
            got = estimators.renyi_information(self.t, self.y, self.x, sigma=sigma)
            want = reference(self.t, self.y, self.x, sigma=sigma)
            np.testing.assert_allclose([float(v) for v in got], want, atol=2e-3)

    def test_remainder_left_out(self):
        full = estimators.renyi_information(self.t, self.y, self.x)
        first = estimators.renyi_information(self.t[:400], self.y[:400], self.x[:400])
        np.testing.assert_allclose(np.asarray(full), np.asarray(first), atol=1e-6)

    def test_identical_samples_give_zero(self):
        t = np.full((450, 4), 0.3, np.float32)
        i_xt, i_ty = estimators.renyi_information(t, self.y, self.x)
        self.assertLess(abs(float(i_xt)), 2e-3)
        self.assertLess(abs(float(i_ty)), 2e-3)

    def test_label_kernel_entropy_is_renyi_entropy_of_frequencies(self):
        labels = self.y[:200]
        k_y = (labels[:, None] == labels[None, :]).astype(np.float32)
        p = np.bincount(labels) / len(labels)
        want = math.log2((p**ALPHA).sum()) / (1 - ALPHA)
        with jax.enable_x64(True):  # as inside the estimators' jitted call
            got = float(renyi.Renyi().entropy(k_y))
        self.assertAlmostEqual(got, want, delta=1e-3)

    def test_invariant_to_row_order_within_a_batch(self):
        rng = np.random.default_rng(1)
        order = np.concatenate([rng.permutation(200), 200 + rng.permutation(200), np.arange(400, 450)])
        a = estimators.renyi_information(self.t, self.y, self.x)
        b = estimators.renyi_information(self.t[order], self.y[order], self.x[order])
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-3)

    def test_items_and_per_item_inputs(self):
        """[2, N, D] items with inputs per item equal the items measured one at a time."""
        t2, x2 = np.stack([self.t, self.t[::-1]]), np.stack([self.x, self.x[::-1]])
        y2 = np.stack([self.y, self.y[::-1]])
        both = estimators.renyi_information(t2, y2, x2)
        for i in range(2):
            one = estimators.renyi_information(t2[i], y2[i], x2[i])
            np.testing.assert_allclose([float(both[0][i]), float(both[1][i])], [float(v) for v in one], atol=1e-5)

    def test_bad_arguments(self):
        for kwargs, match in (
            ({"alpha": 1.0}, "alpha"),
            ({"alpha": -2.0}, "alpha"),
            ({"batch_size": 1}, "batch_size"),
            ({"sigma": 0.0}, "sigma"),
        ):
            with self.assertRaisesRegex(ValueError, match):
                estimators.renyi_information(self.t, self.y, self.x, **kwargs)
        with self.assertRaisesRegex(ValueError, "needs the inputs"):
            estimators.information_plane([self.t], self.y, estimator=estimators.Renyi())
        with self.assertRaisesRegex(ValueError, "inputs must be"):
            estimators.renyi_information(self.t, self.y, self.x[:10])


if __name__ == "__main__":
    absltest.main()
