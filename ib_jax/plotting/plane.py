"""The information plane and the curves of a run: the plane of each split, information per
layer against epoch, the training curves, several estimators side by side, and runs side by
side. With several seeds, lines are seed means, and the spread is one standard deviation (bars
in the plane, bands in the curves).

Each layer has its own marker (and, in the curves, its own colour and marker); a layer whose
I(X;T) sits at log2 N in most epochs (`outcome.saturated`: the estimator cannot resolve it) is
drawn in outline, larger the earlier the layer, so that the wide layers sharing that point show
as nested outlines. The keys and titles (which layers sit there, a run that diverged or is
unfinished) are `keys`'.

Uses matplotlib's object API (`Figure`), so no pyplot state or display backend is involved.
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import cm, colors, ticker
from matplotlib.figure import Figure

from ib_jax import outcome, results
from ib_jax.plotting.confidence import SE_BARS, draw_confidence, mean_se
from ib_jax.plotting.keys import (
    DPI,
    MARKERS,
    SPLITS,
    at_ceiling,
    curves_key,
    layer_colours,
    layer_key,
    layer_keys,
    layer_label,
    marker_size,
    run_title,
    titled,
)


def mean_std(x_SxE: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x_SxE.mean(axis=0), x_SxE.std(axis=0)


def draw_plane(ax, res: Mapping[str, np.ndarray], split: str, norm: colors.Normalize, seeds_faint: bool = False):
    """One information plane: a point per layer and measured epoch, coloured by epoch, a marker
    per layer (`layer_key`; in outline for a layer at log2 N); the layers of one epoch joined by a
    faint line. Returns the colour mappable (epochs)."""
    i_xt, i_ty = res[f"i_xt_{split}"], res[f"i_ty_{split}"]  # [S, E, L]
    epochs = res["mi_epochs"]
    x, x_std = mean_std(i_xt)
    y, y_std = mean_std(i_ty)
    cmap = cm.viridis
    for e in range(len(epochs)):
        ax.plot(x[e], y[e], color=cmap(norm(epochs[e])), alpha=0.15, lw=0.8, zorder=1)
    if i_xt.shape[0] > 1:
        if seeds_faint:
            for s in range(i_xt.shape[0]):
                for layer in range(i_xt.shape[2]):
                    ax.plot(i_xt[s, :, layer], i_ty[s, :, layer], color="0.6", lw=0.3, alpha=0.4, zorder=0)
        ax.errorbar(
            x.ravel(),
            y.ravel(),
            xerr=x_std.ravel(),
            yerr=y_std.ravel(),
            fmt="none",
            ecolor="0.5",
            elinewidth=0.5,
            alpha=0.35,
            zorder=1,
        )
    count = x.shape[1]
    hollow = [split in note for note in at_ceiling(res)]  # at log2 N on this split
    outlined = int(sum(hollow))
    for layer in range(count):  # a marker per layer (`layer_key`), the colour of the epoch
        kind = {"marker": MARKERS[layer % len(MARKERS)], "zorder": 2 + layer / count}
        if hollow[layer]:  # outlines, nested on a shared point: the first layer's the largest
            rank = int(sum(hollow[:layer]))
            rgba = cmap(norm(epochs))
            ax.scatter(
                x[:, layer],
                y[:, layer],
                s=40.0 + 180.0 * (outlined - 1 - rank) / max(outlined - 1, 1),
                facecolors="none",
                edgecolors=rgba,
                linewidths=1.3,
                **kind,
            )
        else:
            ax.scatter(
                x[:, layer],
                y[:, layer],
                c=epochs,
                cmap=cmap,
                norm=norm,
                s=marker_size(layer, count),
                edgecolors="white",
                linewidths=0.4,
                **kind,
            )
    drawn = draw_confidence(ax, res, split)
    if drawn:
        ax.text(0.01, 0.01, "; ".join(drawn), transform=ax.transAxes, fontsize=7, color="0.25", va="bottom")
    points = cm.ScalarMappable(norm=norm, cmap=cmap)
    n, h_y = int(res[f"n_{split}"]), float(res[f"h_y_{split}"])
    ax.axvline(np.log2(n), color="0.3", ls="--", lw=0.8)
    ax.axhline(h_y, color="0.3", ls=":", lw=0.8)
    # The two limits are named outside the plotting area, where no point can sit under them.
    top = ax.secondary_xaxis("top")
    top.set_xticks([np.log2(n)], labels=[f"log2 N = {np.log2(n):.2f}"], fontsize=7)
    right = ax.secondary_yaxis("right")
    right.set_yticks([h_y], labels=[f"H(Y) = {h_y:.3f}"], fontsize=7)
    by = str(res.get("i_xt_by", ""))
    ax.set_xlabel(f"I(X;T) [bits], by {by}" if by else "I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    if not np.isfinite(i_xt).any():  # an I(T;Y)-only estimator with nothing to pair with
        ax.text(
            0.5,
            0.5,
            "I(X;T) not measured: this estimator\nmeasures I(T;Y) only (pair it with\n"
            "one that measures I(X;T): --plane_x)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="0.3",
        )
    return points


def _epoch_colours(fig, axes_by_run, runs, draw) -> None:
    """Colours runs by epoch: one shared colour bar when every run has the same length, else
    one per run, above its panels (a 200-epoch run beside a 10,000-epoch one would be all one
    colour). The length is the run's own --epochs where it recorded them (a partial run keeps the
    scale of its whole)."""
    lengths = [max(int(r["epochs"]) if "epochs" in r else int(r["mi_epochs"].max()), 1) for r in runs]
    shared = colors.Normalize(0, max(lengths))
    for axes, length in zip(axes_by_run, lengths):
        norm = shared if len(set(lengths)) == 1 else colors.Normalize(0, length)
        points = [draw(ax, norm) for ax in axes][-1]
        if len(set(lengths)) > 1:
            fig.colorbar(points, ax=list(axes), label="Epochs", location="top", shrink=0.7, aspect=30)
    if len(set(lengths)) == 1:
        fig.colorbar(points, ax=[ax for axes in axes_by_run for ax in axes], label="Epochs")


def plane_title(res, name: str, split: str) -> str:
    seeds = res["i_xt_train"].shape[0]
    shown = str(res["test_name"]) if split == "test" and "test_name" in res else split
    what = f"{shown} (N = {int(res[f'n_{split}'])}{f', mean of {seeds} seeds' if seeds > 1 else ''})"
    return titled(res, name, what)


def plane_figure(res, path: str | os.PathLike, name: str = "", seeds_faint: bool = False) -> None:
    """The information plane of each split, side by side, with one colour bar in epochs."""
    outcome.single_condition(res)
    fig = Figure(figsize=(11, 5), layout="constrained")
    axes = fig.subplots(1, 2)
    norm = colors.Normalize(0, max(int(res["mi_epochs"].max()), 1))
    for ax, split in zip(axes, SPLITS):
        points = draw_plane(ax, res, split, norm, seeds_faint)
        ax.set_title(plane_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    layer_key(fig, res)
    fig.savefig(path, dpi=DPI)


def band(ax, epochs, x_SxE, label, color, marker=None, offset=0, se_SxE=None, null=None):
    """Seed mean against epoch, with one standard deviation as a band; `marker` on every
    few points (starting at `offset`, so that layers on one curve show each marker). With
    `se_SxE`, bootstrap error bars (+- `SE_BARS` SE of the mean); with `null` (mean [S, E], 95th
    percentile [S, E]), the permutation null as a hatched band in the same colour."""
    mean, std = mean_std(x_SxE)
    if se_SxE is not None:
        ax.errorbar(
            epochs, mean, yerr=SE_BARS * mean_se(se_SxE), fmt="none", ecolor=color, elinewidth=0.8, capsize=2, alpha=0.8
        )
    if null is not None:
        low, high = (np.asarray(v).mean(axis=0) for v in null)
        ax.fill_between(epochs, low, high, facecolor="none", edgecolor=color, hatch="////", lw=0, alpha=0.5)
    every = max(len(epochs) // 8, 1)
    ax.plot(
        epochs,
        mean,
        label=label,
        color=color,
        lw=1.2,
        marker=marker,
        markersize=4,
        markevery=(offset % every, every) if marker else None,
    )
    if x_SxE.shape[0] > 1:
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def epoch_axis(ax, epochs) -> None:
    """Whole epochs on the x axis; one epoch alone gets a unit either side (not +-0.05)."""
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    epochs = np.asarray(epochs)
    if epochs.size and epochs.min() == epochs.max():
        ax.set_xlim(epochs.min() - 1, epochs.max() + 1)


def layer_curves(ax, res, key: str, layers=None) -> None:
    """`key` [S, E, L] of each layer against epoch, a colour and a marker per layer."""
    count = len(res["layer_widths"])
    palette = layer_colours(count)
    se = res.get(f"{key}_se")
    null = (res[f"{key}_null_mean"], res[f"{key}_null_p95"]) if f"{key}_null_p95" in res else None
    for layer in range(count) if layers is None else layers:
        band(
            ax,
            res["mi_epochs"],
            res[key][:, :, layer],
            layer_label(res, layer),
            palette[layer],
            marker=MARKERS[layer % len(MARKERS)],
            offset=layer,
            se_SxE=None if se is None or not np.isfinite(se[:, :, layer]).any() else se[:, :, layer],
            null=None if null is None else (null[0][:, :, layer], null[1][:, :, layer]),
        )
    notes = ([f"bars: +-{SE_BARS:g} bootstrap SE"] if se is not None and np.isfinite(se).any() else []) + (
        ["hatched: null (shuffled labels, mean to 95th pct)"] if null is not None else []
    )
    if notes:
        ax.text(0.01, 0.99, "; ".join(notes), transform=ax.transAxes, fontsize=7, color="0.25", va="top")
    epoch_axis(ax, res["mi_epochs"])


def layers_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """I(X;T) and I(T;Y) of every layer against epoch, for both splits; the layer key below."""
    outcome.single_condition(res)
    fig = Figure(figsize=(11, 7.4), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    for col, split in enumerate(SPLITS):
        for row, what in enumerate(("i_xt", "i_ty")):
            ax = axes[row, col]
            layer_curves(ax, res, f"{what}_{split}")
            by = f", by {res['i_xt_by']}" if what == "i_xt" and "i_xt_by" in res else ""
            ax.set_ylabel(("I(X;T)" if what == "i_xt" else "I(T;Y)") + f" [bits]{by}")
            ax.set_title(plane_title(res, name, split), fontsize=9)
        axes[1, col].set_xlabel("epoch")
    curves_key(fig, axes[0, 0], len(res["layer_widths"]))
    fig.savefig(path, dpi=DPI)


def training_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Loss and accuracy of both splits against epoch."""
    outcome.single_condition(res)
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    epochs = np.arange(res["train_loss"].shape[1])
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, color in zip(SPLITS, ("tab:blue", "tab:orange")):
            band(ax, epochs, res[f"{split}_{what}"], split, color)
        ax.set_xlabel("epoch")
        epoch_axis(ax, epochs)
        ax.set_ylabel("cross-entropy [nats]" if what == "loss" else "accuracy")
        ax.legend()
    axes[0].set_title(run_title(res, name), fontsize=9)
    fig.savefig(path, dpi=DPI)


