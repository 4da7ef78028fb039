"""The tidy table of a run: one row per run row (condition, seed) x split x measured epoch x
layer x estimator, as a numpy structured array (`records`; `results.to_records` reads a folder,
`results.to_dataframe` makes it a pandas DataFrame) or a CSV file (`write_csv`, what
`experiments.compare --csv` writes)."""

import os
from collections.abc import Mapping, Sequence

import numpy as np

from ib_jax import outcome, results

# The columns, in order, with their numpy types.
RECORD_FIELDS = (
    ("run", "U256"),
    ("row", np.int64),
    ("condition", "U32"),
    ("corruption", np.float64),
    ("seed", np.int64),
    ("split", "U8"),
    ("epoch", np.int64),
    ("layer", np.int64),
    ("layer_name", "U64"),
    ("width", np.int64),
    ("estimator", "U32"),
    ("i_xt", np.float64),
    ("i_ty", np.float64),
    ("saturated_xt", bool),
    ("saturated_ty", bool),
    ("loss", np.float64),
    ("accuracy", np.float64),
    ("n", np.int64),
    ("h_y", np.float64),
    ("held_out_accuracy", np.float64),  # the accuracy of a probe estimator's held-out probes; NaN for others
    # Since confidence (`--bootstrap`, `--null_permutations`): NaN (False) where not measured.
    ("i_xt_se", np.float64),
    ("i_ty_se", np.float64),
    ("i_ty_null_mean", np.float64),
    ("i_ty_null_p95", np.float64),
    ("not_above_null", bool),
)


# The confidence columns: (quantity, key suffix) of the results keys they come from.
_CONFIDENCE = {
    "i_xt_se": ("i_xt", "_se"),
    "i_ty_se": ("i_ty", "_se"),
    "i_ty_null_mean": ("i_ty", "_null_mean"),
    "i_ty_null_p95": ("i_ty", "_null_p95"),
    "not_above_null": ("i_ty", "_not_above_null"),
}


def _metric_at(res: Mapping[str, np.ndarray], key: str, epochs: np.ndarray) -> np.ndarray:
    """[R, E] a metric of each row at each measured epoch: the network entering epoch e, or the
    final network at the run's last epoch; NaN where the run has neither."""
    curve = np.asarray(res[key], np.float64)  # [R, T]
    rows, trained = curve.shape
    final = np.asarray(res[f"final_{key}"], np.float64) if f"final_{key}" in res else np.full(rows, np.nan)
    padded = np.concatenate([curve, final[:, None]], axis=1)  # epoch T: the final network
    return np.where(epochs <= trained, padded[:, np.minimum(epochs, trained)], np.nan)


