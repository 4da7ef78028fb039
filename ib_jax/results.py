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

Since first contact II (optional: `outcome.diverged` and `outcome.saturated` derive them for older
folders): `epochs` (the epochs the run was asked for; the mains only), `num_classes`,
`diverged_epoch` [R] (the first epoch whose training loss is not finite, -1 for none), and per
estimator `E.saturated` [R, 4, L] (bool, in the order of `MI_KEYS`: the value within
`outcome.SATURATION_BITS` of its ceiling, log2 N for I(X;T) and H(Y) for I(T;Y), in most measured
epochs).

Since confidence (optional; `build_results`' `confidence` and `convergence`): per estimator E the
bootstrap standard errors `E.<key>_se`, the permutation null `E.i_ty_<split>_null_mean`,
`_null_p95` and `_not_above_null`, and the values on nested subsets `E.<key>_by_n` [S, E, L, 4]
with `convergence_n_train`, `convergence_n_test` [4] (docs/outputs.md).

Since decodable information (optional): each estimator E with diagnostics writes `E.X_train`,
`E.X_test` [S, E, L] for each of them (the probe: `probe.accuracy_*`, the held-out probes'
accuracy, and `probe.change_*`, its convergence check); a run with an estimator that measures
I(T;Y) only (the probe: `E.i_xt_*` all NaN) writes `plane_x`, the estimator whose I(X;T) its
planes pair with ("" for none).
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
# An estimate counts as above its permutation null where it exceeds the null's 95th percentile by
# more than this: closer than that, the difference is the estimators' rounding, not information.
NULL_TOLERANCE_BITS = 1e-3
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
    extras: Mapping[str, np.ndarray] | None = None,
    plane_x: str | None = None,
    confidence: Mapping[str, np.ndarray] | None = None,
    convergence: Mapping[str, np.ndarray] | None = None,
    convergence_sizes: tuple[Sequence[int], Sequence[int]] | None = None,
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
      layer_names: a name per layer (the model's: "layer 1", ... of the MLP, "conv1", ... of the
        CNN; one's own model's).
      epochs: the epochs the run was asked for (the mains), for a partial run's "E of N".
      num_classes: the number of classes (chance accuracy in the figures).
      diverged_epoch: [R] each row's first epoch with a non-finite training loss, -1 for none
        (default: from the loss curves, which a run of the mains fills for every epoch).
      extras: the estimators' diagnostics, {"<estimator>.<extra>": [2, R, E, L]} (training split,
        then test), written as "<estimator>.<extra>_train" and "_test".
      plane_x: the estimator whose I(X;T) the planes pair with an I(T;Y)-only estimator's ("" for
        none), where the run has such an estimator.
      confidence: {"<estimator>.se": [4, R, E, L] (in the order of `MI_KEYS`), "<estimator>.null_mean"
        and ".null_p95": [4, R, E, L] (I(T;Y) at 1 and 3)}, written as `CONFIDENCE_KEYS` say.
      convergence: {"<estimator>": [4, R, E, L, 4]} the values on N / 8, N / 4, N / 2 and N
        samples (NaN where not measured), with `convergence_sizes` (the training split's four
        sample counts, the test split's).
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
    from ib_jax import outcome  # pylint: disable=g-import-not-at-top  (it reads this module: imported when used)

    out["diverged_epoch"] = np.asarray(
        outcome.diverged_epochs(metrics[0]) if diverged_epoch is None else diverged_epoch
    )
    for m, name in enumerate(estimators):
        for k, key in enumerate(MI_KEYS):
            out[f"{name}.{key}"] = information[m, k]
        out[f"{name}.saturated"] = outcome.saturation(information[m], n_train, n_test, h_y_train_rows, h_y_test)
    for key, values in (extras or {}).items():
        out[f"{key}_train"], out[f"{key}_test"] = values
    if plane_x is not None:
        out["plane_x"] = str(plane_x)
    for key, values in (confidence or {}).items():
        name, channel = key.rsplit(".", 1)
        if channel == "se":
            out.update({f"{name}.{mi}_se": values[k] for k, mi in enumerate(MI_KEYS)})
            continue
        for k, mi in ((1, "i_ty_train"), (3, "i_ty_test")):
            out[f"{name}.{mi}_{channel}"] = values[k]
            if channel == "null_p95":  # the permutation test at 5%: the estimate does not exceed the null's 95th pct
                estimate = information[list(estimators).index(name), k]
                with np.errstate(invalid="ignore"):
                    above = estimate > values[k] + NULL_TOLERANCE_BITS
                out[f"{name}.{mi}_not_above_null"] = np.isfinite(values[k]) & ~above
    for name, values in (convergence or {}).items():
        out.update({f"{name}.{mi}_by_n": values[k] for k, mi in enumerate(MI_KEYS)})
    if convergence_sizes is not None:
        out["convergence_n_train"], out["convergence_n_test"] = (np.asarray(s) for s in convergence_sizes)
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
    and summary of a run can be drawn for any of its estimators. For an estimator that measures
    I(T;Y) only (the probe), I(X;T) is its `outcome.plane_partner`'s, named by "i_xt_by" in the view
    (NaN where the run has no partner)."""
    names = estimator_names(res)
    if name not in names:
        raise errors.DataError(f"this run measured {', '.join(names)}, not {name}")
    if f"{name}.{MI_KEYS[0]}" not in res:  # an old folder: the unprefixed keys are its one estimator
        return dict(res)
    view = {**res, **{k: res[f"{name}.{k}"] for k in MI_KEYS}, "viewed": name}
    view.pop("i_xt_by", None)  # the view of a view: only this estimator's partner counts
    for key in [k for k in view if "." not in k and k.endswith(CONFIDENCE_SUFFIXES)]:
        view.pop(key)  # another estimator's, in a view of a view
    view.update({k: res[f"{name}.{k}"] for k in confidence_keys(res, name)})
    from ib_jax import outcome  # pylint: disable=g-import-not-at-top  (it reads this module: imported when used)

    partner = outcome.plane_partner(res, name)
    if partner is not None:  # an I(T;Y)-only estimator: its planes take I(X;T) from the partner
        view.update({k: res[f"{partner}.{k}"] for k in MI_KEYS if k.startswith("i_xt")})
        view.update({k: res[f"{partner}.{k}"] for k in confidence_keys(res, partner) if k.startswith("i_xt")})
        view["i_xt_by"] = partner
    return view


CONFIDENCE_SUFFIXES = ("_se", "_null_mean", "_null_p95", "_not_above_null", "_by_n")


def confidence_keys(res: Mapping[str, np.ndarray], name: str) -> list[str]:
    """The confidence keys estimator `name` has in `res`, unprefixed ("i_xt_train_se", ...)."""
    return [f"{k}{suffix}" for k in MI_KEYS for suffix in CONFIDENCE_SUFFIXES if f"{name}.{k}{suffix}" in res]


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
        if key in _PER_ROW or key in MI_KEYS or key.startswith("final_") or "." in key:  # "E.*": all per row
            out[key] = np.asarray(value)[rows]
    if "h_y_train_rows" in res:
        out["h_y_train"] = float(np.mean(out["h_y_train_rows"]))
    return out


def condition_label(condition: str, corruption: float) -> str:
    """A row's condition as a figure label: "labels p=0.4", "true", "gaussian", ..."""
    return f"labels p={corruption:g}" if condition == "labels" else str(condition)


def conditions(res: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """The distinct (condition, corruption) pairs of a run's rows, in row order."""
    if "condition" not in res:
        return [("true", 0.0)]
    pairs = zip((str(c) for c in res["condition"]), (float(p) for p in res["corruption"]))
    return list(dict.fromkeys(pairs))


def condition_rows(res: Mapping[str, np.ndarray], condition: str, corruption: float) -> np.ndarray:
    """A boolean mask of the rows of one condition."""
    return (np.asarray(res["condition"]).astype(str) == condition) & np.isclose(res["corruption"], corruption)


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