MAX_COLUMNS = 4  # panels per row in the per-estimator figures


def _panel_grid(fig: Figure, count: int, panel_w: float, panel_h: float, **kwargs):
    """`count` axes in rows of at most `MAX_COLUMNS` (the figure sized to fit), the unused
    cells of the last row hidden; returns the used axes, flat."""
    cols = min(MAX_COLUMNS, count)
    rows = -(-count // cols)
    fig.set_size_inches(panel_w * cols + 1.2, panel_h * rows + 0.9)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return list(axes[:count])


def estimators_plane_figure(res, path: str | os.PathLike, split: str, name: str = "") -> None:
    """The information plane of one split by every estimator of the run, in a grid of at most
    four panels a row, with shared epoch colours (each estimator keeps its own axes: their
    scales differ)."""
    outcome.single_condition(res)
    names = results.estimator_names(res)
    fig = Figure(layout="constrained")
    axes = _panel_grid(fig, len(names), 4.2, 3.9)
    norm = colors.Normalize(0, max(int(res["mi_epochs"].max()), 1))
    for ax, estimator in zip(axes, names):
        points = draw_plane(ax, results.estimator_view(res, estimator), split, norm)
        ax.set_title(estimator, fontsize=10)
    fig.suptitle(plane_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs", shrink=0.8)
    layer_key(fig, res)
    fig.savefig(path, dpi=DPI)


def estimators_layers_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """I(X;T) of every layer against epoch (I(T;Y) for an estimator that measures only that):
    a column per estimator (at most four; more wrap below), the training split above the test
    split; the layer key below the panels."""
    outcome.single_condition(res)
    names = results.estimator_names(res)
    cols = min(MAX_COLUMNS, len(names))
    blocks = -(-len(names) // cols)
    fig = Figure(figsize=(3.9 * cols + 1.2, 2 * 3.0 * blocks + 0.9), layout="constrained")
    grid = fig.subplots(2 * blocks, cols, squeeze=False)
    used = []
    for i, estimator in enumerate(names):
        view = results.estimator_view(res, estimator)
        what = "i_xt" if outcome.measures_xt(res, estimator) else "i_ty"
        for s, split in enumerate(SPLITS):
            ax = grid[2 * (i // cols) + s, i % cols]
            used.append(ax)
            layer_curves(ax, view, f"{what}_{split}")
            ax.set_title(f"{estimator}, {split}", fontsize=9)
            ax.set_ylabel("I(X;T) [bits]" if what == "i_xt" else "I(T;Y) [bits]", fontsize=8)
            ax.set_xlabel("epoch", fontsize=8)
    for ax in grid.ravel():
        if ax not in used:
            ax.set_visible(False)
    curves_key(fig, used[0], len(res["layer_widths"]))
    fig.suptitle(run_title(res, name), fontsize=9)
    fig.savefig(path, dpi=DPI)


def estimators_grid_figure(
    runs: Sequence[Mapping[str, np.ndarray]],
    names: Sequence[str],
    estimators: Sequence[str],
    split: str,
    path: str | os.PathLike,
) -> None:
    """A row per run and a column per estimator: the information plane of one split (seed
    means with one standard deviation), shared axes within a column; epoch colours shared when
    the runs are equally long, else one colour bar per run; each run's own layer key where the
    runs' layers differ."""
    for res, name in zip(runs, names):
        outcome.single_condition(res, name)
    fig = Figure(figsize=(4.2 * len(estimators) + 1.5, 4.2 * len(runs) + 0.6), layout="constrained")
    axes = fig.subplots(len(runs), len(estimators), sharex="col", sharey="col", squeeze=False)
    for row, (res, name) in enumerate(zip(runs, names)):
        for col, estimator in enumerate(estimators):
            axes[row, col].set_title(f"{run_title(res, name)}: {estimator}", fontsize=9)
    cells = {id(ax): (res, e) for row, res in zip(axes, runs) for ax, e in zip(row, estimators)}
    _epoch_colours(
        fig,
        axes,
        runs,
        lambda ax, norm: draw_plane(ax, results.estimator_view(*cells[id(ax)]), split, norm),
    )
    layer_keys(fig, runs, names, axes, beside=True)
    fig.savefig(path, dpi=DPI)


def compare_figure(runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], path: str | os.PathLike) -> None:
    """Runs side by side (columns), one row per split, on shared axes; epoch colours shared when
    the runs are equally long, else one colour bar per run above its column; each run's own
    layer key below its column where the runs' layers differ."""
    for res, name in zip(runs, names):
        outcome.single_condition(res, name)
    fig = Figure(figsize=(5.2 * len(runs) + 1.5, 9.6), layout="constrained")
    axes = fig.subplots(2, len(runs), sharex=True, sharey=True, squeeze=False)
    cells = {}
    for col, (res, name) in enumerate(zip(runs, names)):
        for row, split in enumerate(SPLITS):
            axes[row, col].set_title(plane_title(res, name, split), fontsize=9)
            cells[id(axes[row, col])] = (res, split)
    _epoch_colours(fig, axes.T, runs, lambda ax, norm: draw_plane(ax, *cells[id(ax)], norm))
    layer_keys(fig, runs, names, axes.T)
    fig.savefig(path, dpi=DPI)


def decodable_figure(res, path: str | os.PathLike, name: str = "", estimator: str = "probe") -> None:
    """What a held-out probe decodes from each layer against epoch: its I(T;Y) (bits; H(Y)
    dotted) above its held-out accuracy (chance dotted), the training split beside the test
    split; the layer key below."""
    outcome.single_condition(res)
    view = results.estimator_view(res, estimator)
    fig = Figure(figsize=(11, 7.4), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    for col, split in enumerate(SPLITS):
        layer_curves(axes[0, col], view, f"i_ty_{split}")
        axes[0, col].axhline(float(res[f"h_y_{split}"]), color="0.3", ls=":", lw=0.8)
        axes[0, col].axhline(0.0, color="0.6", lw=0.6)
        axes[0, col].set_ylabel(f"I(T;Y) [bits], {estimator} (held out)")
        axes[0, col].set_title(plane_title(res, name, split), fontsize=9)
        layer_curves(axes[1, col], {**view, "acc": res[f"{estimator}.accuracy_{split}"]}, "acc")
        if "num_classes" in res:
            axes[1, col].axhline(1.0 / int(res["num_classes"]), color="0.3", ls=":", lw=0.8)
        axes[1, col].set_ylabel(f"held-out {estimator} accuracy")
        axes[1, col].set_xlabel("epoch")
    curves_key(fig, axes[0, 0], len(res["layer_widths"]))
    fig.savefig(path, dpi=DPI)
