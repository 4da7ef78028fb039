"""Results and checkpoints on disk, always written atomically (temporary file, fsync, rename).

`results.npz` layout (a contract other tools read):
  mi_epochs [E]                       epochs at which information was measured
  i_xt_train, i_ty_train [S, E, L]    bits, on the training split
  i_xt_test, i_ty_test [S, E, L]      bits, on the test split
  train_loss, train_accuracy [S, T]   per epoch run (the network entering that epoch)
  test_loss, test_accuracy [S, T]
  layer_widths [L]
plus `seeds` [S], `h_y_train`, `h_y_test`, `n_train`, `n_test` (for the figures' reference
lines) and `complete` (False while a run is in progress or stopped early).

Rows (since the memorization sweep): the leading axis S is a row axis, one network each; a
run without conditions has one row per seed, as before. `seed` [R] (= `seeds`), `condition`
[R] ("true", "labels", "permuted", "shuffled_pixels", "random_pixels", "gaussian"),
`corruption` [R] (the label corruption p, 0 otherwise), `epochs_to_fit` [R] (the first epoch
whose training accuracy reaches `fit_threshold`, -1 for never), `h_y_train_rows` [R].

`contract` (2 since the estimator suite; absent, 1, before): a folder written by a newer
contract is refused with one line.

Several estimators (since the estimator suite): `estimators` [M] lists their names in order;
every estimator E writes `E.i_xt_train`, `E.i_ty_train`, `E.i_xt_test`, `E.i_ty_test`
[S, E, L], and the unprefixed keys above are the first estimator's. Folders written before
hold only the unprefixed keys, which were the fixed binning's: they load as estimator
"binned".

Since first contact II (optional: `diverged` and `saturated` derive them for older folders):
`epochs` (the epochs the run was asked for; the mains only), `num_classes`, `diverged_epoch` [R]
(the first epoch whose training loss is not finite, -1 for none), and per estimator
`E.saturated` [R, 4, L] (bool, in the order of `MI_KEYS`: the value within `SATURATION_BITS` of
its ceiling, log2 N for I(X;T) and H(Y) for I(T;Y), in most measured epochs).
"""

import dataclasses
import json
import os
import pathlib
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ib_jax import errors

RESULTS = "results.npz"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.msgpack"
FINAL_STATE = "final_state.msgpack"  # the finished run's training state, from which a larger --epochs continues
SUMMARY = "summary.json"
CONTRACT = 2  # 1: before `contract` was written; 2: estimators, rows, gradient statistics
MI_KEYS = ("i_xt_train", "i_ty_train", "i_xt_test", "i_ty_test")
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
GRADIENT_KEYS = ("grad_mean_norm", "grad_std_norm", "weight_norm")
REQUIRED = (
    "mi_epochs",
    "i_xt_train",
    "i_ty_train",
    "i_xt_test",
    "i_ty_test",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "layer_widths",
)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Calls `write(file)` on a temporary file beside `path`, then renames it over `path`:
    readers see the old file or the new one, never a partial one."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary file would be (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


SATURATION_BITS = 0.05  # a value this close to its ceiling (log2 N, H(Y)) counts as at the ceiling


def diverged_epochs(train_loss_RxT: np.ndarray) -> np.ndarray:
    """[R] the first epoch whose training loss is NaN or infinite, -1 where every one is finite."""
    bad = ~np.isfinite(np.asarray(train_loss_RxT, np.float64))
    return np.where(bad.any(axis=1), np.argmax(bad, axis=1), -1)


def saturation(information_4xRxExL: np.ndarray, n_train: int, n_test: int, h_y_train_R, h_y_test) -> np.ndarray:
    """[R, 4, L] bool, in the order of `MI_KEYS`: whether each row's value sits within
    `SATURATION_BITS` of its ceiling (log2 N of the split for I(X;T); the row's H(Y) of the split
    for I(T;Y)) in more than half of its measured epochs with a finite value. I(X;T) at log2 N
    means every sample has a cell of its own: the estimator cannot resolve the layer, and a
    plug-in I(T;Y) then equals H(Y) for any labels."""
    info = np.asarray(information_4xRxExL, np.float64)
    rows = info.shape[1]
    h_train = np.broadcast_to(np.asarray(h_y_train_R, np.float64), (rows,))
    ceilings = [
        np.full(rows, np.log2(max(n_train, 1))),
        h_train,
        np.full(rows, np.log2(max(n_test, 1))),
        np.full(rows, float(h_y_test)),
    ]
    out = np.zeros((rows, 4, info.shape[-1]), bool)
    for k, ceiling in enumerate(ceilings):
        values = info[k]  # [R, E, L]
        finite = np.isfinite(values)
        with np.errstate(invalid="ignore"):
            near = finite & (values >= ceiling[:, None, None] - SATURATION_BITS)
        out[:, k] = 2 * near.sum(axis=1) > np.maximum(finite.sum(axis=1), 1)
    return out


