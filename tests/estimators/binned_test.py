"""Tests of the fixed-binning estimator: closed forms, an independent numpy reference, hash vs exact."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators
from ib_jax.estimators import binned, common


def reference(acts, labels, bin_size=None, num_bins=None, value_range=None):
    """Plain numpy: np.unique over rows of codes, H(T|Y) class by class (float64)."""
    a = np.asarray(acts, np.float32)
    if bin_size is not None:
        codes = np.floor(a / np.float32(bin_size))
    else:
        lo, hi = value_range
        codes = np.clip(np.floor((a - np.float32(lo)) * np.float32(num_bins / (hi - lo))), 0, num_bins - 1)

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h_t = entropy(codes)
    h_t_given_y = sum(np.mean(labels == c) * entropy(codes[labels == c]) for c in np.unique(labels))
    return h_t, h_t - h_t_given_y


def _symbols(rng, n, d, k):
    """n rows drawn from k distinct integer patterns of width d, each used n/k times, as
    activations centred in their bins of size 1."""
    patterns = rng.permutation(1 << 12)[:k, None] >> np.arange(d)[None, :] & 1
    rows = np.repeat(patterns, n // k, axis=0)
    return rng.permutation(rows).astype(np.float32) + 0.5


class ClosedFormTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(0)
        self.labels = self.rng.integers(0, 4, 512).astype(np.int32)

    @parameterized.parameters(1, 2, 8, 64)
    def test_k_equally_frequent_symbols(self, k):
        i_xt, i_ty = estimators.binned_information(_symbols(self.rng, 512, 12, k), self.labels, bin_size=1.0)
        self.assertAlmostEqual(float(i_xt), np.log2(k), places=5)
        self.assertLessEqual(float(i_ty), min(np.log2(k), 2.0) + 1e-6)

    def test_all_rows_distinct(self):
        acts = self.rng.normal(size=(512, 30)).astype(np.float32)
        i_xt, i_ty = estimators.binned_information(acts, self.labels, bin_size=0.01)
        h_y = reference(self.labels[:, None], self.labels, bin_size=1.0)[0]
        self.assertAlmostEqual(float(i_xt), 9.0, places=5)
        self.assertAlmostEqual(float(i_ty), h_y, places=5)  # each sample in its own bin

    def test_constant_layer(self):
        i_xt, i_ty = estimators.binned_information(np.full((512, 7), 0.3, np.float32), self.labels, bin_size=0.5)
        self.assertEqual(float(i_xt), 0.0)
        self.assertAlmostEqual(float(i_ty), 0.0, places=6)

    def test_t_equals_y(self):
        acts = self.labels[:, None].astype(np.float32) + 0.5
        i_xt, i_ty = estimators.binned_information(acts, self.labels, bin_size=1.0)
        p = np.bincount(self.labels) / 512
        h_y = -(p * np.log2(p)).sum()
        self.assertAlmostEqual(float(i_xt), h_y, places=5)
        self.assertAlmostEqual(float(i_ty), h_y, places=5)

    def test_invariances(self):
        acts = _symbols(self.rng, 512, 6, 32) + np.floor(self.rng.normal(size=(512, 6)) * 0.3).astype(np.float32)
        base = estimators.binned_information(acts, self.labels, bin_size=1.0)
        rows = self.rng.permutation(512)
        units = self.rng.permutation(6)
        # A bijective relabelling of each unit's bins: an odd multiplier and a shift per unit.
        relabelled = (np.floor(acts) * np.array([3, -1, 5, 7, -3, 1]) + np.arange(6) * 11) + 0.5
        for acts2, labels2 in (
            (acts[rows], self.labels[rows]),
            (acts[:, units], self.labels),
            (relabelled.astype(np.float32), self.labels),
        ):
            chex.assert_trees_all_close(estimators.binned_information(acts2, labels2, bin_size=1.0), base, atol=1e-5)

    def test_bounds_and_refinement(self):
        acts = np.tanh(self.rng.normal(size=(20, 512, 5)) * 2).astype(np.float32)
        coarse = estimators.binned_information(acts, self.labels, bin_size=0.5)
        fine = estimators.binned_information(acts, self.labels, bin_size=0.25)
        h_y = reference(self.labels[:, None], self.labels, bin_size=1.0)[0]
        for i_xt, i_ty in (coarse, fine):
            self.assertTrue(np.all(i_ty >= 0))
            self.assertTrue(np.all(i_ty <= np.minimum(i_xt, h_y) + 1e-5))
        self.assertTrue(np.all(fine[0] >= coarse[0] - 1e-6))
        ranged = [
            estimators.binned_information(acts, self.labels, num_bins=n, value_range=(-1, 1))[0] for n in (4, 8, 16)
        ]
        self.assertTrue(np.all(np.diff(np.stack(ranged), axis=0) >= -1e-6))


class ReferenceTest(chex.TestCase):
    @parameterized.named_parameters(
        ("narrow_random", 1000, 5, 3, "normal", {"bin_size": 0.5}),
        ("narrow_tanh_saturated", 1000, 10, 2, "tanh", {"bin_size": 0.07}),
        ("wide_int8_path", 600, 200, 10, "tanh", {"bin_size": 0.5}),
        ("wide_int32_path", 600, 200, 10, "wide", {"bin_size": 0.5}),
        ("narrow_num_bins", 1000, 6, 2, "tanh", {"num_bins": 30, "value_range": (-1.0, 1.0)}),
        ("wide_num_bins_outside", 600, 150, 10, "normal", {"num_bins": 12, "value_range": (-0.5, 0.5)}),
        ("wide_many_bins", 600, 150, 4, "normal", {"num_bins": 1000, "value_range": (-2.0, 2.0)}),
    )
    def test_agrees_with_numpy(self, n, d, classes, kind, binning):
        rng = np.random.default_rng(d)
        raw = rng.normal(size=(3, n, d)).astype(np.float32)
        acts = {"normal": raw, "tanh": np.tanh(raw * 3), "wide": raw * 200}[kind].astype(np.float32)
        labels = rng.integers(0, classes, n).astype(np.int32)
        i_xt, i_ty = estimators.binned_information(acts, labels, **binning)
        chex.assert_shape((i_xt, i_ty), (3,))
        for b in range(3):
            want = reference(acts[b], labels, **binning)
            np.testing.assert_allclose([i_xt[b], i_ty[b]], want, atol=1e-5)
        exact = estimators.binned_information(acts, labels, method="exact", **binning)
        chex.assert_trees_all_close(exact, (i_xt, i_ty), atol=1e-6)

    def test_leading_axes_equal_a_loop(self):
        rng = np.random.default_rng(1)
        acts = np.tanh(rng.normal(size=(2, 3, 400, 8)) * 2).astype(np.float32)
        labels = rng.integers(0, 3, 400).astype(np.int32)
        i_xt, i_ty = estimators.binned_information(acts, labels, bin_size=0.3)
        chex.assert_shape((i_xt, i_ty), (2, 3))
        for s in range(2):
            for e in range(3):
                one = estimators.binned_information(acts[s, e], labels, bin_size=0.3)
                chex.assert_trees_all_close((i_xt[s, e], i_ty[s, e]), one, atol=1e-6)

    def test_labels_per_item_equal_a_loop(self):
        rng = np.random.default_rng(6)
        acts = np.tanh(rng.normal(size=(3, 2, 300, 150)) * 2).astype(np.float32)
        labels = rng.integers(0, 4, (3, 2, 300)).astype(np.int32)
        i_xt, i_ty = estimators.information_plane([acts, acts[..., :5]], labels, bin_size=0.5)
        chex.assert_shape(i_xt, (3, 2, 2))
        for s in range(3):
            for e in range(2):
                for layer, a in enumerate((acts[s, e], acts[s, e, :, :5])):
                    want = reference(a, labels[s, e], bin_size=0.5)
                    np.testing.assert_allclose([i_xt[s, e, layer], i_ty[s, e, layer]], want, atol=1e-5)

    def test_chunks_bounded_in_memory_equal_one_chunk(self):
        rng = np.random.default_rng(2)
        acts = np.tanh(rng.normal(size=(5, 300, 140)) * 2).astype(np.float32)
        labels = rng.integers(0, 2, 300).astype(np.int32)
        whole = estimators.binned_information(acts, labels, bin_size=0.5)
        limit = binned._CHUNK_ELEMENTS
        binned._CHUNK_ELEMENTS = 2 * 300 * 140  # chunks of items 0-1, 2-3, 3-4
        try:
            common._plane.clear_cache()
            chunked = estimators.binned_information(acts, labels, bin_size=0.5)
        finally:
            binned._CHUNK_ELEMENTS = limit
            common._plane.clear_cache()
        chex.assert_trees_all_close(chunked, whole, atol=1e-6)


class MillerMadowTest(chex.TestCase):
    """bias_correction="miller_madow": each plug-in entropy H(T), H(Y), H(T,Y) plus (m - 1) /
    (2 N ln 2), m its occupied cells; against numpy for the binned, adaptive and exact estimators."""

    def test_against_numpy(self):
        rng = np.random.default_rng(5)
        acts = np.round(rng.normal(size=(300, 2)), 0).astype(np.float32)  # a few dozen cells
        labels = rng.integers(0, 3, 300).astype(np.int32)
        n = len(labels)

        def corrected(rows):
            _, counts = np.unique(rows, axis=0, return_counts=True)
            p = counts / n
            return float(-(p * np.log2(p)).sum()) + (len(counts) - 1) / (2 * n * np.log(2))

        joint = np.concatenate([acts, labels[:, None].astype(np.float32)], axis=1)
        h_t, h_y, h_ty = corrected(acts), corrected(labels[:, None]), corrected(joint)
        for estimator in (
            estimators.Binning(bin_size=1.0, bias_correction="miller_madow"),
            estimators.Exact(bias_correction="miller_madow"),
        ):
            i_xt, i_ty = estimators.information_plane([acts], labels, estimator=estimator)
            self.assertAlmostEqual(float(i_xt[0]), h_t, places=5)
            self.assertAlmostEqual(float(i_ty[0]), h_t + h_y - h_ty, places=5)
        plain = estimators.information_plane([acts], labels, estimator=estimators.Binning(bin_size=1.0))
        cells = len(np.unique(acts, axis=0))
        self.assertAlmostEqual(float(i_xt[0] - plain[0][0]), (cells - 1) / (2 * n * np.log(2)), places=5)
        with self.assertRaisesRegex(ValueError, "bias_correction"):
            estimators.AdaptiveBinning(30, "range", bias_correction="jackknife")


class HashTest(chex.TestCase):
    @parameterized.parameters((12, 1.0), (300, 1.0), (300, 65536.0))
    def test_rows_differing_in_one_entry(self, d, step):
        """Every row differs from a base row in one entry (by `step` bins); pairs in two."""
        n = 2048
        rng = np.random.default_rng(d)
        base = rng.integers(-3, 3, d).astype(np.float32)
        rows = np.tile(base, (n, 1))
        i = np.arange(1, n)
        rows[i, i % d] += step * (1 + i // d)
        acts = rows + 0.5
        labels = rng.integers(0, 2, n).astype(np.int32)
        fast = estimators.binned_information(acts, labels, bin_size=1.0)
        exact = estimators.binned_information(acts, labels, bin_size=1.0, method="exact")
        self.assertAlmostEqual(float(fast[0]), 11.0, places=5)
        chex.assert_trees_all_close(fast, exact, atol=1e-6)

    def test_mnist_sized_rows_distinct(self):
        rng = np.random.default_rng(3)
        acts = rng.integers(0, 2, size=(20000, 40)).astype(np.float32)  # 2**40 patterns
        labels = rng.integers(0, 10, 20000).astype(np.int32)
        fast = estimators.binned_information(acts, labels, bin_size=1.0)
        np.testing.assert_allclose(fast, reference(acts, labels, bin_size=1.0), atol=1e-5)


class ApiTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(4)
        self.acts = np.tanh(rng.normal(size=(4, 256, 6))).astype(np.float32)
        self.labels = rng.integers(0, 3, 256).astype(np.int32)

    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_and_eager_agree(self):
        fn = self.variant(lambda a, y: estimators.binned_information(a, y, bin_size=0.25, num_classes=3))
        chex.assert_trees_all_close(
            fn(self.acts, self.labels), estimators.binned_information(self.acts, self.labels, bin_size=0.25)
        )

    def test_vmap(self):
        fn = jax.vmap(lambda a: estimators.binned_information(a, self.labels, bin_size=0.25))
        chex.assert_trees_all_close(fn(self.acts), estimators.binned_information(self.acts, self.labels, bin_size=0.25))

    def test_plane_of_layers_of_different_widths(self):
        rng = np.random.default_rng(5)
        layers = [np.tanh(rng.normal(size=(2, 3, 256, w))).astype(np.float32) for w in (150, 6, 2)]
        i_xt, i_ty = estimators.information_plane(layers, self.labels, bin_size=0.5)
        chex.assert_shape((i_xt, i_ty), (2, 3, 3))
        for layer, acts in enumerate(layers):
            one = estimators.binned_information(acts, self.labels, bin_size=0.5)
            chex.assert_trees_all_close((i_xt[..., layer], i_ty[..., layer]), one, atol=1e-6)

    def test_same_shapes_never_retrace(self):
        estimators.binned_information(self.acts, self.labels, bin_size=0.125)
        size = common._plane._cache_size()
        for _ in range(3):
            estimators.binned_information(self.acts * 0.5, self.labels, bin_size=0.125)
        self.assertEqual(common._plane._cache_size(), size)

    def test_non_finite_gives_nan_for_that_item_only(self):
        acts = self.acts.copy()
        acts[1, 3, 2] = np.nan
        acts[2, 0, 0] = np.inf
        i_xt, i_ty = (np.asarray(v) for v in estimators.binned_information(acts, self.labels, bin_size=0.5))
        np.testing.assert_array_equal(np.isnan(i_xt), [False, True, True, False])
        np.testing.assert_array_equal(np.isnan(i_ty), [False, True, True, False])
        ok = estimators.binned_information(acts[[0, 3]], self.labels, bin_size=0.5)
        chex.assert_trees_all_close((i_xt[[0, 3]], i_ty[[0, 3]]), ok)
        huge = estimators.binned_information(self.acts * 1e10, self.labels, bin_size=1e-3)
        self.assertTrue(np.all(np.isnan(huge[0])))  # codes beyond int32

    @parameterized.named_parameters(
        ("both", {"bin_size": 0.5, "num_bins": 3, "value_range": (0, 1)}, "exactly one"),
        ("neither", {}, "exactly one"),
        ("zero_bin", {"bin_size": 0.0}, "bin_size"),
        ("negative_bin", {"bin_size": -1.0}, "bin_size"),
        ("nan_bin", {"bin_size": float("nan")}, "bin_size"),
        ("no_bins", {"num_bins": 0, "value_range": (0, 1)}, "num_bins"),
        ("no_range", {"num_bins": 3}, "value_range"),
        ("empty_range", {"num_bins": 3, "value_range": (1.0, 1.0)}, "lo < hi"),
        ("range_with_size", {"bin_size": 0.5, "value_range": (0, 1)}, "value_range"),
        ("method", {"bin_size": 0.5, "method": "sort"}, "method"),
    )
    def test_bad_binning(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            estimators.binned_information(self.acts, self.labels, **kwargs)

    @parameterized.named_parameters(
        ("wrong_length", lambda a, y: (a, y[:-1]), "len\\(labels\\)"),
        ("negative", lambda a, y: (a, y - 1), "non-negative"),
        ("float_labels", lambda a, y: (a, y.astype(np.float32)), "integers"),
        ("labels_2d", lambda a, y: (a, y[:, None]), "len\\(labels\\)"),
        ("labels_lead", lambda a, y: (a, np.stack([y] * 3)), "leading"),
        ("acts_1d", lambda a, y: (a[0, :, 0], y), "\\[..., N, D\\]"),
    )
    def test_bad_inputs(self, change, message):
        acts, labels = change(self.acts, self.labels)
        with self.assertRaisesRegex(ValueError, message):
            estimators.binned_information(acts, labels, bin_size=0.5)

    def test_label_above_num_classes(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            estimators.binned_information(self.acts, self.labels, bin_size=0.5, num_classes=2)

    def test_traced_labels_need_num_classes(self):
        with self.assertRaisesRegex(ValueError, "num_classes is required"):
            jax.jit(lambda y: estimators.binned_information(self.acts, y, bin_size=0.5))(self.labels)

    def test_plane_layers_must_share_leading_axes(self):
        with self.assertRaisesRegex(ValueError, "leading axes"):
            estimators.information_plane([self.acts, self.acts[:2]], self.labels, bin_size=0.5)

    def test_returns_float32_bits(self):
        i_xt, i_ty = estimators.binned_information(jnp.asarray(self.acts), jnp.asarray(self.labels), bin_size=0.5)
        self.assertEqual(i_xt.dtype, jnp.float32)
        self.assertEqual(i_ty.dtype, jnp.float32)


if __name__ == "__main__":
    absltest.main()
