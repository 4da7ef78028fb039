"""Tests of reading MNIST and Fashion-MNIST files, and of their errors."""

import functools
import gzip
import http.server
import shutil
import sys
import tempfile
import threading
from unittest import mock

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import data, errors, mnist
from tests import testing


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
            with self.assertRaises(errors.DataError) as cm:
                mnist.load(self.tmp, download=True)
        message = str(cm.exception)
        self.assertIn("torchvision cannot be imported", message)
        self.assertIn("pip install -r requirements-download.txt", message)  # the exact command
        self.assertIn(f"--data_dir DIR with the files in DIR/{mnist.FOLDERS['mnist']}/raw/", message)
        self.assertNotIn("\n", message)

    def test_download_from_a_local_mirror(self):
        """The download path end to end: torchvision fetches the four files from a local HTTP
        server (a mirror holding the test data), and they load as the offline copy does."""
        try:
            import torchvision  # pylint: disable=g-import-not-at-top
        except Exception as e:  # pylint: disable=broad-except  # a CPU torch beside the PyPI torchvision fails
            self.skipTest(f"torchvision cannot be imported here ({type(e).__name__}); the download needs it")
        served = str(mnist.raw_dir(testing.DATA_DIR))
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=served)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        mirror = f"http://127.0.0.1:{server.server_address[1]}/"
        with mock.patch.object(torchvision.datasets.MNIST, "mirrors", [mirror]):
            fetched = mnist.load(self.tmp, download=True)
        offline = mnist.load(testing.DATA_DIR, download=False)
        for key in offline:
            np.testing.assert_array_equal(fetched[key], offline[key], err_msg=key)

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


class FashionMnistTest(chex.TestCase):
    """Fashion-MNIST from small synthetic files in torchvision's layout."""

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


if __name__ == "__main__":
    absltest.main()
