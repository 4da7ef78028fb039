"""What a run's results say about the run itself, for the figures, the summaries and the
checks of a folder: where it diverged and whether it finished (`run_status`), which values sit
at the estimator's ceiling (`saturation`, `saturated`), which estimators measured I(X;T) and
whose I(X;T) the planes of an I(T;Y)-only one take (`measures_xt`, `plane_partner`), one
condition of a sweep (`select_condition`, `single_condition`), and a sweep's summary per row
and per condition (`sweep_summary`, `summary_table`). `results.build_results` writes the first
two as keys of the contract; these read them back, and derive them for folders older than the
keys."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from ib_jax import errors, results

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


def saturated(res: Mapping[str, np.ndarray], estimator: str | None = None) -> np.ndarray:
    """[R, 4, L] the saturation flags (`saturation`) of one estimator of a run (default: the one
    an `estimator_view` shows, else its first), as written in results.npz, or computed for
    folders older than the key. In the view of an I(T;Y)-only estimator, the I(X;T) flags are
    those of the estimator its planes pair with."""
    estimator = estimator or str(res.get("viewed", "")) or results.estimator_names(res)[0]
    if f"{estimator}.saturated" in res:
        flags = np.array(res[f"{estimator}.saturated"], bool)
        if estimator == res.get("viewed") and "i_xt_by" in res:
            flags[:, (0, 2)] = saturated(res, str(res["i_xt_by"]))[:, (0, 2)]
        return flags
    view = results.estimator_view(res, estimator)
    h_y_train = view["h_y_train_rows"] if "h_y_train_rows" in view else view["h_y_train"]
    info = np.stack([view[k] for k in results.MI_KEYS])
    return saturation(info, int(view["n_train"]), int(view["n_test"]), h_y_train, float(view["h_y_test"]))


def measures_xt(res: Mapping[str, np.ndarray], name: str) -> bool:
    """Whether estimator `name` measured I(X;T) in this run (the probe does not: all NaN)."""
    key = f"{name}.i_xt_train" if f"{name}.i_xt_train" in res else "i_xt_train"
    return not np.isnan(np.asarray(res[key], np.float64)).all() or np.size(res[key]) == 0


def plane_partner(res: Mapping[str, np.ndarray], name: str) -> str | None:
    """The estimator whose I(X;T) pairs with `name`'s I(T;Y) in the planes: None where `name`
    measures I(X;T) itself or no estimator of the run does; else the run's `plane_x` (or, for a
    run without it, the first that measures I(X;T))."""
    if measures_xt(res, name):
        return None
    chosen = str(res["plane_x"]) if "plane_x" in res else ""
    candidates = [n for n in results.estimator_names(res) if measures_xt(res, n)]
    if chosen in candidates:
        return chosen
    return candidates[0] if candidates else None


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


def condition_name(condition: str, corruption: float) -> str:
    """A row's condition as the mains spell it: "labels:0.4", "true", "gaussian", ..."""
    return f"labels:{corruption:g}" if condition == "labels" else str(condition)


def select_condition(res: Mapping[str, np.ndarray], name: str, where: str = "the run") -> dict[str, np.ndarray]:
    """The rows of one condition of a run (`row_view`), named as the mains spell it
    ("labels:0.4", also "labels p=0.4"); DataError listing the run's conditions for any other."""
    wanted = str(name).strip().replace(" p=", ":")
    for c, p in results.conditions(res):
        if condition_name(c, p) == wanted or (c == "labels" and wanted.startswith("labels:") and _same_p(wanted, p)):
            return results.row_view(res, results.condition_rows(res, c, p)) if "condition" in res else dict(res)
    names = ", ".join(condition_name(c, p) for c, p in results.conditions(res))
    raise errors.DataError(f"{where} has no condition {name!r}; it has {names}")


def _same_p(wanted: str, p: float) -> bool:
    try:
        return bool(np.isclose(float(wanted.split(":", 1)[1]), p))
    except ValueError:
        return False


def single_condition(res: Mapping[str, np.ndarray], where: str = "the run") -> None:
    """DataError where `res` pools rows of several conditions (a memorization sweep), which a
    figure of one run would average as if they were seeds: the message lists them."""
    found = results.conditions(res)
    if len(found) > 1:
        names = ", ".join(condition_name(c, p) for c, p in found)
        raise errors.DataError(
            f"{where} is a sweep of {len(found)} conditions ({names}), which are never averaged together: pick one "
            "with --condition NAME"
        )


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
            f"| {results.condition_label(condition, p)} | {len(fits)}/{len(members)} | {epochs} | "
            f"{spread(train, 3)} | {spread(test, 3)} |"
        )
    return "\n".join(lines)


CONVERGENCE_BITS = 0.1  # a value that moves more than this from N / 2 to N samples has not converged in N


def null_layers(res: Mapping[str, np.ndarray], estimator: str) -> dict[str, np.ndarray] | None:
    """{"train", "test": the 1-based layers whose I(T;Y) is not above the permutation null (at or
    below its 95th percentile) at the last measured epoch, in most rows}; None where the run
    drew no null for `estimator`."""
    key = f"{estimator}.i_ty_train_not_above_null"
    if key not in res or np.size(res[key]) == 0:
        return None
    return {
        split: np.flatnonzero(np.asarray(res[f"{estimator}.i_ty_{split}_not_above_null"])[:, -1].mean(axis=0) > 0.5) + 1
        for split in ("train", "test")
    }


def convergence_epoch(res: Mapping[str, np.ndarray], estimator: str) -> int | None:
    """The index of the last measured epoch with values on nested subsets (`*_by_n`), None for
    none."""
    key = f"{estimator}.i_xt_train_by_n"
    if key not in res or np.size(res[key]) == 0:
        return None
    checked = np.flatnonzero(np.isfinite(np.asarray(res[key], np.float64)[..., :3]).any(axis=(0, 2, 3)))
    return int(checked[-1]) if checked.size else None


def unconverged(res: Mapping[str, np.ndarray], estimator: str, bits: float = CONVERGENCE_BITS):
    """(epoch index, [4, L] bool in the order of `MI_KEYS`): where the rows' mean value moves by
    more than `bits` from N / 2 to N samples at the last epoch checked (`convergence_epoch`);
    None where nothing was checked."""
    e = convergence_epoch(res, estimator)
    if e is None:
        return None
    moved = []
    for key in results.MI_KEYS:
        by_n = np.asarray(res[f"{estimator}.{key}_by_n"], np.float64)[:, e]  # [R, L, 4]
        with np.errstate(invalid="ignore"):
            moved.append(np.abs(np.nanmean(by_n[..., 3] - by_n[..., 2], axis=0)) > bits)
    return e, np.stack(moved)


def peak_and_end(res: Mapping[str, np.ndarray], estimator: str, split: str, layer: int) -> dict[str, float]:
    """I(X;T) of one layer: its peak over the measured epochs and its value at the last one,
    per seed, then mean and standard deviation over seeds; and the epoch of the seed-mean
    curve's peak. The test of "compression": the end well below the peak."""
    i_xt = results.estimator_view(res, estimator)[f"i_xt_{split}"][:, :, layer]  # [S, E]
    peak, end = i_xt.max(axis=1), i_xt[:, -1]
    return {
        "peak_mean": float(peak.mean()),
        "peak_std": float(peak.std()),
        "end_mean": float(end.mean()),
        "end_std": float(end.std()),
        "peak_epoch": int(res["mi_epochs"][int(np.argmax(i_xt.mean(axis=0)))]),
        "seeds": int(i_xt.shape[0]),
    }
