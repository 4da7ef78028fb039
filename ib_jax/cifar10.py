"""CIFAR-10 from torchvision's folder of pickled batches, read with numpy and pickle.

The files are looked for in `<data_dir>/cifar-10-batches-py/` (`data_batch_1` ... `data_batch_5`,
`test_batch`: each a pickled dict with `data`, uint8 [10000, 3072] (the red, green and blue
planes of a 32 x 32 image), and `labels`, 10,000 integers). Missing files are downloaded with
torchvision, imported only then.
"""

import os
import pathlib
import pickle

import numpy as np

from ib_jax import errors, mnist

NUM_CLASSES = 10
FEATURES = 3 * 32 * 32
IMAGE_SHAPE = (32, 32, 3)  # H, W, C: the order of each row's pixels after `load`
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)


def _read_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise errors.DataError(f"{path} is not a CIFAR-10 batch ({type(e).__name__}); delete it and retry") from None
    if images.ndim != 2 or images.shape[1] != FEATURES or labels.shape != (images.shape[0],):
        raise errors.DataError(f"{path} has images of shape {images.shape} and {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise errors.DataError(f"{path} holds a label outside 0..9")
    return images, labels


def load(data_dir: str | os.PathLike | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """CIFAR-10: images float32 [N, 3072] in [0, 1], each row an image's pixels in H, W, C
    order (the file's red, green and blue planes interleaved, as `IMAGE_SHAPE` reads them),
    labels int32 [N]; 50,000 train and 10,000 test images."""
    data_dir = pathlib.Path(data_dir) if data_dir is not None else mnist.default_data_dir()
    where = data_dir / FOLDER
    if not all((where / name).is_file() for name in TRAIN_FILES + TEST_FILES):
        if not download:
            raise errors.DataError(f"CIFAR-10 files missing in {where}: expected {', '.join(TRAIN_FILES + TEST_FILES)}")
        mnist.torchvision_download(data_dir, "CIFAR10", f"CIFAR-10 files missing in {where}", FOLDER)
    out = {}
    for split, names in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        batches = [_read_batch(where / name) for name in names]
        planes = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)  # the file's C, H, W
        out[f"x_{split}"] = planes.transpose(0, 2, 3, 1).reshape(-1, FEATURES).astype(np.float32) / 255.0
        out[f"y_{split}"] = np.concatenate([b[1] for b in batches]).astype(np.int32)
    return out
