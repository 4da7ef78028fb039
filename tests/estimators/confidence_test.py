"""Tests of the confidence of a measured value (`common.Confidence`): the bootstrap standard error
against a plain-numpy bootstrap, the permutation null on independent and on separable labels,
and the nested subsets of the convergence check."""

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import estimators, validation
from ib_jax.estimators import channels, common

CONFIDENCE = common.Confidence(bootstrap=12, null_permutations=30)


def plug_in(codes, labels):
    """I(X;T) = H(T), I(T;Y) of rows of codes, in bits (numpy, np.unique over rows)."""

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h_t = entropy(codes)
    joint = np.concatenate([codes, labels[:, None]], axis=1)
    return h_t, max(h_t + entropy(labels[:, None]) - entropy(joint), 0.0)


def kde_upper(acts, labels, variance):
    """Kolchinsky & Tracey's upper bound in numpy (float64), bits."""
    a = np.asarray(acts, np.float64)
    d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d / (2 * variance))
    n = len(a)
    i_xt = np.log(n) - np.mean(np.log(kernel.sum(1)))
    h_cond = 0.0
    for y in np.unique(labels):
        members = labels == y
        sub = kernel[np.ix_(members, members)]
        h_cond += members.mean() * (np.log(members.sum()) - np.mean(np.log(sub.sum(1))))
    return i_xt / np.log(2), (i_xt - h_cond) / np.log(2)


def numpy_confidence(measure, acts, labels, confidence):
    """The standard errors and the null's mean and 95th percentile by a plain loop over the same
    resamples and permutations."""
    resamples, permutations = (np.asarray(d) for d in confidence.draws(len(labels)))
    boot = np.array([measure(acts[i], labels[i]) for i in resamples])
    null = np.array([measure(acts, labels[p])[1] for p in permutations])
    return {
        "i_xt_se": boot[:, 0].std(ddof=1),
        "i_ty_se": boot[:, 1].std(ddof=1),
        "i_ty_null_mean": null.mean(),
        "i_ty_null_p95": np.quantile(null, 0.95),
    }


def measured(acts, labels, estimator, confidence=CONFIDENCE, **kwargs):
    i_xt, i_ty, extras = common.measure((acts,), labels, estimator, with_extras=True, confidence=confidence, **kwargs)
    return float(i_xt[0]), float(i_ty[0]), {k: float(v[0]) for k, v in extras.items()}


class BootstrapTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(3)
        self.acts = rng.normal(size=(200, 2)).astype(np.float32)
        self.labels = (self.acts[:, 0] + rng.normal(size=200) > 0).astype(np.int32)

    def test_plug_in_weights_equal_a_numpy_bootstrap(self):
        """binned counts a resample as weights on the counts; numpy gathers each resampled copy."""
        estimator = estimators.Binning(bin_size=0.5)
        codes = np.floor(self.acts / np.float32(0.5))
        expected = numpy_confidence(plug_in, codes, self.labels, CONFIDENCE)
        _, _, got = measured(self.acts, self.labels, estimator)
        for key, value in expected.items():
            self.assertAlmostEqual(got[key], value, places=5, msg=key)

    def test_resampled_copies_equal_a_numpy_bootstrap(self):
        """kde_upper measures each resampled copy (indices) and each permuted labelling."""
        confidence = common.Confidence(bootstrap=6, null_permutations=6)
        expected = numpy_confidence(lambda a, y: kde_upper(a, y, 0.1), self.acts, self.labels, confidence)
        _, _, got = measured(self.acts, self.labels, estimators.KDE(0.1), confidence)
        for key, value in expected.items():
            self.assertAlmostEqual(got[key], value, places=4, msg=key)

    def test_kde_one_pass_equals_measuring_copies(self):
        """The KDE bounds count the draws as extra columns of their one pass over the tiles: the same
        values as measuring each resampled copy and each permuted labelling, per-item labels too."""
        rng = np.random.default_rng(4)
        acts = rng.normal(size=(2, 150, 5)).astype(np.float32)
        labels = rng.integers(0, 3, (2, 150)).astype(np.int32)
        resamples, permutations = common.Confidence(bootstrap=4, null_permutations=3).draws(150)
        estimator = estimators.KDE(0.3, "lower")
        with jax.enable_x64(True):
            one_pass = estimator.layer_confidence(acts, labels, 3, False, resamples, permutations)
            copies = common.by_resampling(estimator, acts, labels, 3, False, resamples, permutations)
        for got, want in zip(one_pass, copies):
            np.testing.assert_allclose(got, want, atol=2e-5)

    def test_standard_error_matches_the_spread_over_draws_of_the_data(self):
        """The bootstrap SE of the plug-in I(T;Y) (8 cells, N = 1,000) is within 35% of its
        standard deviation over 30 fresh draws of the data."""
        values, errors = [], []
        for seed in range(30):
            acts, labels = validation.class_clusters(seed, n=1000, dim=1, num_classes=2, separation=1.0, spread=1.0)
            _, i_ty, extras = measured(acts, labels, estimators.Binning(num_bins=8, value_range=(-3.0, 4.0)))
            values.append(i_ty)
            errors.append(extras["i_ty_se"])
        self.assertAlmostEqual(np.mean(errors) / np.std(values, ddof=1), 1.0, delta=0.35)


