"""Tests of adaptive binning: an independent numpy reference, invariances, closed forms, errors."""

import chex
import jax
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators
from ib_jax.estimators import adaptive, common


def reference_codes(acts, num_bins, strategy):
    """Plain numpy codes of one item, from the definitions."""
    a = np.asarray(acts, np.float32)
    if strategy == "entropy":
        u = np.unique(a)
        edges = u[(np.arange(1, num_bins) * len(u)) // num_bins]
        return np.searchsorted(edges, a, side="right")
    lo, hi = a.min(), a.max()
    if hi == lo:
        return np.zeros(a.shape, np.int64)
    return np.minimum(np.floor((a - lo) / (hi - lo) * np.float32(num_bins)), num_bins - 1)


def reference(acts, labels, num_bins, strategy):
    """I(X;T), I(T;Y) in bits: np.unique over rows of codes, H(T|Y) class by class."""
    codes = reference_codes(acts, num_bins, strategy)

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h_t = entropy(codes)
    return h_t, h_t - sum(np.mean(labels == c) * entropy(codes[labels == c]) for c in np.unique(labels))


class ReferenceTest(chex.TestCase):
    @parameterized.named_parameters(
        ("entropy_narrow", 500, 6, 30, "entropy", "tanh"),
        ("entropy_ties", 500, 6, 7, "entropy", "grid"),
        ("entropy_wide_int8", 300, 150, 30, "entropy", "tanh"),
        ("entropy_wide_int32", 300, 150, 400, "entropy", "relu"),
        ("entropy_host_sort", 1000, 140, 30, "entropy", "tanh"),  # N x D >= HOST_SORT_MIN: numpy_edges on CPU
        ("range_narrow", 500, 6, 30, "range", "relu"),
        ("range_wide", 300, 150, 30, "range", "tanh"),
        ("few_distinct_values", 400, 3, 30, "entropy", "binary"),
    )
    def test_agrees_with_numpy(self, n, d, num_bins, strategy, kind):
        rng = np.random.default_rng(d + num_bins)
        raw = rng.normal(size=(3, n, d))
        acts = {
            "tanh": np.tanh(raw * 2),
            "relu": np.maximum(raw, 0.0),
            "grid": np.round(raw * 4) / 4,
            "binary": (raw > 0) * 1.0,
        }[kind].astype(np.float32)
        labels = rng.integers(0, 4, n).astype(np.int32)
        got = estimators.adaptive_binned_information(acts, labels, num_bins=num_bins, strategy=strategy)
        chex.assert_shape(got, (3,))
        for b in range(3):
            np.testing.assert_allclose(
                [got[0][b], got[1][b]], reference(acts[b], labels, num_bins, strategy), atol=1e-5
            )
        exact = estimators.adaptive_binned_information(
            acts, labels, num_bins=num_bins, strategy=strategy, method="exact"
        )
        chex.assert_trees_all_close(exact, got, atol=1e-6)

    @parameterized.parameters("entropy", "range")
    def test_codes_equal_the_definition(self, strategy):
        rng = np.random.default_rng(3)
        acts = np.concatenate([np.tanh(rng.normal(size=(2, 200, 5)) * 3), np.zeros((2, 1, 5))], axis=1)
        acts[:, 7] = -0.0  # -0 and +0 are one value
        acts = acts.astype(np.float32)
        codes = jax.jit(adaptive.AdaptiveBinning(11, strategy).codes)(acts)
        for b in range(2):
            np.testing.assert_array_equal(codes[b], reference_codes(acts[b], 11, strategy))

    @parameterized.parameters(2, 7, 30)
    def test_host_and_device_edges_are_equal(self, num_bins):
        # The CPU path (numpy's sort in threads over parts of each row, then merged) and the
        # GPU/TPU path (XLA's sort) must give the same edges; rows long enough to be split.
        rng = np.random.default_rng(num_bins)
        keys = np.stack(
            [
                rng.integers(-(2**31), 2**31 - 1, 140_000),
                rng.integers(-50, 50, 140_000),  # heavy ties, fewer distinct values than elements
                np.sort(rng.integers(0, 10**6, 140_000))[::-1],  # descending: the parts interleave
            ]
        ).astype(np.int32)
        host = adaptive.numpy_edges(keys, num_bins)
        device = jax.jit(adaptive.edges_by_sort, static_argnums=1)(keys, num_bins)
        np.testing.assert_array_equal(host, device)
        for row, edges in zip(keys, host):
            u = np.unique(row)
            np.testing.assert_array_equal(edges, u[(np.arange(1, num_bins) * len(u)) // num_bins])

    def test_host_sort_only_for_large_items(self):
        codes = adaptive.AdaptiveBinning(30).codes
        small, large = (np.zeros((2, n, 4), np.float32) for n in (100, adaptive.HOST_SORT_MIN // 4))
        self.assertNotIn("python_cpu_callback", jax.jit(codes).lower(small).as_text())  # stays cacheable
        self.assertEqual(jax.devices()[0].platform, "cpu")
        self.assertIn("python_cpu_callback", jax.jit(codes).lower(large).as_text())
        rng = np.random.default_rng(0)  # under a user's vmap too (the callback then runs per element)
        acts = np.tanh(rng.normal(size=(2, 1, adaptive.HOST_SORT_MIN // 4, 4))).astype(np.float32)
        np.testing.assert_array_equal(jax.vmap(codes)(acts)[1, 0], reference_codes(acts[1, 0], 30, "entropy"))

    def test_per_item_labels_and_leading_axes_equal_a_loop(self):
        rng = np.random.default_rng(6)
        layers = [np.tanh(rng.normal(size=(2, 3, 200, w))).astype(np.float32) for w in (140, 4)]
        labels = rng.integers(0, 3, (2, 3, 200)).astype(np.int32)
        estimator = estimators.AdaptiveBinning(num_bins=12, strategy="entropy")
        i_xt, i_ty = estimators.information_plane(layers, labels, estimator=estimator)
        chex.assert_shape(i_xt, (2, 3, 2))
        for layer, acts in enumerate(layers):
            for s in range(2):
                for e in range(3):
                    want = reference(acts[s, e], labels[s, e], 12, "entropy")
                    np.testing.assert_allclose([i_xt[s, e, layer], i_ty[s, e, layer]], want, atol=1e-5)


class PropertyTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.acts = (rng.integers(-40, 40, size=(400, 6)) / 8).astype(np.float32)  # exact grid values
        self.labels = rng.integers(0, 3, 400).astype(np.int32)
        self.rng = rng

    @parameterized.parameters("entropy", "range")
    def test_separated_clusters_identical_rows_and_independent_labels(self, strategy):
        """Two equal clusters of rows far apart, 2 bins (the entropy strategy's edge is then the
        first value of the upper cluster): I(X;T) = H(cluster) = 1 bit; labels = cluster give
        I(T;Y) = H(Y) = 1 bit; labels balanced within each cluster give 0. Rows each present twice,
        every distinct value its own bin: I(X;T) = log2(N / 2)."""
        cluster = np.repeat([0, 1], [200, 200])
        acts = (np.where(cluster[:, None] == 0, -5.0, 5.0) + self.rng.uniform(-0.1, 0.1, (400, 3))).astype(np.float32)
        h = 1.0
        i_xt, i_ty = estimators.adaptive_binned_information(
            acts, cluster.astype(np.int32), num_bins=2, strategy=strategy
        )
        chex.assert_trees_all_close((i_xt, i_ty), (h, h), atol=1e-5)
        balanced = (np.arange(400) % 2).astype(np.int32)
        _, i_ty = estimators.adaptive_binned_information(acts, balanced, num_bins=2, strategy=strategy)
        self.assertAlmostEqual(float(i_ty), 0.0, places=5)
        rows = self.rng.normal(size=(200, 3)).astype(np.float32)
        twice = np.concatenate([rows, rows])
        bins = 600 if strategy == "entropy" else 2**15  # range: bins fine enough to part every value
        i_xt, _ = estimators.adaptive_binned_information(twice, self.labels, num_bins=bins, strategy=strategy)
        self.assertAlmostEqual(float(i_xt), np.log2(200), places=5)

    def test_entropy_strategy_invariances(self):
        base = estimators.adaptive_binned_information(self.acts, self.labels, num_bins=9)
        rows, units = self.rng.permutation(400), self.rng.permutation(6)
        for acts, labels in (
            (self.acts[rows], self.labels[rows]),
            (self.acts[:, units], self.labels),
            (np.exp(self.acts).astype(np.float32), self.labels),  # strictly increasing
            (self.acts**3 + 10.0, self.labels),  # strictly increasing, exact on this grid
        ):
            chex.assert_trees_all_close(estimators.adaptive_binned_information(acts, labels, num_bins=9), base)

    def test_range_strategy_is_affine_invariant_and_constant_is_one_bin(self):
        base = estimators.adaptive_binned_information(self.acts, self.labels, num_bins=9, strategy="range")
        moved = estimators.adaptive_binned_information(self.acts * 4.0 - 3.0, self.labels, num_bins=9, strategy="range")
        chex.assert_trees_all_close(moved, base)
        for strategy in adaptive.STRATEGIES:
            const = estimators.adaptive_binned_information(
                np.full((400, 6), 0.3, np.float32), self.labels, strategy=strategy
            )
            chex.assert_trees_all_close(const, (0.0, 0.0), atol=1e-6)

    @parameterized.parameters("entropy", "range")
    def test_one_bin_is_zero(self, strategy):
        got = estimators.adaptive_binned_information(self.acts, self.labels, num_bins=1, strategy=strategy)
        chex.assert_trees_all_close(got, (0.0, 0.0), atol=1e-6)

    def test_many_bins_separate_every_distinct_row(self):
        acts = self.rng.normal(size=(400, 3)).astype(np.float32)
        i_xt, _ = estimators.adaptive_binned_information(acts, self.labels, num_bins=1200)
        self.assertAlmostEqual(float(i_xt), np.log2(400), places=5)

    def test_same_shapes_never_retrace_and_bad_items_are_nan(self):
        acts = np.stack([self.acts, self.acts * 2])
        estimators.adaptive_binned_information(acts, self.labels)
        size = common._plane._cache_size()
        acts[1, 0, 0] = np.nan
        i_xt, i_ty = estimators.adaptive_binned_information(acts, self.labels)
        self.assertEqual(common._plane._cache_size(), size)
        np.testing.assert_array_equal(np.isnan([i_xt, i_ty]), [[False, True], [False, True]])

    @parameterized.named_parameters(
        ("zero_bins", {"num_bins": 0}, "num_bins"),
        ("huge_bins", {"num_bins": 2**20}, "num_bins"),
        ("fraction", {"num_bins": 2.5}, "num_bins"),
        ("strategy", {"strategy": "quantile"}, "strategy"),
        ("method", {"method": "sort"}, "method"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            estimators.adaptive_binned_information(self.acts, self.labels, **kwargs)

    def test_by_name(self):
        binning = estimators.Binning(bin_size=0.5)
        for name in estimators.ESTIMATORS:  # noise_mc measures a network with noise of its own
            noise = {"layer_noise": "additive:0.1"} if name == "noise_mc" else {}
            estimator = estimators.by_name(name, binning=binning, noise_variance=0.1, num_bins=30, **noise)
            self.assertEqual(estimator.name, name)
        with self.assertRaisesRegex(ValueError, "unknown estimator"):
            estimators.by_name("mine", binning=binning, noise_variance=0.1, num_bins=30)


if __name__ == "__main__":
    absltest.main()
