"""MNIST and Fashion-MNIST from their four IDX files, read with numpy and gzip (torch is not
imported).

The files are looked for in `<data_dir>/MNIST/raw/` or `<data_dir>/FashionMNIST/raw/`
(torchvision's layouts; both use the same file names and format). When they are missing,
torchvision downloads them (md5-checked); it is imported only then, because the PyPI
torchvision wheel may fail to import beside a CPU-only torch.
"""

import gzip
import os
import pathlib
import socket

import numpy as np

from ib_jax import errors

NUM_CLASSES = 10
IMAGE_SIZE = 28 * 28
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_COUNTS = {"train": 60_000, "test": 10_000}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
DOWNLOAD_TIMEOUT_S = 20.0


def default_data_dir() -> pathlib.Path:
    """`$IB_JAX_DATA`, else `$XDG_CACHE_HOME/ib_jax`, else `~/.cache/ib_jax`."""
    if "IB_JAX_DATA" in os.environ:
        return pathlib.Path(os.environ["IB_JAX_DATA"])
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "ib_jax"


FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision's folder and class names
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def raw_dir(data_dir: str | os.PathLike, dataset: str = "mnist") -> pathlib.Path:
    return pathlib.Path(data_dir) / FOLDERS[dataset] / "raw"


def _read_idx(path: pathlib.Path, magic: int, count: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """Reads one gzipped IDX file and checks its header and length."""
    header_len = 4 * (2 + len(item_shape))
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError.
        raise errors.DataError(f"{path} is not a readable gzip file ({e}); delete it and retry") from None
    header = np.frombuffer(raw[:header_len], dtype=">i4")
    expected = (magic, count, *item_shape)
    if len(raw) < header_len or tuple(int(v) for v in header) != expected:
        raise errors.DataError(f"{path} has an unexpected IDX header {header.tolist()} (expected {list(expected)})")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header_len)
    if body.size != count * int(np.prod(item_shape, dtype=np.int64)):
        raise errors.DataError(f"{path} is truncated or too long: {body.size} bytes of data after the header")
    return body.reshape((count, *item_shape))


def torchvision_download(data_dir: pathlib.Path, class_name: str, what: str, files_in: str) -> None:
    """Fetches a data set with `torchvision.datasets.<class_name>` (both splits), with a socket
    timeout so an offline machine fails fast; `what` ("MNIST files missing (...) in DIR") starts
    the one-line error, and `files_in` is the folder under --data_dir that the loader reads
    ("MNIST/raw", "cifar-10-batches-py")."""
    try:
        import torchvision  # pylint: disable=g-import-not-at-top
    except Exception as e:  # pylint: disable=broad-except  # any import failure means: no downloader.
        raise errors.DataError(
            f"{what}, and torchvision cannot be imported to download them ({type(e).__name__}): run "
            "`pip install -r requirements-download.txt` (or `pip install '.[download]'`), or pass --data_dir DIR "
            f"with the files in DIR/{files_in}/"
        ) from None
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        source = getattr(torchvision.datasets, class_name)
        source(root=str(data_dir), train=True, download=True)
        source(root=str(data_dir), train=False, download=True)
    except Exception as e:  # pylint: disable=broad-except  # network errors come in many types.
        raise errors.DataError(
            f"{what} and the download failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "put the files there or pass --data_dir"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def load(
    data_dir: str | os.PathLike | None = None, download: bool = True, dataset: str = "mnist"
) -> dict[str, np.ndarray]:
    """Loads MNIST or Fashion-MNIST: images float32 [N, 784] in [0, 1], labels int32 [N].

    Args:
      data_dir: folder holding `MNIST/raw/*.gz` (`FashionMNIST/raw/*.gz`); `default_data_dir()`
        when None.
      download: fetch missing files with torchvision.
      dataset: "mnist" or "fashion_mnist".

    Returns:
      A dict with `x_train` [60000, 784], `y_train` [60000], `x_test` [10000, 784], `y_test` [10000].

    Raises:
      errors.DataError: files missing (and not downloadable), truncated or corrupt.
    """
    data_dir = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
    where = raw_dir(data_dir, dataset)
    if not all((where / name).is_file() for name in FILES.values()):
        if not download:
            raise errors.DataError(f"{TITLES[dataset]} files missing in {where}: expected {', '.join(FILES.values())}")
        what = f"{TITLES[dataset]} files missing ({', '.join(FILES.values())}) in {where}"
        torchvision_download(data_dir, FOLDERS[dataset], what, f"{FOLDERS[dataset]}/raw")
    out = {}
    for split, count in _COUNTS.items():
        images = _read_idx(where / FILES[f"{split}_images"], _IMAGES_MAGIC, count, (28, 28))
        labels = _read_idx(where / FILES[f"{split}_labels"], _LABELS_MAGIC, count, ())
        if labels.max() >= NUM_CLASSES:
            raise errors.DataError(f"{where / FILES[f'{split}_labels']} holds a label above 9")
        out[f"x_{split}"] = images.reshape(count, IMAGE_SIZE).astype(np.float32) / 255.0
        out[f"y_{split}"] = labels.astype(np.int32)
    return out