class PermutationNullTest(chex.TestCase):
    def test_independent_labels_lie_inside_the_null(self):
        """Labels independent of T: the estimate is a draw from the null (below its 95th
        percentile in most of 10 draws, never above its largest value by much)."""
        inside = 0
        for seed in range(10):
            rng = np.random.default_rng(seed)
            acts = rng.normal(size=(300, 1)).astype(np.float32)
            labels = rng.integers(0, 3, 300).astype(np.int32)
            _, i_ty, extras = measured(acts, labels, estimators.Binning(bin_size=0.5))
            inside += i_ty <= extras["i_ty_null_p95"]
            self.assertLess(i_ty, extras["i_ty_null_p95"] + 0.1)
        self.assertGreaterEqual(inside, 8)

    def test_separable_labels_lie_far_above_the_null(self):
        acts, labels = validation.class_clusters(0, n=400, dim=2, num_classes=4, separation=8.0, spread=1.0)
        for estimator in (estimators.Binning(bin_size=1.0), estimators.KDE(0.5)):
            _, i_ty, extras = measured(acts, labels, estimator)
            self.assertGreater(i_ty - extras["i_ty_null_p95"], 1.0, msg=estimator.name)
            self.assertGreater(extras["i_ty_null_p95"], extras["i_ty_null_mean"])

    def test_a_wide_layer_reads_the_same_for_shuffled_labels(self):
        """The plug-in I(T;Y) of a layer where every sample has its own cell is H(Y) for any
        labels: the null says so (the estimate equals its 95th percentile)."""
        rng = np.random.default_rng(0)
        acts = rng.normal(size=(300, 50)).astype(np.float32)
        labels = rng.integers(0, 10, 300).astype(np.int32)
        _, i_ty, extras = measured(acts, labels, estimators.Binning(bin_size=0.5))
        self.assertAlmostEqual(i_ty, extras["i_ty_null_p95"], places=5)

    def test_draws_are_fixed_and_bad_counts_refused(self):
        a, b = CONFIDENCE.draws(50), CONFIDENCE.draws(50)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(np.sort(np.asarray(a[1]), axis=1), np.tile(np.arange(50), (30, 1)))
        for bad in (1, -2, 2.5):
            with self.assertRaisesRegex(ValueError, "bootstrap must be 0 \\(off\\) or an integer >= 2"):
                common.Confidence(bootstrap=bad)
        with self.assertRaisesRegex(ValueError, "the probe estimator has no bootstrap"):
            common.measure(
                (np.zeros((100, 2), np.float32),),
                np.arange(100) % 2,
                estimators.Probe(),
                confidence=common.Confidence(bootstrap=3),
            )


class ConvergenceTest(chex.TestCase):
    def test_nested_subsets_and_their_values(self):
        """measure_splits' convergence channels: each estimator on the first N / 8, N / 4, N / 2
        samples of one fixed order (nested), NaN where the estimator refuses so few."""
        acts, labels = validation.class_clusters(1, n=160, dim=2, num_classes=2, separation=2.0, spread=1.0)
        order = common.convergence_order(160)
        np.testing.assert_array_equal(np.sort(order), np.arange(160))
        self.assertEqual(common.convergence_sizes(160), (20, 40, 80, 160))
        chosen = (estimators.Binning(bin_size=1.0), estimators.KNN(k=15))
        split = ((acts,), labels, acts)
        out = np.asarray(channels.measure_splits(chosen, (split, split), 2, convergence="measure"))
        names = channels.extra_channels(chosen, convergence=True)
        self.assertEqual(out.shape, (2 + len(names), 4, 1))
        for size, fraction in zip((20, 40, 80), common.CONVERGENCE_FRACTIONS):
            index = order[:size]
            i_xt, i_ty = estimators.information_plane([acts[index]], labels[index], estimator=chosen[0])
            got = out[2 + names.index(f"binned.n{fraction}")]
            np.testing.assert_allclose(got[:, 0], [i_xt[0], i_ty[0], i_xt[0], i_ty[0]], atol=1e-6)
            knn = out[2 + names.index(f"knn.n{fraction}")]
            self.assertEqual(bool(np.isnan(knn).all()), size <= 15, msg=size)  # k = 15 needs more than 15
        skipped = np.asarray(channels.measure_splits(chosen, (split, split), 2, convergence="skip"))
        self.assertTrue(np.isnan(skipped[2:]).all())
        np.testing.assert_array_equal(skipped[:2], out[:2])


if __name__ == "__main__":
    absltest.main()
