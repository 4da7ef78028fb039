"""Tests of the data sets as arrays: MNIST's statistics, label randomisation, input corruptions,
stratified subsets, one's own .npz files and the registry of named data sets."""

import tempfile

import chex
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import data, errors, experiment
from tests import testing


def _entropy_bits(labels):
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


class MnistTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.ds = data.load_mnist(testing.DATA_DIR, download=False)

    def test_shapes_dtypes_ranges(self):
        ds = self.ds
        chex.assert_shape(ds.x_train, (60000, 784))
        chex.assert_shape(ds.x_test, (10000, 784))
        chex.assert_shape(ds.y_train, (60000,))
        chex.assert_shape(ds.y_test, (10000,))
        self.assertEqual(ds.x_train.dtype, np.float32)
        self.assertEqual(ds.y_train.dtype, np.int32)
        self.assertEqual(ds.x_train.min(), 0.0)
        self.assertEqual(ds.x_train.max(), 1.0)
        self.assertEqual(set(np.unique(ds.y_test)), set(range(10)))

    def test_label_entropy_matches_known_values(self):
        self.assertAlmostEqual(_entropy_bits(self.ds.y_train), 3.319871, places=5)
        self.assertAlmostEqual(_entropy_bits(self.ds.y_test), 3.319423, places=5)

    def test_every_image_distinct(self):
        x = np.concatenate([self.ds.x_train, self.ds.x_test])
        rows = np.ascontiguousarray((x * 255).astype(np.uint8)).view(np.dtype((np.void, 784)))
        self.assertLen(np.unique(rows), 70000)

    def test_permutation_keeps_counts_and_moves_labels(self):
        y = self.ds.y_train
        z = data.permute_labels(y, seed=3)
        np.testing.assert_array_equal(np.bincount(z), np.bincount(y))
        self.assertGreater(np.mean(z != y), 0.85)  # a random permutation changes ~90%.
        np.testing.assert_array_equal(z, data.permute_labels(y, seed=3))
        self.assertFalse(np.array_equal(z, data.permute_labels(y, seed=4)))

    @parameterized.parameters(0.0, 0.2, 0.5, 1.0)
    def test_corruption_statistics(self, p):
        y = self.ds.y_train
        z = data.corrupt_labels(y, p, 10, seed=0)
        # A replaced label keeps its value with probability 1/10.
        self.assertAlmostEqual(np.mean(z != y), p * 0.9, delta=0.01)
        if p == 1.0:
            counts = np.bincount(z, minlength=10)
            self.assertLess(np.abs(counts / len(z) - 0.1).max(), 0.01)

    def test_subset_is_stratified_seeded_and_distinct(self):
        y = self.ds.y_train
        idx = data.subset_indices(y, 1000, seed=1, num_classes=10)
        self.assertLen(np.unique(idx), 1000)
        expected = 1000 * np.bincount(y) / len(y)
        self.assertLessEqual(np.abs(np.bincount(y[idx]) - expected).max(), 1.0)
        np.testing.assert_array_equal(idx, data.subset_indices(y, 1000, seed=1, num_classes=10))

    def test_subset_holds_every_class_its_size_allows(self):
        """Rounding by largest remainder alone would leave the rare classes out of a subset of
        10: each then takes one sample from the largest share; the MNIST subsets are unchanged."""
        y = np.repeat(np.arange(4), [97, 1, 1, 1])  # quotas of a subset of 4: 3.88, 0.04, 0.04, 0.04
        for size in (4, 5, 10):
            np.testing.assert_array_equal(np.unique(y[data.subset_indices(y, size, seed=0, num_classes=4)]), range(4))
        np.testing.assert_array_equal(y[data.subset_indices(y, 3, seed=0, num_classes=4)], 0)  # too few: as rounded
        idx = data.subset_indices(self.ds.y_train, 10, seed=0, num_classes=10)
        np.testing.assert_array_equal(np.sort(self.ds.y_train[idx]), range(10))

    def test_prepare_leaves_test_labels_alone(self):
        ds = data.prepare(self.ds, train_size=500, test_size=300, random_labels=True, seed=2)
        chex.assert_shape(ds.x_train, (500, 784))
        chex.assert_shape(ds.y_test, (300,))
        idx = data.subset_indices(self.ds.y_test, 300, seed=3, num_classes=10)
        np.testing.assert_array_equal(ds.y_test, self.ds.y_test[idx])

    def test_prepare_rejects_both_randomisations(self):
        with self.assertRaisesRegex(errors.ConfigError, "either"):
            data.prepare(self.ds, random_labels=True, label_corruption=0.5)


class InputCorruptionTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.ds = data.prepare(data.load_mnist(testing.DATA_DIR, download=False), train_size=2000, test_size=500)

    def test_shuffled_pixels_are_one_permutation_for_every_image(self):
        out = data.corrupt_inputs(self.ds, "shuffled_pixels", seed=1)
        # Every output pixel is one input pixel, the same one in every train and test image
        # (matched on both splits at once; pixels that are equal everywhere may match either).
        before = np.concatenate([self.ds.x_train, self.ds.x_test])
        after = np.concatenate([out.x_train, out.x_test])
        source = [np.flatnonzero(np.all(before == after[:, [j]], axis=0)) for j in range(784)]
        self.assertTrue(all(len(s) for s in source))
        perm = np.array([s[0] for s in source])
        np.testing.assert_array_equal(after, before[:, perm])
        self.assertGreater(np.mean(perm != np.arange(784)), 0.9)
        np.testing.assert_array_equal(out.y_train, self.ds.y_train)

    def test_random_pixels_keep_each_images_values(self):
        out = data.corrupt_inputs(self.ds, "random_pixels", seed=1)
        for x, y in ((self.ds.x_train, out.x_train), (self.ds.x_test, out.x_test)):
            np.testing.assert_array_equal(np.sort(x, axis=1), np.sort(y, axis=1))
        moved = np.mean(out.x_train != self.ds.x_train, axis=1)
        self.assertGreater(moved.min(), 0.05)  # every image is moved
        # Independent permutations: the images' non-zero pixels land in different places.
        overlap = np.mean((out.x_train[0] > 0) & (out.x_train[1] > 0))
        self.assertLess(overlap, 0.1)

    def test_gaussian_inputs_have_the_training_sets_mean_and_variance(self):
        out = data.corrupt_inputs(self.ds, "gaussian", seed=1)
        mean, std = self.ds.x_train.mean(), self.ds.x_train.std()
        for x in (out.x_train, out.x_test):
            self.assertAlmostEqual(float(x.mean()), mean, delta=0.002)
            self.assertAlmostEqual(float(x.std()), std, delta=0.002)
        self.assertEqual(out.x_train.dtype, np.float32)
        chex.assert_shape(out.x_test, self.ds.x_test.shape)

    def test_unknown_corruption(self):
        with self.assertRaisesRegex(errors.ConfigError, "unknown input corruption"):
            data.corrupt_inputs(self.ds, "blurred", seed=0)


class NpzDatasetTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        cls.good = {
            "x_train": rng.normal(size=(60, 2, 3)).astype(np.float64),
            "y_train": np.arange(60) % 3,
            "x_test": rng.normal(size=(30, 2, 3)),
            "y_test": (np.arange(30) % 3).astype(np.float32),
        }

    def test_round_trip(self):
        ds = data.load_npz(testing.write_npz(f"{self.tmp}/good.npz", **self.good))
        np.testing.assert_array_equal(ds.x_train, self.good["x_train"].reshape(60, 6).astype(np.float32))
        np.testing.assert_array_equal(ds.y_test, self.good["y_test"].astype(np.int32))
        self.assertEqual((ds.num_classes, ds.x_train.dtype, ds.y_train.dtype), (3, np.float32, np.int32))
        config = experiment.ExperimentConfig(dataset=f"npz:{self.tmp}/good.npz", train_size=30, test_size=15)
        sub = experiment.load_dataset(config)
        self.assertEqual((sub.x_train.shape, sub.x_test.shape), ((30, 6), (15, 6)))
        np.testing.assert_array_equal(np.bincount(sub.y_train), [10, 10, 10])  # stratified, as for MNIST

    @parameterized.named_parameters(
        ("missing_key", {"y_test": None}, "lacks y_test"),
        ("lengths", {"y_train": np.arange(59) % 3}, r"y_train must be \[60\]"),
        ("item_shapes", {"x_test": np.zeros((30, 6))}, "items differ"),
        ("float_labels", {"y_train": np.full(60, 0.5)}, "not a whole number"),
        ("negative_labels", {"y_test": np.arange(30) - 1}, "negative label"),
        ("nan_inputs", {"x_train": np.full((60, 2, 3), np.nan)}, "NaN or infinite values"),
        ("text_labels", {"y_train": np.array(["a"] * 60)}, "integer class labels"),
        ("text_inputs", {"x_test": np.array([["a"]] * 30)}, "real numbers"),
        ("object_inputs", {"x_train": np.array([None] * 60, dtype=object)}, "object arrays"),
        ("empty", {"x_train": np.zeros((0, 6)), "y_train": np.zeros(0, int)}, "x_train is empty"),
    )
    def test_bad_files_are_refused(self, changes, message):
        arrays = {k: v for k, v in {**self.good, **changes}.items() if v is not None}
        path = testing.write_npz(f"{self.tmp}/bad.npz", **arrays)
        with self.assertRaisesRegex(errors.DataError, message):
            data.load_npz(path)

    def test_unreadable_and_missing_files(self):
        with open(f"{self.tmp}/broken.npz", "wb") as f:
            f.write(b"PK not a zip")
        with self.assertRaisesRegex(errors.DataError, "not a readable .npz"):
            data.load_npz(f"{self.tmp}/broken.npz")
        with self.assertRaisesRegex(errors.DataError, "no file"):
            data.load_npz(f"{self.tmp}/none.npz")
        with self.assertRaisesRegex(errors.ConfigError, "npz:PATH"):
            experiment.ExperimentConfig(dataset="npz:")


class DatasetRegistryTest(chex.TestCase):
    def test_titles_and_names(self):
        self.assertEqual(data.dataset_title("fashion_mnist"), "Fashion-MNIST")
        self.assertEqual(data.dataset_title("npz:/a/b/own.npz"), "own.npz")
        self.assertEqual(experiment.DATASETS, ("mnist", "fashion_mnist", "cifar10", "tishby"))
        with self.assertRaisesRegex(experiment.errors.ConfigError, "unknown dataset"):
            data.check_dataset_name("svhn")


if __name__ == "__main__":
    absltest.main()
