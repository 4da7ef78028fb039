"""Tests of the KDE bounds: closed forms, an independent numpy reference, tiling, errors."""

import math

import chex
import jax
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import estimators
from ib_jax.estimators import common, kde

LOG2 = math.log(2.0)


def reference(acts, labels, noise_variance, bound):
    """Plain numpy, float64: all N x N differences, log-sum-exp with its maximum taken out, and
    I(T;Y) = H(T) - sum_y p_y H(T|Y=y), each H by the same bound on the class's items."""
    a = np.asarray(acts, np.float64)
    width = (2.0 if bound == "upper" else 8.0) * noise_variance

    def h(items):
        d = ((items[:, None, :] - items[None, :, :]) ** 2).sum(-1)
        z = -d / width
        m = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
        return math.log(len(items)) - lse.mean()

    h_t = h(a)
    h_t_given_y = sum(np.mean(labels == c) * h(a[labels == c]) for c in np.unique(labels))
    return h_t / LOG2, (h_t - h_t_given_y) / LOG2


class ClosedFormTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(0)

    @parameterized.parameters("upper", "lower")
    def test_constant_layer_is_zero(self, bound):
        labels = self.rng.integers(0, 3, 200).astype(np.int32)
        i_xt, i_ty = estimators.kde_information(
            np.full((200, 5), 0.7, np.float32), labels, noise_variance=0.1, bound=bound
        )
        self.assertAlmostEqual(float(i_xt), 0.0, places=6)
        self.assertAlmostEqual(float(i_ty), 0.0, places=6)

    @parameterized.parameters("upper", "lower")
    def test_two_points(self, bound):
        """I = log 2 - log(1 + exp(-d^2 / c)) for two points at distance d."""
        acts = np.array([[0.0, 0.0], [0.03, 0.04]], np.float32)  # d^2 = 0.0025
        c = (2.0 if bound == "upper" else 8.0) * 1e-3
        want = (math.log(2.0) - math.log1p(math.exp(-0.0025 / c))) / LOG2
        i_xt, i_ty = estimators.kde_information(acts, np.array([0, 1], np.int32), noise_variance=1e-3, bound=bound)
        self.assertAlmostEqual(float(i_xt), want, places=5)
        self.assertAlmostEqual(float(i_ty), want, places=5)  # each class is one point: H(T|Y) = 0

    def test_separated_clusters(self):
        """Clusters far apart: I(X;T) = H(cluster); labels = cluster: I(T;Y) = H(Y); labels
        balanced within each cluster (independent of T): I(T;Y) = 0."""
        sizes = np.array([100, 60, 40])
        cluster = np.repeat(np.arange(3), sizes)
        acts = (cluster[:, None] * 50.0 + self.rng.normal(size=(200, 4)) * 1e-4).astype(np.float32)
        p = sizes / sizes.sum()
        h = float(-(p * np.log2(p)).sum())
        for bound in ("upper", "lower"):
            i_xt, i_ty = estimators.kde_information(acts, cluster.astype(np.int32), noise_variance=1.0, bound=bound)
            self.assertAlmostEqual(float(i_xt), h, places=4)
            self.assertAlmostEqual(float(i_ty), h, places=4)
            balanced = (np.arange(200) % 2).astype(np.int32)  # every cluster half 0, half 1
            _, i_ty = estimators.kde_information(acts, balanced, noise_variance=1.0, bound=bound)
            self.assertAlmostEqual(float(i_ty), 0.0, places=4)

    def test_identical_rows_in_pairs(self):
        """Each row twice, pairs far apart: every point has exactly one twin, I = log2(N / 2)."""
        rows = self.rng.normal(size=(150, 6)).astype(np.float32) * 100.0  # float64 distances (narrow)
        acts = np.concatenate([rows, rows])
        labels = self.rng.integers(0, 2, 300).astype(np.int32)
        i_xt, _ = estimators.kde_information(acts, labels, noise_variance=1e-3)
        self.assertAlmostEqual(float(i_xt), math.log2(150), places=5)

    def test_far_beyond_the_noise_is_log2_n_exactly_when_tiled(self):
        """Every point alone; large offsets and norms. D_ii = 0 exactly is what keeps the
        bound at log2 N (a diagonal of 0.016 pushed it above), in the tiled path too."""
        acts = (1e3 + self.rng.normal(size=(2, 300, 40)) * 30.0).astype(np.float32)
        labels = self.rng.integers(0, 3, 300).astype(np.int32)
        with small_tiles():
            for bound in ("upper", "lower"):
                i_xt, i_ty = estimators.kde_information(acts, labels, noise_variance=1e-3, bound=bound)
                np.testing.assert_allclose(i_xt, math.log2(300), rtol=0, atol=2e-6)
                h_y = reference(labels[:, None].astype(np.float32) * 1e4, labels, 1.0, bound)[0]
                np.testing.assert_allclose(i_ty, h_y, rtol=0, atol=2e-5)


