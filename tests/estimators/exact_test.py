"""Tests of the exact estimator: counts equal a plain-numpy `np.unique` reference on discrete
rows and on a quantized network's own activations, no hash collision changes a count (tested
with a deliberately weak hash), and the common rules (leading axes, per-item labels, jit, NaN)."""

from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators, model
from ib_jax.estimators import exact


def _numpy_information(acts_NxD, labels_N):
    """I(X;T) = H(T), I(T;Y) = H(T) + H(Y) - H(T,Y) over the distinct rows, with np.unique."""

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    acts = np.where(acts_NxD == 0, 0.0, acts_NxD)  # -0.0 is the value 0
    joint = np.concatenate([acts, labels_N[:, None].astype(acts.dtype)], axis=1)
    h_t, h_y = entropy(acts), entropy(labels_N[:, None])
    return h_t, h_t + h_y - entropy(joint)


def _discrete(rng, n, d, levels):
    return (rng.integers(0, levels, (n, d)) * 0.25 - 0.5).astype(np.float32)


class ReferenceTest(chex.TestCase):
    @parameterized.parameters((1000, 3, 4, 10), (300, 200, 2, 3))
    def test_agrees_with_numpy(self, n, d, levels, classes):
        rng = np.random.default_rng(n + d)
        acts, labels = _discrete(rng, n, d, levels), rng.integers(0, classes, n)
        i_xt, i_ty = estimators.exact_information(acts, labels, num_classes=classes)
        want = _numpy_information(acts, labels)
        np.testing.assert_allclose([i_xt, i_ty], want, atol=1e-5)

    def test_float_rows_are_all_distinct_and_signed_zeros_equal(self):
        rng = np.random.default_rng(0)
        acts = rng.normal(size=(1000, 4)).astype(np.float32)
        self.assertAlmostEqual(float(estimators.exact_information(acts, np.zeros(1000, int))[0]), np.log2(1000), 5)
        zeros = np.zeros((8, 2), np.float32)
        zeros[::2] = -0.0
        self.assertEqual(float(estimators.exact_information(zeros, np.arange(8) % 2)[0]), 0.0)

    def test_leading_axes_and_per_item_labels_equal_a_loop(self):
        rng = np.random.default_rng(1)
        acts = _discrete(rng, 2 * 3 * 200, 4, 3).reshape(2, 3, 200, 4)
        labels = rng.integers(0, 3, (2, 3, 200))
        i_xt, i_ty = estimators.exact_information(acts, labels)
        chex.assert_shape([i_xt, i_ty], (2, 3))
        for s in range(2):
            for e in range(3):
                np.testing.assert_allclose(
                    [i_xt[s, e], i_ty[s, e]], _numpy_information(acts[s, e], labels[s, e]), atol=1e-5
                )

    def test_quantized_networks_own_activations(self):
        net = model.MLP(hidden=(12, 5, 3), num_classes=2, activation="relu", quantize_bits=3)
        x = jax.random.normal(jax.random.key(0), (2000, 12))
        labels = np.asarray(jax.random.bernoulli(jax.random.key(2), 0.5, (2000,))).astype(np.int32)
        variables = net.init(jax.random.key(1), x)
        _, acts = net.apply(variables, x)
        i_xt, i_ty = estimators.information_plane(acts, labels, estimator=estimators.Exact())
        for layer, a in enumerate(acts):
            np.testing.assert_allclose([i_xt[layer], i_ty[layer]], _numpy_information(np.asarray(a), labels), atol=1e-5)
        self.assertTrue(np.all(np.asarray(i_xt) <= np.log2(2000) + 1e-5))
        self.assertLess(float(i_xt[-1]), np.log2(2000) - 1)  # a coarse layer: far from every row distinct


class CollisionTest(chex.TestCase):
    """A hash that collides on purpose: the counts must still be exact."""

    @staticmethod
    def _weak(codes_CxNxD):
        return (codes_CxNxD[..., 0] & 1).astype(jnp.uint64)  # two buckets for every row

    def test_collisions_are_detected_and_resolved(self):
        rng = np.random.default_rng(3)
        acts = _discrete(rng, 700, 3, 4)
        labels = rng.integers(0, 2, 700)
        with mock.patch.object(exact, "row_hash", self._weak), jax.enable_x64(True):
            _, _, collided = exact._counted(jnp.asarray(acts)[None], jnp.asarray(labels), 2)
            self.assertTrue(bool(collided[0]))
            i_xt, i_ty = exact.Exact().layer_information(jnp.asarray(acts)[None], jnp.asarray(labels), 2, False)
        np.testing.assert_allclose([i_xt[0], i_ty[0]], _numpy_information(acts, labels), atol=1e-5)

    def test_adversarial_rows_differing_in_one_unit(self):
        """Rows that differ in a single bit of one unit's value, under the weak hash."""
        base = np.full((64, 5), 0.5, np.float32)
        bits = base.view(np.int32)
        bits[np.arange(64), np.arange(64) % 5] += np.arange(64) // 5 * 2  # even steps: the weak hash's bit unchanged
        acts, labels = bits.view(np.float32), np.arange(64) % 2
        with mock.patch.object(exact, "row_hash", self._weak), jax.enable_x64(True):
            i_xt, i_ty = exact.Exact().layer_information(jnp.asarray(acts)[None], jnp.asarray(labels), 2, False)
        np.testing.assert_allclose([i_xt[0], i_ty[0]], _numpy_information(acts, labels), atol=1e-5)

    def test_grid_values_do_not_collide(self):
        """Values on an 8-bit grid differ only in high bits; the spread hash still separates them
        (no fallback to the slow ranking)."""
        step = np.float32(2 / 255)
        acts = np.float32(-1) + step * np.random.default_rng(5).integers(0, 256, (4, 4096, 10)).astype(np.float32)
        with jax.enable_x64(True):
            collided = exact._counted(jnp.asarray(acts), jnp.zeros(4096, jnp.int32), 1)[2]
        self.assertFalse(np.any(np.asarray(collided)))

    def test_the_real_hash_separates_rows_that_differ_in_one_bit(self):
        base = np.full((200, 40), 0.25, np.float32).view(np.int32)
        base[np.arange(200), np.arange(200) % 40] ^= 1 << (np.arange(200) % 23)
        acts = base.view(np.float32)
        np.testing.assert_allclose(estimators.exact_information(acts, np.zeros(200, int))[0], np.log2(200), atol=1e-5)


class ApiTest(chex.TestCase):
    def test_jit_and_method_exact_agree_and_nan_items(self):
        rng = np.random.default_rng(4)
        acts = _discrete(rng, 3 * 256, 3, 3).reshape(3, 256, 3)
        acts[1, 5, 0] = np.nan
        labels = rng.integers(0, 2, 256)
        eager = estimators.exact_information(acts, labels)
        jitted = jax.jit(lambda a, y: estimators.exact_information(a, y, num_classes=2))(acts, labels)
        ranked = estimators.exact_information(acts, labels, method="exact")
        chex.assert_trees_all_close(eager, jitted, ranked)
        self.assertTrue(np.isnan(eager[0][1]) and np.isnan(eager[1][1]))
        self.assertTrue(np.all(np.isfinite(np.asarray(eager[0])[[0, 2]])))

    def test_by_name(self):
        estimator = estimators.by_name(
            "exact", binning=estimators.Binning(bin_size=1.0), noise_variance=1.0, num_bins=3
        )
        self.assertEqual((estimator, estimator.name), (estimators.Exact(), "exact"))


if __name__ == "__main__":
    absltest.main()
