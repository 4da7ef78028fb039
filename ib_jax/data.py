"""Datasets as host numpy arrays, and the label and subset transforms of the experiments.

Everything random here takes an explicit integer seed (numpy `default_rng`), so a run's data is
fully determined by its config. Arrays move to the device in the training code.
"""

import dataclasses
import os
import pathlib
import zipfile
from collections.abc import Callable

import numpy as np

from ib_jax import cifar10, errors, mnist, tishby


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A classification task: inputs float32 [N, F], labels int32 [N]. `image_shape` (H, W, C),
    where the inputs are images: each row holds an image's pixels in H, W, C order, which the
    image models (`ib_jax.models`) read back as [H, W, C]; None for inputs without one."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    test_name: str = "test"  # "all" when the second split is every sample (IDNNs' convention)
    image_shape: tuple[int, ...] | None = None

    def replace(self, **changes) -> "Dataset":
        return dataclasses.replace(self, **changes)


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True, dataset: str = "mnist") -> Dataset:
    """MNIST (or `dataset="fashion_mnist"`), 60,000 train and 10,000 test images, pixels in
    [0, 1] flattened to 784."""
    return Dataset(
        name=dataset, num_classes=mnist.NUM_CLASSES, image_shape=(28, 28, 1), **mnist.load(data_dir, download, dataset)
    )


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """CIFAR-10, 50,000 train and 10,000 test images, pixels in [0, 1] flattened to 3,072 in
    H, W, C order."""
    return Dataset(
        name="cifar10",
        num_classes=cifar10.NUM_CLASSES,
        image_shape=cifar10.IMAGE_SHAPE,
        **cifar10.load(data_dir, download),
    )