def records(res: Mapping[str, np.ndarray], run: str = "") -> np.ndarray:
    """The tidy table of one run's results (`RECORD_FIELDS`, a numpy structured array): a row
    per run row (condition, seed) x split x measured epoch x layer x estimator, with I(X;T) and
    I(T;Y) in bits (each estimator's own: NaN for the I(X;T) of the probe), whether each sits at
    its ceiling (`saturation`), the loss and accuracy of that split at that epoch (the final
    network's at the last epoch), a probe's held-out accuracy, and where measured the bootstrap
    standard errors and the permutation null."""
    names = results.estimator_names(res)
    epochs = np.asarray(res["mi_epochs"], np.int64)
    rows, num_epochs, num_layers = np.asarray(res["i_xt_train"]).shape
    widths = np.asarray(res["layer_widths"], np.int64)
    layer_names = (
        [str(n) for n in res["layer_names"]] if "layer_names" in res else [f"layer {i + 1}" for i in range(num_layers)]
    )
    pairs = (
        [(str(c), float(p)) for c, p in zip(res["condition"], res["corruption"])]
        if "condition" in res
        else [("true", 0.0)] * rows
    )
    h_y_train = (
        np.asarray(res["h_y_train_rows"], np.float64)
        if "h_y_train_rows" in res
        else np.full(rows, float(res["h_y_train"]))
    )
    shape = (len(names), rows, 2, num_epochs, num_layers)  # estimator, row, split, epoch, layer
    table = np.zeros(int(np.prod(shape)), dtype=list(RECORD_FIELDS))

    def put(field, values_along, axis):
        values = np.asarray(values_along)
        index = [None] * len(shape)
        index[axis] = slice(None)
        table[field] = np.broadcast_to(values[tuple(index)], shape).ravel()

    table["run"] = run
    put("row", np.arange(rows), 1)
    put("condition", [c for c, _ in pairs], 1)
    put("corruption", [p for _, p in pairs], 1)
    put("seed", np.asarray(res["seed"] if "seed" in res else res["seeds"]), 1)
    put("split", ["train", "test"], 2)
    put("epoch", epochs, 3)
    put("layer", np.arange(1, num_layers + 1), 4)
    put("layer_name", layer_names, 4)
    put("width", widths, 4)
    put("estimator", names, 0)
    put("n", [int(res["n_train"]), int(res["n_test"])], 2)
    i_xt, i_ty, sat_xt, sat_ty, decoded = [], [], [], [], []
    sure = {field: [] for field in _CONFIDENCE}
    for name in names:
        for field, (quantity, suffix) in _CONFIDENCE.items():  # [R, 2, E, L] from E.<quantity>_<split><suffix>
            keys = [f"{name}.{quantity}_{split}{suffix}" for split in ("train", "test")]
            missing = False if field == "not_above_null" else np.nan
            values = np.stack([np.asarray(res[k]) for k in keys], 1) if keys[0] in res else missing
            sure[field].append(np.broadcast_to(values, (rows, 2, num_epochs, num_layers)))
        own = {k: res[f"{name}.{k}"] if f"{name}.{k}" in res else res[k] for k in results.MI_KEYS}  # never paired
        info = np.stack([np.asarray(own[k], np.float64) for k in results.MI_KEYS])  # [4, R, E, L]
        keys = [f"{name}.accuracy_{split}" for split in ("train", "test")]
        accuracy = np.stack([np.asarray(res[k], np.float64) for k in keys], 1) if keys[0] in res else np.nan
        decoded.append(np.broadcast_to(accuracy, (rows, 2, num_epochs, num_layers)))
        flags = outcome.saturated(res, name)
        i_xt.append(info[[0, 2]].transpose(1, 0, 2, 3))  # [R, 2, E, L]
        i_ty.append(info[[1, 3]].transpose(1, 0, 2, 3))
        sat_xt.append(np.broadcast_to(flags[:, [0, 2], None, :], (rows, 2, num_epochs, num_layers)))
        sat_ty.append(np.broadcast_to(flags[:, [1, 3], None, :], (rows, 2, num_epochs, num_layers)))
    table["i_xt"], table["i_ty"] = np.stack(i_xt).ravel(), np.stack(i_ty).ravel()
    table["saturated_xt"], table["saturated_ty"] = np.stack(sat_xt).ravel(), np.stack(sat_ty).ravel()
    table["held_out_accuracy"] = np.stack(decoded).ravel()
    for field, values in sure.items():
        table[field] = np.stack(values).ravel()
    for field in ("loss", "accuracy"):
        per_split = np.stack([_metric_at(res, f"{split}_{field}", epochs) for split in ("train", "test")], axis=1)
        table[field] = np.broadcast_to(per_split[None, :, :, :, None], shape).ravel()
    h_y = np.stack([h_y_train, np.full(rows, float(res["h_y_test"]))], axis=1)  # [R, 2]
    table["h_y"] = np.broadcast_to(h_y[None, :, :, None, None], shape).ravel()
    return table


def write_csv(path: str | os.PathLike, tables: Sequence[np.ndarray]) -> None:
    """The tidy tables (`records`) of several runs as one CSV file with a header, atomically."""
    import csv  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([name for name, _ in RECORD_FIELDS])
    for table in tables:
        writer.writerows(table.tolist())
    results.atomic_write(path, lambda f: f.write(text.getvalue().encode()))