def epochs_to_fit(train_accuracy_RxT: np.ndarray, final_accuracy_R: np.ndarray | None, threshold: float):
    """[R] the first epoch whose training accuracy reaches `threshold` (epoch T for the final
    network), -1 where none does."""
    acc = train_accuracy_RxT
    if final_accuracy_R is not None:
        acc = np.concatenate([acc, np.asarray(final_accuracy_R)[:, None]], axis=1)
    reached = acc >= threshold
    return np.where(reached.any(axis=1), np.argmax(reached, axis=1), -1)


def build_results(
    *,
    mi_epochs: np.ndarray,
    information: np.ndarray,
    estimators: Sequence[str],
    metrics: np.ndarray,
    layer_widths: Sequence[int],
    seeds: np.ndarray,
    h_y_train_rows: np.ndarray,
    h_y_test: float,
    n_train: int,
    n_test: int,
    test_name: str,
    complete: bool,
    final_metrics: np.ndarray | None = None,
    conditions: Sequence[tuple[str, float]] | None = None,
    fit_threshold: float | None = None,
    gradients: np.ndarray | None = None,
    layer_names: Sequence[str] | None = None,
    epochs: int | None = None,
    num_classes: int | None = None,
    diverged_epoch: np.ndarray | None = None,
) -> dict[str, Any]:
    """The arrays of `results.npz`, the one place the contract is assembled (the runner and
    `Recorder` both call it).

    Args:
      mi_epochs: [E] the measured epochs.
      information: [M, 4, R, E, L] bits: per estimator, I(X;T), I(T;Y) on the training split,
        then on the test split (the order of `MI_KEYS`).
      estimators: the M estimators' names; the first gives the unprefixed keys.
      metrics: [4, R, T] train loss, train accuracy, test loss, test accuracy per epoch.
      final_metrics: [4, R] the same of the final network, if measured (`final_*` keys).
      conditions: each row's (condition, corruption); with `fit_threshold`, also
        `epochs_to_fit`.
      gradients: [3, R, E, L] the gradient statistics (`GRADIENT_KEYS`), if measured.
      layer_names: a name per layer, for runs of one's own model.
      epochs: the epochs the run was asked for (the mains), for a partial run's "E of N".
      num_classes: the number of classes (chance accuracy in the figures).
      diverged_epoch: [R] each row's first epoch with a non-finite training loss, -1 for none
        (default: from the loss curves, which a run of the mains fills for every epoch).
    """
    # Long only by its keyword arguments and their documentation: the body is one dict.
    seeds = np.asarray(seeds)
    out: dict[str, Any] = {"mi_epochs": np.asarray(mi_epochs)}
    out.update({key: information[0, k] for k, key in enumerate(MI_KEYS)})
    out.update({key: metrics[k] for k, key in enumerate(METRICS)})
    out.update({"layer_widths": np.asarray(layer_widths), "seeds": seeds, "seed": seeds})
    if conditions is not None:
        out["condition"] = np.asarray([c for c, _ in conditions])
        out["corruption"] = np.asarray([p for _, p in conditions])
        if fit_threshold is not None:
            final_accuracy = None if final_metrics is None else final_metrics[1]
            out["epochs_to_fit"] = epochs_to_fit(metrics[1], final_accuracy, fit_threshold)
    out.update(
        {
            "h_y_train": float(np.mean(h_y_train_rows)),
            "h_y_train_rows": np.asarray(h_y_train_rows),
            "h_y_test": h_y_test,
            "n_train": n_train,
            "n_test": n_test,
            "test_name": test_name,
            "complete": bool(complete),
            "estimators": np.asarray(list(estimators)),
        }
    )
    if fit_threshold is not None:
        out["fit_threshold"] = fit_threshold
    out["contract"] = CONTRACT
    if layer_names is not None:
        out["layer_names"] = np.asarray(list(layer_names))
    if epochs is not None:
        out["epochs"] = int(epochs)
    if num_classes is not None:
        out["num_classes"] = int(num_classes)
    out["diverged_epoch"] = np.asarray(diverged_epochs(metrics[0]) if diverged_epoch is None else diverged_epoch)
    for m, name in enumerate(estimators):
        for k, key in enumerate(MI_KEYS):
            out[f"{name}.{key}"] = information[m, k]
        out[f"{name}.saturated"] = saturation(information[m], n_train, n_test, h_y_train_rows, h_y_test)
    if gradients is not None:
        out.update(zip(GRADIENT_KEYS, gradients))
    if final_metrics is not None:
        out.update({f"final_{key}": final_metrics[k] for k, key in enumerate(METRICS)})
    return out