class small_tiles:  # noqa: N801  (a context manager used like a function)
    """Tiles of at most 64 rows and 64 x 64 x 2 terms, so every path is tiled and chunked."""

    def __enter__(self):
        self.saved = kde._MAX_BLOCK, kde._TILE_ELEMENTS
        kde._MAX_BLOCK, kde._TILE_ELEMENTS = 64, 64 * 64 * 2
        common._plane.clear_cache()

    def __exit__(self, *exc):
        kde._MAX_BLOCK, kde._TILE_ELEMENTS = self.saved
        common._plane.clear_cache()


class ReferenceTest(chex.TestCase):
    @parameterized.named_parameters(
        ("narrow_upper", 300, 3, 2, 1e-3, "upper"),
        ("narrow_lower", 300, 3, 2, 1e-3, "lower"),
        ("wide_upper", 257, 120, 10, 0.1, "upper"),
        ("wide_lower", 257, 120, 10, 0.1, "lower"),
    )
    def test_agrees_with_numpy(self, n, d, classes, variance, bound):
        rng = np.random.default_rng(d)
        acts = np.tanh(rng.normal(size=(3, n, d)) * 2).astype(np.float32) * (1.0 if d < 10 else 0.1)
        labels = rng.integers(0, classes, n).astype(np.int32)
        i_xt, i_ty = estimators.kde_information(acts, labels, noise_variance=variance, bound=bound)
        chex.assert_shape((i_xt, i_ty), (3,))
        for b in range(3):
            np.testing.assert_allclose([i_xt[b], i_ty[b]], reference(acts[b], labels, variance, bound), atol=2e-5)

    def test_tiled_equals_one_tile_and_upper_above_lower(self):
        rng = np.random.default_rng(7)
        acts = np.tanh(rng.normal(size=(5, 300, 7)) * 2).astype(np.float32)
        labels = rng.integers(0, 3, (5, 300)).astype(np.int32)
        whole = {b: estimators.kde_information(acts, labels, noise_variance=1e-2, bound=b) for b in kde.BOUNDS}
        with small_tiles():
            for bound in kde.BOUNDS:
                chex.assert_trees_all_close(
                    estimators.kde_information(acts, labels, noise_variance=1e-2, bound=bound), whole[bound], atol=2e-6
                )
        upper, lower = whole["upper"], whole["lower"]
        self.assertTrue(np.all(np.asarray(upper[0]) >= np.asarray(lower[0])))
        self.assertTrue(np.all(np.asarray(upper[0]) <= math.log2(300) + 1e-6))
        for s in range(5):
            want = reference(acts[s], labels[s], 1e-2, "upper")
            np.testing.assert_allclose([upper[0][s], upper[1][s]], want, atol=2e-5)

    def test_plane_with_leading_axes_equals_a_loop(self):
        rng = np.random.default_rng(8)
        layers = [np.tanh(rng.normal(size=(2, 3, 128, w))).astype(np.float32) for w in (9, 2)]
        labels = rng.integers(0, 2, 128).astype(np.int32)
        estimator = estimators.KDE(noise_variance=0.05, bound="lower")
        i_xt, i_ty = estimators.information_plane(layers, labels, estimator=estimator)
        chex.assert_shape((i_xt, i_ty), (2, 3, 2))
        for layer, acts in enumerate(layers):
            for s in range(2):
                for e in range(3):
                    want = reference(acts[s, e], labels, 0.05, "lower")
                    np.testing.assert_allclose([i_xt[s, e, layer], i_ty[s, e, layer]], want, atol=2e-5)


class ApiTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(4)
        self.acts = np.tanh(rng.normal(size=(4, 128, 5))).astype(np.float32)
        self.labels = rng.integers(0, 3, 128).astype(np.int32)

    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_and_eager_agree(self):
        fn = self.variant(lambda a, y: estimators.kde_information(a, y, noise_variance=0.1, num_classes=3))
        chex.assert_trees_all_close(
            fn(self.acts, self.labels),
            estimators.kde_information(self.acts, self.labels, noise_variance=0.1),
            atol=1e-6,
        )

    def test_same_shapes_never_retrace(self):
        estimators.kde_information(self.acts, self.labels, noise_variance=0.3)
        size = common._plane._cache_size()
        for _ in range(3):
            estimators.kde_information(self.acts * 0.5, self.labels, noise_variance=0.3)
        self.assertEqual(common._plane._cache_size(), size)

    def test_non_finite_gives_nan_for_that_item_only(self):
        acts = self.acts.copy()
        acts[1, 3, 2] = np.nan
        acts[2, 0, 0] = -np.inf
        i_xt, i_ty = (np.asarray(v) for v in estimators.kde_information(acts, self.labels, noise_variance=0.1))
        np.testing.assert_array_equal(np.isnan(i_xt), [False, True, True, False])
        np.testing.assert_array_equal(np.isnan(i_ty), [False, True, True, False])
        ok = estimators.kde_information(acts[[0, 3]], self.labels, noise_variance=0.1)
        chex.assert_trees_all_close((i_xt[[0, 3]], i_ty[[0, 3]]), ok, atol=1e-6)

    @parameterized.named_parameters(
        ("zero", {"noise_variance": 0.0}, "noise_variance"),
        ("negative", {"noise_variance": -1.0}, "noise_variance"),
        ("nan", {"noise_variance": float("nan")}, "noise_variance"),
        ("text", {"noise_variance": "big"}, "noise_variance"),
        ("bound", {"noise_variance": 0.1, "bound": "middle"}, "bound"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            estimators.kde_information(self.acts, self.labels, **kwargs)

    def test_bad_inputs_follow_the_common_rules(self):
        with self.assertRaisesRegex(ValueError, "len\\(labels\\)"):
            estimators.kde_information(self.acts, self.labels[:-1], noise_variance=0.1)
        with self.assertRaisesRegex(ValueError, "non-negative"):
            estimators.kde_information(self.acts, self.labels - 1, noise_variance=0.1)
        with self.assertRaisesRegex(ValueError, "num_classes is required"):
            jax.jit(lambda y: estimators.kde_information(self.acts, y, noise_variance=0.1))(self.labels)
        with self.assertRaisesRegex(ValueError, "exact"):
            estimators.information_plane([self.acts], self.labels, estimator=estimators.KDE(0.1), method="exact")


class PrecisionTest(chex.TestCase):
    """GPUs and TPUs run float32 products at reduced precision by default (TF32, bf16 passes):
    every matrix product of the estimators states HIGHEST in the compiled program."""

    @parameterized.named_parameters(
        ("binned_int8", estimators.Binning(bin_size=0.5), 200),
        ("binned_int32", estimators.Binning(num_bins=1000, value_range=(-1.0, 1.0)), 200),
        ("kde_narrow_float64", estimators.KDE(0.1), 12),
        ("kde_wide_float32", estimators.KDE(0.1, "lower"), 200),
        ("adaptive_wide", estimators.AdaptiveBinning(30, "range"), 200),
        ("renyi", estimators.Renyi(batch_size=32), 200),
        ("edge_projected", estimators.EDGE(), 200),
    )
    def test_every_product_states_highest(self, estimator, width):
        acts = np.zeros((2, 64, width), np.float32)
        labels = np.zeros(64, np.int32)
        inputs = np.zeros((64, 20), np.float32) if estimator.needs_inputs else None
        lowered = common._plane.lower((acts,), labels, inputs, estimator=estimator, num_classes=2, exact=False)
        text = lowered.as_text()
        products = [line for line in text.splitlines() if "dot_general" in line]
        self.assertNotEmpty(products)
        for line in products:
            self.assertIn("precision = [HIGHEST, HIGHEST]", line)


def mc_reference(acts, labels, noise_variance, draws, seed):
    """Plain numpy, float64: `draws` noisy queries per sample (its own generator), the sums
    over all j and over i's class of exp(-(|t_i + z - t_j|^2 - |z|^2) / (2 s2)); returns the
    bits of I(X;T+Z) and I(T+Z;Y) with the Monte Carlo standard error of I(X;T+Z)."""
    a = np.asarray(acts, np.float64)
    n = len(a)
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=math.sqrt(noise_variance), size=(n, draws, a.shape[1]))
    q = a[:, None, :] + z  # [N, M, D]
    d = ((q[:, :, None, :] - a[None, None, :, :]) ** 2).sum(-1) - (z**2).sum(-1)[:, :, None]  # [N, M, N]
    terms = np.exp(-d / (2 * noise_variance))
    log_all = np.log(terms.sum(-1))  # [N, M]
    same = labels[None, None, :] == labels[:, None, None]
    log_same = np.log((terms * same).sum(-1))
    classes, counts = np.unique(labels, return_counts=True)
    h_y_part = float(np.sum(counts / n * np.log(counts)))
    i_xt = math.log(n) - log_all.mean()
    i_ty = i_xt - h_y_part + log_same.mean()
    se = math.sqrt(np.sum(log_all.var(axis=1) / draws)) / n / LOG2  # the draws' error, the samples fixed
    return i_xt / LOG2, i_ty / LOG2, se


class MonteCarloTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(7)

    def test_separated_points_give_log2_n_and_one_point_gives_zero(self):
        n = 64
        far = (np.arange(n)[:, None] * np.array([[1.0, 0.0]])).astype(np.float32)  # 1 apart, noise std 0.01
        labels = (np.arange(n) % 2).astype(np.int32)
        i_xt, i_ty = estimators.kde_information(far, labels, noise_variance=1e-4, bound="mc")
        self.assertAlmostEqual(float(i_xt), math.log2(n), places=5)
        self.assertAlmostEqual(float(i_ty), 1.0, places=5)
        same = np.full((n, 3), 0.3, np.float32)
        i_xt, i_ty = estimators.kde_information(same, labels, noise_variance=0.1, bound="mc", mc_samples=2)
        self.assertAlmostEqual(float(i_xt), 0.0, places=6)
        self.assertAlmostEqual(float(i_ty), 0.0, places=6)

    def test_between_the_bounds_on_random_layers(self):
        """Within the bounds up to 4 standard errors of the Monte Carlo value on tanh layers."""
        for trial in range(3):
            acts = np.tanh(self.rng.normal(size=(400, 3)) * 1.5).astype(np.float32)
            labels = self.rng.integers(0, 3, 400).astype(np.int32)
            kw = {"noise_variance": 0.02}
            upper = float(estimators.kde_information(acts, labels, bound="upper", **kw)[0])
            lower = float(estimators.kde_information(acts, labels, bound="lower", **kw)[0])
            mc = float(estimators.kde_information(acts, labels, bound="mc", mc_samples=8, seed=trial, **kw)[0])
            se = mc_reference(acts, labels, 0.02, 8, trial)[2]
            self.assertLess(lower - 4 * se, mc)
            self.assertLess(mc, upper + 4 * se)
            self.assertGreater(upper - lower, 0.5)  # a case where the bounds are apart

    def test_converges_to_numpy_with_many_draws(self):
        """1e5 draws (50 samples x 2,000) against an independent numpy estimate with as many: the
        two agree within their Monte Carlo errors."""
        acts = np.tanh(self.rng.normal(size=(50, 2))).astype(np.float32)
        labels = self.rng.integers(0, 2, 50).astype(np.int32)
        i_xt, i_ty = estimators.kde_information(acts, labels, noise_variance=0.05, bound="mc", mc_samples=2000)
        want_xt, want_ty, se = mc_reference(acts, labels, 0.05, 2000, 0)
        self.assertLess(abs(float(i_xt) - want_xt), 5 * math.sqrt(2) * se + 1e-3)
        self.assertLess(abs(float(i_ty) - want_ty), 0.02)

    def test_reproducible_and_seeded(self):
        acts = self.rng.normal(size=(2, 300, 4)).astype(np.float32)
        labels = self.rng.integers(0, 2, 300).astype(np.int32)
        kw = {"noise_variance": 0.5, "bound": "mc"}
        a = estimators.kde_information(acts, labels, **kw)
        chex.assert_trees_all_equal(a, estimators.kde_information(acts, labels, **kw))
        b = estimators.kde_information(acts, labels, seed=1, **kw)
        self.assertFalse(np.allclose(a[0], b[0], rtol=0, atol=1e-7))
        jitted = jax.jit(lambda x, y: estimators.kde_information(x, y, num_classes=2, **kw))(acts, labels)
        chex.assert_trees_all_close(a, jitted, atol=1e-5)

    @parameterized.parameters(({"mc_samples": 0}, "mc_samples"), ({"seed": -1}, "seed"), ({"bound": "mid"}, "bound"))
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            estimators.KDE(**{"noise_variance": 0.1, "bound": "mc", **kwargs})


if __name__ == "__main__":
    absltest.main()