def load_tishby(test_fraction: float = 0.2, seed: int = 0, evaluate_on_all: bool = False) -> Dataset:
    """The 12-bit task, split after a seeded shuffle (the file's order is badly unbalanced).

    The train split holds the first `round((1 - test_fraction) * 4096)` shuffled patterns
    (3,277 at 0.2, as in the reimplemented project). `test_fraction=0` puts all 4,096 patterns in
    both splits. `evaluate_on_all` keeps the training split and makes the second split all
    4,096 patterns, named "all": IDNNs trains on 80% and measures information on every sample.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise errors.ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}")
    patterns, labels = tishby.patterns_and_labels()
    x, y = patterns.astype(np.float32), labels.astype(np.int32)
    if test_fraction == 0.0:
        return Dataset("tishby", x, y, x, y, num_classes=2)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(round((1.0 - test_fraction) * len(y)))
    train, test = order[:n_train], order[n_train:]
    if evaluate_on_all:
        return Dataset("tishby", x[train], y[train], x, y, num_classes=2, test_name="all")
    return Dataset("tishby", x[train], y[train], x[test], y[test], num_classes=2)


NPZ_PREFIX = "npz:"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | os.PathLike) -> Dataset:
    """One's own data: a `.npz` with `x_train`, `y_train`, `x_test`, `y_test`. Inputs of any
    numeric dtype and item shape (the same for both splits) are flattened to float32 [N, F] as
    they are (no scaling); items of shape H x W or H x W x C are images (`image_shape`
    (H, W, 1) or (H, W, C)) for the image models; labels are integer classes 0..K-1 (integer dtype, or floats holding
    whole numbers), and K is the largest label of either split plus one.

    Raises:
      errors.DataError: a missing or unreadable file, a missing key, lengths or item shapes that
        differ, non-numeric or non-finite inputs, labels that are not whole non-negative numbers.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.DataError(f"no file {path} (--dataset npz:PATH)")
    if not zipfile.is_zipfile(path):
        raise errors.DataError(f"{path} is not a readable .npz file (not a zip archive; write it with np.savez)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        raise errors.DataError(f"{path} holds object arrays, which are not read ({e})") from None
    except Exception as e:  # pylint: disable=broad-except  # zipfile, zlib and OS errors alike
        raise errors.DataError(f"{path} is not a readable .npz file ({type(e).__name__})") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise errors.DataError(f"{path} lacks {', '.join(missing)} (it has {', '.join(arrays) or 'no arrays'})")
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 1 or len(x) == 0:
            raise errors.DataError(f"{path}: x_{split} is empty")
        if y.ndim != 1 or len(y) != len(x):
            raise errors.DataError(
                f"{path}: y_{split} must be [{len(x)}] (one label per row of x_{split}), got shape {y.shape}"
            )
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
            raise errors.DataError(f"{path}: x_{split} must be real numbers, got dtype {x.dtype}")
        x = x.reshape(len(x), -1).astype(np.float32)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise errors.DataError(f"{path}: x_{split} holds NaN or infinite values (first in row {np.argmax(bad)})")
        if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == bool):
            raise errors.DataError(f"{path}: y_{split} must be integer class labels, got dtype {y.dtype}")
        whole = np.isfinite(y) & (y == np.round(y)) if np.issubdtype(y.dtype, np.floating) else np.ones(len(y), bool)
        if not whole.all():
            raise errors.DataError(
                f"{path}: y_{split} holds a label that is not a whole number "
                f"({y[np.argmin(whole)]!r} in row {np.argmin(whole)})"
            )
        if (y < 0).any():
            raise errors.DataError(f"{path}: y_{split} holds a negative label ({y.min()!r}); classes are 0..K-1")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int32)
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise errors.DataError(
            f"{path}: x_train and x_test items differ ({arrays['x_train'].shape[1:]} and {arrays['x_test'].shape[1:]})"
        )
    num_classes = int(max(out["y_train"].max(), out["y_test"].max())) + 1
    item = tuple(int(d) for d in arrays["x_train"].shape[1:])
    image_shape = {2: (*item, 1), 3: item}.get(len(item))
    return Dataset(name=f"{NPZ_PREFIX}{path}", num_classes=num_classes, image_shape=image_shape, **out)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A data set the mains know by name: its title in figures and how to load it.
    `load(data_dir, test_fraction=, seed=, evaluate_on_all=)`; each loader takes what applies."""

    title: str
    load: Callable[..., Dataset]
    description: str


# The one registry of named data sets; one's own file is "npz:PATH" (`load_npz`).
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(mnist.TITLES["mnist"], lambda data_dir, **_: load_mnist(data_dir), "MNIST"),
    "fashion_mnist": DatasetInfo(
        mnist.TITLES["fashion_mnist"],
        lambda data_dir, **_: load_mnist(data_dir, dataset="fashion_mnist"),
        "Fashion-MNIST",
    ),
    "cifar10": DatasetInfo(
        "CIFAR-10",
        lambda data_dir, **_: load_cifar10(data_dir),
        "CIFAR-10, 32 x 32 x 3 (flattened to 3,072 inputs for the MLP)",
    ),
    "tishby": DatasetInfo(
        "12-bit task",
        lambda data_dir, test_fraction=0.2, seed=0, evaluate_on_all=False, **_: load_tishby(
            test_fraction, seed, evaluate_on_all
        ),
        "Shwartz-Ziv & Tishby's 12-bit task (embedded)",
    ),
}
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")  # what --dataset of the image mains offers by name


def check_dataset_name(name: str) -> None:
    """ConfigError unless `name` is a key of `DATASETS` or npz:PATH."""
    if name.startswith(NPZ_PREFIX):
        if not name[len(NPZ_PREFIX) :].strip():
            raise errors.ConfigError("give the file after npz: (--dataset npz:PATH)")
    elif name not in DATASETS:
        raise errors.ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} or npz:PATH")


def dataset_title(name: str) -> str:
    """A data set's title for figures: the registry's, or the file name of npz:PATH."""
    if name.startswith(NPZ_PREFIX):
        return pathlib.Path(name[len(NPZ_PREFIX) :]).name
    return DATASETS[name].title


def load_named(name: str, data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """The data set `name` (a key of `DATASETS`, or npz:PATH) with its true labels."""
    check_dataset_name(name)
    if name.startswith(NPZ_PREFIX):
        return load_npz(name[len(NPZ_PREFIX) :])
    return DATASETS[name].load(data_dir, **options)


def permute_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """Random labels as the reimplemented project makes them: one seeded permutation.

    Every class keeps its count; the labels become independent of the inputs.
    """
    return np.random.default_rng(seed).permutation(labels)


def corrupt_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """Zhang et al.'s partial corruption: each label, with probability `fraction`, is replaced
    by a class drawn uniformly from all `num_classes` (so it may keep its value).

    Unlike `permute_labels`, class counts are not kept; at fraction 1 the labels are uniform.
    """
    if not 0.0 <= fraction <= 1.0:
        raise errors.ConfigError(f"label corruption fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    replace = rng.random(labels.shape) < fraction
    random_labels = rng.integers(0, num_classes, size=labels.shape)
    return np.where(replace, random_labels, labels).astype(labels.dtype)


INPUT_CORRUPTIONS = ("shuffled_pixels", "random_pixels", "gaussian")


def corrupt_inputs(dataset: Dataset, kind: str, seed) -> Dataset:
    """Zhang et al.'s input corruptions, applied to the train and the test inputs alike:

    * `shuffled_pixels`: one random permutation of the input features, the same for every
      image of both splits.
    * `random_pixels`: an independent random permutation for each image (each image keeps its
      multiset of values).
    * `gaussian`: every feature drawn from a Gaussian with the mean and variance of all the
      training inputs (one mean, one variance for the whole data set).

    `seed` is anything `np.random.default_rng` takes. Labels are unchanged.
    """
    rng = np.random.default_rng(seed)
    x_train, x_test = dataset.x_train, dataset.x_test
    features = x_train.shape[1]
    if kind == "shuffled_pixels":
        perm = rng.permutation(features)
        return dataset.replace(x_train=x_train[:, perm], x_test=x_test[:, perm])
    if kind == "random_pixels":
        per_image = lambda x: np.take_along_axis(x, np.argsort(rng.random(x.shape), axis=1), axis=1)  # noqa: E731
        return dataset.replace(x_train=per_image(x_train), x_test=per_image(x_test))
    if kind == "gaussian":
        mean, std = float(x_train.mean(dtype=np.float64)), float(x_train.std(dtype=np.float64))
        draw = lambda x: rng.normal(mean, std, size=x.shape).astype(np.float32)  # noqa: E731
        return dataset.replace(x_train=draw(x_train), x_test=draw(x_test))
    raise errors.ConfigError(f"unknown input corruption {kind!r}; choose from {', '.join(INPUT_CORRUPTIONS)}")


def subset_indices(labels: np.ndarray, size: int, seed: int, num_classes: int) -> np.ndarray:
    """A seeded, stratified subset of `size` indices, returned in a random order.

    Stratified: each class gets `size * count_c / N` samples, rounded by largest remainder, so
    class frequencies match the full split as closely as integers allow; when `size` is at least
    the number of classes present, each of them gets at least one.
    """
    n = len(labels)
    if not 0 < size <= n:
        raise errors.ConfigError(f"subset size must be in [1, {n}], got {size}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=num_classes)
    quota = size * counts / n
    take = np.floor(quota).astype(np.int64)
    remainder_order = np.argsort(-(quota - take), kind="stable")
    take[remainder_order[: size - take.sum()]] += 1
    # Every class the split holds gets a sample when `size` allows it: rounding can leave a rare
    # class out (it then takes one from the largest share; subsets that held every class are
    # unchanged).
    present = np.flatnonzero(counts)
    if size >= len(present):
        for c in present[take[present] == 0]:
            take[np.argmax(take)] -= 1
            take[c] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[: take[c]] for c in range(num_classes)]
    return rng.permutation(np.concatenate(chosen))


def prepare(
    dataset: Dataset,
    *,
    train_size: int = 0,
    test_size: int = 0,
    random_labels: bool = False,
    label_corruption: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Applies the experiment's data options: subsets (0 = all), then label randomisation.

    The subsets are drawn before the labels are randomised (stratified on the true labels);
    `random_labels` permutes the training labels; `label_corruption` replaces a fraction of them.
    The test labels are never changed.
    """
    if random_labels and label_corruption > 0.0:
        raise errors.ConfigError("choose either random_labels (a permutation) or label_corruption, not both")
    if train_size:
        idx = subset_indices(dataset.y_train, train_size, seed, dataset.num_classes)
        dataset = dataset.replace(x_train=dataset.x_train[idx], y_train=dataset.y_train[idx])
    if test_size:
        idx = subset_indices(dataset.y_test, test_size, seed + 1, dataset.num_classes)
        dataset = dataset.replace(x_test=dataset.x_test[idx], y_test=dataset.y_test[idx])
    y = randomize_labels(dataset.y_train, dataset.num_classes, random_labels, label_corruption, seed)
    return dataset.replace(y_train=y)


def randomize_labels(
    labels: np.ndarray, num_classes: int, random_labels: bool, label_corruption: float, seed
) -> np.ndarray:
    """`permute_labels` if `random_labels`, else `corrupt_labels` if `label_corruption` > 0, else
    the labels unchanged. `seed` is anything `np.random.default_rng` takes."""
    if random_labels:
        return permute_labels(labels, seed)
    if label_corruption > 0.0:
        return corrupt_labels(labels, label_corruption, num_classes, seed)
    return labels