def versions() -> dict[str, str]:
    """The versions of the packages behind a run's numbers, and the device, for config.json."""
    import flax  # pylint: disable=g-import-not-at-top
    import jax  # pylint: disable=g-import-not-at-top
    import optax  # pylint: disable=g-import-not-at-top

    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "device": f"{device.platform}: {device.device_kind} x{jax.device_count()}",
    }


def estimator_entries(estimators: Sequence[Any]) -> list[dict[str, Any]]:
    """Each estimator as config.json lists it: {"name", "type", its parameters...}."""
    return [{"name": e.name, "type": type(e).__name__, **dataclasses.asdict(e)} for e in estimators]


def build_config(
    *, name: str, settings: Mapping[str, Any], estimators: Sequence[Any], complete: bool, **extra: Any
) -> dict[str, Any]:
    """config.json, one shape for the runner and `Recorder`: the run's `name`, its `settings`
    (under "config"), each estimator as {"name", "type", its parameters...}, the package
    `versions`, `complete`, and anything in `extra` (execution, wall time, ...)."""
    return {
        "name": name,
        "config": dict(settings),
        "estimators": estimator_entries(estimators),
        "versions": versions(),
        "complete": bool(complete),
        **extra,
    }


def save_results(output_dir: str | os.PathLike, arrays: Mapping[str, Any]) -> pathlib.Path:
    path = pathlib.Path(output_dir) / RESULTS
    atomic_write(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))
    return path


