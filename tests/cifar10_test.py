"""Tests of reading CIFAR-10's python batches, and of their errors."""

import pathlib
import pickle
import shutil
import sys
import tempfile
from unittest import mock

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import cifar10, data, errors, results
from tests import testing


class Cifar10Test(chex.TestCase):
    """CIFAR-10 from small synthetic batches in torchvision's layout."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.rng = np.random.default_rng(0)

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
        # The file's red, green and blue planes, as the rows of an H x W x C image.
        planes = batches["data_batch_2"][b"data"][5].reshape(3, 32, 32)
        np.testing.assert_allclose(ds.x_train[25].reshape(32, 32, 3), planes.transpose(1, 2, 0) / 255.0, rtol=1e-6)
        self.assertEqual(ds.image_shape, (32, 32, 3))
        np.testing.assert_array_equal(ds.y_test, batches["test_batch"][b"labels"])
        self.assertEqual((ds.x_train.dtype, ds.y_train.dtype, ds.num_classes), (np.float32, np.int32, 10))

    def test_a_cnn_trains_on_cifar10_files_in_the_main(self):
        self._write_cifar()
        out = pathlib.Path(self.tmp) / "run"
        args = ["--dataset=cifar10", "--model=cnn", "--channels=2", "--hidden=4", f"--data_dir={self.tmp}"]
        args += ["--train_size=20", "--test_size=20", "--epochs=2", "--mi_every=1", "--convergence=none"]
        proc = testing.run_main("experiments.mnist", *args, "--plot=false", f"--output_dir={out}")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(out)
        self.assertEqual(
            (list(res["layer_names"]), list(res["layer_widths"])), (["conv1", "dense1", "logits"], [512, 4, 10])
        )
        self.assertIn("CIFAR-10", proc.stdout)

    def test_cifar10_errors(self):
        with self.assertRaisesRegex(errors.DataError, "CIFAR-10 files missing"):
            data.load_cifar10(self.tmp, download=False)
        # Without torchvision, the advice names the folder the loader reads (it named CIFAR10/raw/).
        with mock.patch.dict(sys.modules, {"torchvision": None}):
            with self.assertRaisesRegex(errors.DataError, "with the files in DIR/cifar-10-batches-py/$"):
                data.load_cifar10(self.tmp, download=True)
        where, _ = self._write_cifar()
        (where / "data_batch_3").write_bytes(b"garbage")
        with self.assertRaisesRegex(errors.DataError, "data_batch_3 is not a CIFAR-10 batch"):
            data.load_cifar10(self.tmp, download=False)
        (where / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
        with self.assertRaisesRegex(errors.DataError, "shape"):
            data.load_cifar10(self.tmp, download=False)


if __name__ == "__main__":
    absltest.main()
