"""Tests of MNIST loading, label randomisation, subsets and the 12-bit task."""

import gzip
import pathlib
import pickle
import shutil
import sys
import tempfile
from unittest import mock

import chex
import numpy as np
import scipy.io
from absl.testing import absltest, parameterized

from ib_jax import cifar10, data, errors, mnist, tishby
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


class MnistErrorsTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        testing.require_data()
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.raw = mnist.raw_dir(self.tmp)

    def _copy_files(self):
        shutil.copytree(mnist.raw_dir(testing.DATA_DIR), self.raw)

    def test_missing_offline_names_files_and_place(self):
        with self.assertRaises(errors.DataError) as cm:
            mnist.load(self.tmp, download=False)
        message = str(cm.exception)
        self.assertIn("train-images-idx3-ubyte.gz", message)
        self.assertIn(str(self.raw), message)
        self.assertNotIn("\n", message)

    def test_missing_without_downloader_is_clear(self):
        with mock.patch.dict(sys.modules, {"torchvision": None}):  # import torchvision -> ImportError
            with self.assertRaisesRegex(errors.DataError, "torchvision cannot be imported"):
                mnist.load(self.tmp, download=True)

    def test_truncated_file_is_named(self):
        self._copy_files()
        path = self.raw / mnist.FILES["test_labels"]
        with gzip.open(path, "rb") as f:
            body = f.read()
        path.chmod(0o644)
        with gzip.open(path, "wb") as f:
            f.write(body[:-10])
        with self.assertRaisesRegex(errors.DataError, "t10k-labels-idx1-ubyte.gz is truncated"):
            mnist.load(self.tmp, download=False)

    def test_corrupt_gzip_is_named(self):
        self._copy_files()
        path = self.raw / mnist.FILES["train_labels"]
        path.chmod(0o644)
        path.write_bytes(b"not a gzip file")
        with self.assertRaisesRegex(errors.DataError, "train-labels-idx1-ubyte.gz is not a readable gzip"):
            mnist.load(self.tmp, download=False)


def write_idx(path, array, magic):
    """A gzipped IDX file as torchvision lays it out (big-endian header, uint8 body)."""
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


class OtherDatasetsTest(chex.TestCase):
    """Fashion-MNIST and CIFAR-10 from small synthetic files in torchvision's layouts."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.rng = np.random.default_rng(0)

    def test_fashion_mnist_reads_its_folder(self):
        raw = mnist.raw_dir(self.tmp, "fashion_mnist")
        raw.mkdir(parents=True)
        images = {s: self.rng.integers(0, 256, (n, 28, 28)) for s, n in (("train", 60000), ("test", 10000))}
        labels = {s: self.rng.integers(0, 10, len(images[s])) for s in images}
        for split in ("train", "test"):
            write_idx(raw / mnist.FILES[f"{split}_images"], images[split], 2051)
            write_idx(raw / mnist.FILES[f"{split}_labels"], labels[split], 2049)
        ds = data.load_mnist(self.tmp, download=False, dataset="fashion_mnist")
        self.assertEqual(ds.name, "fashion_mnist")
        np.testing.assert_allclose(ds.x_test[3], images["test"][3].reshape(-1) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ds.y_train, labels["train"])
        with self.assertRaisesRegex(errors.DataError, "MNIST files missing"):  # MNIST/raw is another folder
            data.load_mnist(self.tmp, download=False)

    def _write_cifar(self, n=20):
        where = pathlib.Path(self.tmp) / cifar10.FOLDER
        where.mkdir()
        batches = {}
        for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
            batch = {
                b"data": self.rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                b"labels": list(self.rng.integers(0, 10, n)),
            }
            (where / name).write_bytes(pickle.dumps(batch))
            batches[name] = batch
        return where, batches

    def test_cifar10_batches(self):
        _, batches = self._write_cifar()
        ds = data.load_cifar10(self.tmp, download=False)
        chex.assert_shape(ds.x_train, (100, 3072))
        chex.assert_shape(ds.x_test, (20, 3072))
        np.testing.assert_allclose(ds.x_train[25], batches["data_batch_2"][b"data"][5] / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ds.y_test, batches["test_batch"][b"labels"])
        self.assertEqual((ds.x_train.dtype, ds.y_train.dtype, ds.num_classes), (np.float32, np.int32, 10))

    def test_cifar10_errors(self):
        with self.assertRaisesRegex(errors.DataError, "CIFAR-10 files missing"):
            data.load_cifar10(self.tmp, download=False)
        where, _ = self._write_cifar()
        (where / "data_batch_3").write_bytes(b"garbage")
        with self.assertRaisesRegex(errors.DataError, "data_batch_3 is not a CIFAR-10 batch"):
            data.load_cifar10(self.tmp, download=False)
        (where / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
        with self.assertRaisesRegex(errors.DataError, "shape"):
            data.load_cifar10(self.tmp, download=False)


class TishbyTest(chex.TestCase):
    def test_embedded_data_equals_var_u_mat(self):
        testing.require_data()
        mat = scipy.io.loadmat(testing.VAR_U_MAT)
        patterns, labels = tishby.patterns_and_labels()
        np.testing.assert_array_equal(patterns, mat["F"])
        np.testing.assert_array_equal(labels, mat["y"][0])

    def test_known_statistics(self):
        _, labels = tishby.patterns_and_labels()
        self.assertEqual(labels.sum(), 2118)
        self.assertAlmostEqual(_entropy_bits(labels), 0.999157, places=5)

    def test_split_is_shuffled_seeded_and_complete(self):
        ds = data.load_tishby(test_fraction=0.2, seed=0)
        chex.assert_shape(ds.x_train, (3277, 12))
        chex.assert_shape(ds.x_test, (819, 12))
        both = np.concatenate([ds.x_train, ds.x_test]).astype(int)
        codes = both @ (1 << np.arange(11, -1, -1))
        np.testing.assert_array_equal(np.sort(codes), np.arange(4096))
        # Shuffled: both splits near the overall p(y=1) = 0.517 (unshuffled: 0.437 vs 0.836).
        self.assertAlmostEqual(ds.y_train.mean(), 0.517, delta=0.03)
        self.assertAlmostEqual(ds.y_test.mean(), 0.517, delta=0.05)
        np.testing.assert_array_equal(ds.y_train, data.load_tishby(0.2, seed=0).y_train)
        self.assertFalse(np.array_equal(ds.y_train, data.load_tishby(0.2, seed=1).y_train))

    def test_no_split_uses_all_patterns_twice(self):
        ds = data.load_tishby(test_fraction=0.0)
        chex.assert_shape(ds.x_train, (4096, 12))
        np.testing.assert_array_equal(ds.y_train, ds.y_test)

    def test_bad_fraction(self):
        with self.assertRaisesRegex(errors.ConfigError, "test_fraction"):
            data.load_tishby(test_fraction=1.0)


if __name__ == "__main__":
    absltest.main()