def save_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def load_results(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a run's results.npz, checking the contract's keys and shapes."""
    path = pathlib.Path(run_dir) / RESULTS
    if not path.is_file():
        raise errors.DataError(f"no {RESULTS} in {run_dir}: not a finished or checkpointed run")
    try:
        with np.load(path) as f:
            out = {k: f[k] for k in f.files}
    except Exception as e:  # pylint: disable=broad-except  # zipfile, zlib, pickle and OS errors alike
        raise errors.DataError(
            f"{path} is unreadable ({type(e).__name__}); rerun the experiment or pass another folder"
        ) from None
    version = int(out["contract"]) if "contract" in out else 1
    if version > CONTRACT:
        raise errors.DataError(
            f"{path} follows results contract {version}, newer than this ib_jax's ({CONTRACT}); update ib_jax"
        )
    missing = [k for k in REQUIRED if k not in out]
    if missing:
        raise errors.DataError(f"{path} lacks {', '.join(missing)}")
    s, e, num_layers = out["i_xt_train"].shape
    if out["mi_epochs"].shape != (e,) or out["layer_widths"].shape != (num_layers,) or out["train_loss"].shape[0] != s:
        raise errors.DataError(f"{path} has inconsistent shapes")
    return out


def load_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = pathlib.Path(run_dir) / CONFIG
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def estimator_names(res: Mapping[str, np.ndarray]) -> list[str]:
    """The estimators a run measured, in order ("binned" for folders older than the key)."""
    return [str(n) for n in res["estimators"]] if "estimators" in res else ["binned"]


def estimator_view(res: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """`res` with the unprefixed information keys set to estimator `name`'s, so every figure
    and summary of a run can be drawn for any of its estimators."""
    names = estimator_names(res)
    if name not in names:
        raise errors.DataError(f"this run measured {', '.join(names)}, not {name}")
    if f"{name}.{MI_KEYS[0]}" not in res:  # an old folder: the unprefixed keys are its one estimator
        return dict(res)
    return {**res, **{k: res[f"{name}.{k}"] for k in MI_KEYS}}


def peak_and_end(res: Mapping[str, np.ndarray], estimator: str, split: str, layer: int) -> dict[str, float]:
    """I(X;T) of one layer: its peak over the measured epochs and its value at the last one,
    per seed, then mean and standard deviation over seeds; and the epoch of the seed-mean
    curve's peak. The test of "compression": the end well below the peak."""
    i_xt = estimator_view(res, estimator)[f"i_xt_{split}"][:, :, layer]  # [S, E]
    peak, end = i_xt.max(axis=1), i_xt[:, -1]
    return {
        "peak_mean": float(peak.mean()),
        "peak_std": float(peak.std()),
        "end_mean": float(end.mean()),
        "end_std": float(end.std()),
        "peak_epoch": int(res["mi_epochs"][int(np.argmax(i_xt.mean(axis=0)))]),
        "seeds": int(i_xt.shape[0]),
    }


_PER_ROW = (
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seeds",
    "seed",
    "condition",
    "corruption",
    "epochs_to_fit",
    "h_y_train_rows",
    "diverged_epoch",
    *GRADIENT_KEYS,
)


def row_view(res: Mapping[str, np.ndarray], rows) -> dict[str, np.ndarray]:
    """`res` restricted to some rows (an index array or a boolean mask over the row axis), with
    `h_y_train` the mean over those rows: one condition of a sweep reads as a run of its own."""
    out = dict(res)
    for key, value in res.items():
        if key in _PER_ROW or key.startswith("final_") or key.split(".")[-1] in (*MI_KEYS, "saturated"):
            out[key] = np.asarray(value)[rows]
    if "h_y_train_rows" in res:
        out["h_y_train"] = float(np.mean(out["h_y_train_rows"]))
    return out


def saturated(res: Mapping[str, np.ndarray], estimator: str | None = None) -> np.ndarray:
    """[R, 4, L] the saturation flags (`saturation`) of one estimator of a run (default: its
    first), as written in results.npz, or computed for folders older than the key."""
    estimator = estimator or estimator_names(res)[0]
    if f"{estimator}.saturated" in res:
        return np.asarray(res[f"{estimator}.saturated"], bool)
    view = estimator_view(res, estimator)
    h_y_train = view["h_y_train_rows"] if "h_y_train_rows" in view else view["h_y_train"]
    info = np.stack([view[k] for k in MI_KEYS])
    return saturation(info, int(view["n_train"]), int(view["n_test"]), h_y_train, float(view["h_y_test"]))


def diverged(res: Mapping[str, np.ndarray]) -> np.ndarray:
    """[R] each row's first epoch with a non-finite training loss, -1 for none (older folders:
    from the loss curves of the mains; a Recorder's curves hold NaN where nothing was logged)."""
    if "diverged_epoch" in res:
        return np.asarray(res["diverged_epoch"])
    if "layer_names" in res:  # an older Recorder's folder
        return np.full(len(res["train_loss"]), -1)
    return diverged_epochs(res["train_loss"])


def run_status(res: Mapping[str, np.ndarray]) -> str:
    """What is not whole about a run, for titles and printed lines: "" for a finished run,
    "diverged at epoch 2 (2 of 3 rows)", or "unfinished: 120 of 300 epochs" ("unfinished: 120
    epochs" where the run did not record how many it was asked for)."""
    bad = diverged(res)
    if (bad >= 0).any():
        rows = f" ({int((bad >= 0).sum())} of {len(bad)} rows)" if len(bad) > 1 else ""
        return f"diverged at epoch {int(bad[bad >= 0].min())}{rows}"
    if bool(res["complete"]):
        return ""
    trained = int(res["train_loss"].shape[1])
    planned = f" of {int(res['epochs'])}" if "epochs" in res else ""
    return f"unfinished: {trained}{planned} epochs"


def condition_label(condition: str, corruption: float) -> str:
    """A row's condition as a figure label: "labels p=0.4", "true", "gaussian", ..."""
    return f"labels p={corruption:g}" if condition == "labels" else str(condition)


def condition_name(condition: str, corruption: float) -> str:
    """A row's condition as the mains spell it: "labels:0.4", "true", "gaussian", ..."""
    return f"labels:{corruption:g}" if condition == "labels" else str(condition)


def select_condition(res: Mapping[str, np.ndarray], name: str, where: str = "the run") -> dict[str, np.ndarray]:
    """The rows of one condition of a run (`row_view`), named as the mains spell it
    ("labels:0.4", also "labels p=0.4"); DataError listing the run's conditions for any other."""
    wanted = str(name).strip().replace(" p=", ":")
    for c, p in conditions(res):
        if condition_name(c, p) == wanted or (c == "labels" and wanted.startswith("labels:") and _same_p(wanted, p)):
            return row_view(res, condition_rows(res, c, p)) if "condition" in res else dict(res)
    names = ", ".join(condition_name(c, p) for c, p in conditions(res))
    raise errors.DataError(f"{where} has no condition {name!r}; it has {names}")


def _same_p(wanted: str, p: float) -> bool:
    try:
        return bool(np.isclose(float(wanted.split(":", 1)[1]), p))
    except ValueError:
        return False


def single_condition(res: Mapping[str, np.ndarray], where: str = "the run") -> None:
    """DataError where `res` pools rows of several conditions (a memorization sweep), which a
    figure of one run would average as if they were seeds: the message lists them."""
    found = conditions(res)
    if len(found) > 1:
        names = ", ".join(condition_name(c, p) for c, p in found)
        raise errors.DataError(
            f"{where} is a sweep of {len(found)} conditions ({names}), which are never averaged together: pick one "
            "with --condition NAME"
        )


def conditions(res: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """The distinct (condition, corruption) pairs of a run's rows, in row order."""
    if "condition" not in res:
        return [("true", 0.0)]
    pairs = zip((str(c) for c in res["condition"]), (float(p) for p in res["corruption"]))
    return list(dict.fromkeys(pairs))


def condition_rows(res: Mapping[str, np.ndarray], condition: str, corruption: float) -> np.ndarray:
    """A boolean mask of the rows of one condition."""
    return (np.asarray(res["condition"]).astype(str) == condition) & np.isclose(res["corruption"], corruption)


def sweep_summary(res: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> dict[str, Any]:
    """summary.json of a sweep: one object per row (condition, corruption, seed, epochs to fit
    or None, final train and test accuracy) and the run's settings."""
    rows = []
    for r in range(len(res["seed"])):
        fit = int(res["epochs_to_fit"][r])
        rows.append(
            {
                "condition": str(res["condition"][r]),
                "corruption": float(res["corruption"][r]),
                "seed": int(res["seed"][r]),
                "epochs_to_fit": fit if fit >= 0 else None,
                "train_accuracy": float(res["final_train_accuracy"][r]),
                "test_accuracy": float(res["final_test_accuracy"][r]),
            }
        )
    return {"rows": rows, "settings": dict(settings)}


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of a sweep per condition: epochs to fit, final train and test accuracy,
    mean +- std over seeds (epochs over the fitted seeds; how many fitted)."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["condition"], row["corruption"]), []).append(row)
    lines = [
        "| condition | seeds fitted | epochs to fit | train accuracy | test accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]

    def spread(values, digits: int) -> str:  # mean ± std; a single value has no spread to state
        values = np.asarray(values, np.float64)
        return f"{values.mean():.{digits}f}" + (f" ± {values.std():.{digits}f}" if len(values) > 1 else "")

    for (condition, p), members in groups.items():
        fits = [m["epochs_to_fit"] for m in members if m["epochs_to_fit"] is not None]
        epochs = spread(fits, 0) if fits else "—"
        train = [m["train_accuracy"] for m in members]
        test = [m["test_accuracy"] for m in members]
        lines.append(
            f"| {condition_label(condition, p)} | {len(fits)}/{len(members)} | {epochs} | "
            f"{spread(train, 3)} | {spread(test, 3)} |"
        )
    return "\n".join(lines)


def to_records(run_dir: str | os.PathLike, run: str | None = None) -> np.ndarray:
    """The tidy table of the run in `run_dir`: one row per run row x split x measured epoch x
    layer x estimator (`ib_jax.tidy`, `RECORD_FIELDS` there), its `run` column the folder as
    given (or `run`)."""
    from ib_jax import tidy  # pylint: disable=g-import-not-at-top  (it reads this module)

    return tidy.records(load_results(run_dir), str(run_dir) if run is None else run)


def to_dataframe(run_dir: str | os.PathLike, run: str | None = None):
    """`to_records` as a pandas DataFrame; pandas is imported here, and only here (an optional
    extra: `pip install '.[pandas]'`)."""
    try:
        import pandas  # pylint: disable=g-import-not-at-top
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas (or use to_records, a numpy table)") from None
    return pandas.DataFrame(to_records(run_dir, run))
