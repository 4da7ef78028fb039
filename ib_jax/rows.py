"""The rows of a run: conditions x seeds, condition-major, each row one network with its own
seed, training labels and inputs.

A condition is "true", "labels:p" (Zhang et al.'s partial corruption with probability p),
"permuted" (one permutation of the labels) or an input corruption from
`data.INPUT_CORRUPTIONS`. The inputs live in a bank of the distinct input variants (the clean
inputs, then each corruption the run uses), stored once and indexed by each row.
"""

import dataclasses

import numpy as np

from ib_jax import data, errors

LABEL_CONDITIONS = ("true", "labels", "permuted")
CONDITIONS = LABEL_CONDITIONS + data.INPUT_CORRUPTIONS


def parse_condition(text: str) -> tuple[str, float]:
    """ "labels:0.2" -> ("labels", 0.2); "true", "permuted", "gaussian", ... -> (name, 0.0)."""
    name, colon, level = str(text).partition(":")
    if name not in CONDITIONS:
        raise errors.ConfigError(f"unknown condition {text!r}; choose from {', '.join(CONDITIONS)} (labels:p)")
    if name != "labels":
        if colon:
            raise errors.ConfigError(f"condition {name} takes no level, got {text!r}")
        return name, 0.0
    try:
        p = float(level)
    except ValueError:
        raise errors.ConfigError(f"condition labels:p needs a probability p, got {text!r}") from None
    if not 0.0 < p <= 1.0:
        raise errors.ConfigError(f"label corruption must be in (0, 1], got {text!r}")
    return name, p


def conditions_of(config) -> tuple[str, ...]:
    """The run's conditions: `config.conditions`, else the one its label settings describe."""
    if config.conditions:
        return config.conditions
    if config.random_labels:
        return ("permuted",)
    if config.label_corruption:
        return (f"labels:{config.label_corruption}",)
    return ("true",)


def entropy_bits(labels: np.ndarray) -> float:
    """H(Y) in bits of integer labels, from their frequencies."""
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one class gives 0.0, not -0.0


def row_labels(config, dataset: data.Dataset, condition: str, seed: int) -> np.ndarray:
    """The training labels of one row: the dataset's, or randomised as its condition says,
    drawn from data_seed (shared by the seeds), or from (data_seed, seed) with
    `per_seed_labels`."""
    name, p = parse_condition(condition)
    rng_seed = [config.data_seed, seed] if config.per_seed_labels else config.data_seed
    return data.randomize_labels(dataset.y_train, dataset.num_classes, name == "permuted", p, rng_seed)


def seed_labels(config, dataset: data.Dataset, seed: int) -> np.ndarray:
    """The training labels of one seed of a single-condition run."""
    return row_labels(config, dataset, conditions_of(config)[0], seed)


@dataclasses.dataclass(frozen=True)
class Rows:
    """A run's rows on the host. `condition` and `seed` describe the R real rows; `per_row`
    holds the arrays of the padded slots (`order` from the layout): "seed", "labels" [N] and
    "inputs" (the index into the bank)."""

    condition: tuple[str, ...]
    seed: np.ndarray  # [R] int64
    per_row: dict[str, np.ndarray]  # [padded, ...] int32
    h_y_train_rows: np.ndarray  # [R] H(Y) of each row's training labels, bits
    x_bank: np.ndarray  # [V, N, F] the distinct training inputs: clean, then each corruption used
    x_test_bank: np.ndarray  # [V, N_test, F]
    shared_labels: bool  # one labelling for every row: the estimators take labels [N]
    # The samples the information is measured on (`config.mi_subset`): sorted indices, or None (all).
    train_subset: np.ndarray | None = None
    test_subset: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return len(self.seed)

    @property
    def h_y_train(self) -> float:
        return float(self.h_y_train_rows.mean())


def measured_subset(labels: np.ndarray, size: int, seed: int, num_classes: int) -> np.ndarray | None:
    """The sorted indices of a fixed, stratified subset of `size` samples (by the true labels),
    or None when `size` is 0 or not below the split's size (all samples)."""
    if not size or size >= len(labels):
        return None
    return np.sort(data.subset_indices(labels, size, seed, num_classes))


def build(config, dataset: data.Dataset, order: np.ndarray | None = None) -> Rows:
    """The rows of `config` on `dataset`; `order` [padded] names the row of each padded slot
    (default: no padding)."""
    conditions = conditions_of(config)
    seeds = range(config.seed, config.seed + config.num_seeds)
    row_condition = tuple(c for c in conditions for _ in seeds)  # condition-major
    row_seed = np.array([s for _ in conditions for s in seeds], np.int64)
    order = np.arange(len(row_seed)) if order is None else np.asarray(order)
    labels = np.stack([row_labels(config, dataset, row_condition[r], int(row_seed[r])) for r in order])
    kinds = [k for k in data.INPUT_CORRUPTIONS if k in conditions]
    variants = [dataset] + [data.corrupt_inputs(dataset, k, config.data_seed) for k in kinds]
    inputs = np.array([kinds.index(c) + 1 if c in kinds else 0 for c in row_condition])
    per_row = {
        "seed": row_seed[order].astype(np.int32),
        "labels": labels.astype(np.int32),
        "inputs": inputs[order].astype(np.int32),
    }
    size, k = config.mi_subset, dataset.num_classes
    train_subset = measured_subset(dataset.y_train, size, config.data_seed + 2, k)
    test_subset = measured_subset(dataset.y_test, size, config.data_seed + 3, k)
    measured = labels if train_subset is None else labels[:, train_subset]
    return Rows(
        condition=row_condition,
        seed=row_seed,
        per_row=per_row,
        h_y_train_rows=np.array([entropy_bits(y) for y in measured[: len(row_seed)]]),
        x_bank=np.stack([v.x_train for v in variants]),
        x_test_bank=np.stack([v.x_test for v in variants]),
        shared_labels=len(conditions) == 1 and not config.per_seed_labels,
        train_subset=train_subset,
        test_subset=test_subset,
    )
