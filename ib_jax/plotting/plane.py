"""The information plane and the curves of a run: the plane of each split, information per
layer against epoch, the training curves, several estimators side by side, and runs side by
side. With several seeds, lines are seed means, and the spread is one standard deviation (bars
in the plane, bands in the curves).

Uses matplotlib's object API (`Figure`), so no pyplot state or display backend is involved.
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import cm, colors, lines
from matplotlib.figure import Figure

from ib_jax import results

SPLITS = ("train", "test")


def layer_label(res: Mapping[str, np.ndarray], layer: int) -> str:
    """ "layer 3 (1024)", or the layer's name where the run recorded names ("conv1 (1568)")."""
    name = str(res["layer_names"][layer]) if "layer_names" in res else f"layer {layer + 1}"
    return f"{name} ({int(res['layer_widths'][layer])})"


def mean_std(x_SxE: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x_SxE.mean(axis=0), x_SxE.std(axis=0)


def draw_plane(ax, res: Mapping[str, np.ndarray], split: str, norm: colors.Normalize, seeds_faint: bool = False):
    """One information plane: a point per layer and measured epoch, coloured by epoch; the
    layers of one epoch joined by a faint line. Returns the colour mappable."""
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
    points = None
    for layer in range(x.shape[1]):  # a marker per layer (`layer_key`), the colour of the epoch
        drawn = ax.scatter(
            x[:, layer],
            y[:, layer],
            c=epochs,
            cmap=cmap,
            norm=norm,
            s=16,
            zorder=2,
            edgecolors="none",
            marker=MARKERS[layer % len(MARKERS)],
        )
        points = points or drawn
    n, h_y = int(res[f"n_{split}"]), float(res[f"h_y_{split}"])
    ax.axvline(np.log2(n), color="0.3", ls="--", lw=0.8)
    ax.axhline(h_y, color="0.3", ls=":", lw=0.8)
    # The two limits are named outside the plotting area, where no point can sit under them.
    top = ax.secondary_xaxis("top")
    top.set_xticks([np.log2(n)], labels=[f"log2 N = {np.log2(n):.2f}"], fontsize=7)
    right = ax.secondary_yaxis("right")
    right.set_yticks([h_y], labels=[f"H(Y) = {h_y:.3f}"], fontsize=7)
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    return points


MARKERS = "osD^vP*Xh<>p"  # a marker per layer, in order


def layer_key(fig, res: Mapping[str, np.ndarray]) -> None:
    """The layers' markers, as a legend below the figure's panels."""
    handles = [
        lines.Line2D([], [], ls="none", marker=MARKERS[i % len(MARKERS)], color="0.35", label=layer_label(res, i))
        for i in range(len(res["layer_widths"]))
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8), fontsize=8, frameon=False)


def _epoch_colours(fig, axes_by_run, runs, draw) -> None:
    """Colours runs by epoch: one shared colour bar when every run has the same length, else
    one per run (a 200-epoch run beside a 10,000-epoch one would be all one colour)."""
    lengths = [max(int(r["mi_epochs"].max()), 1) for r in runs]
    shared = colors.Normalize(0, max(lengths))
    for axes, length in zip(axes_by_run, lengths):
        norm = shared if len(set(lengths)) == 1 else colors.Normalize(0, length)
        points = [draw(ax, norm) for ax in axes][-1]
        if len(set(lengths)) > 1:
            fig.colorbar(points, ax=list(axes), label="Epochs", shrink=0.8)
    if len(set(lengths)) == 1:
        fig.colorbar(points, ax=[ax for axes in axes_by_run for ax in axes], label="Epochs")


def plane_title(res, name: str, split: str) -> str:
    seeds = res["i_xt_train"].shape[0]
    shown = str(res["test_name"]) if split == "test" and "test_name" in res else split
    return f"{name} — {shown} (N = {int(res[f'n_{split}'])}{f', mean of {seeds} seeds' if seeds > 1 else ''})"


def plane_figure(res, path: str | os.PathLike, name: str = "", seeds_faint: bool = False) -> None:
    """The information plane of each split, side by side, with one colour bar in epochs."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    norm = colors.Normalize(0, max(int(res["mi_epochs"].max()), 1))
    for ax, split in zip(axes, SPLITS):
        points = draw_plane(ax, res, split, norm, seeds_faint)
        ax.set_title(plane_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    layer_key(fig, res)
    fig.savefig(path, dpi=110)


def band(ax, epochs, x_SxE, label, color):
    mean, std = mean_std(x_SxE)
    ax.plot(epochs, mean, label=label, color=color, lw=1.2)
    if x_SxE.shape[0] > 1:
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def layers_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """I(X;T) and I(T;Y) of every layer against epoch, for both splits."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    widths = res["layer_widths"]
    palette = cm.plasma(np.linspace(0, 0.9, len(widths)))
    for col, split in enumerate(SPLITS):
        for row, what in enumerate(("i_xt", "i_ty")):
            ax = axes[row, col]
            for layer in range(len(widths)):
                band(ax, res["mi_epochs"], res[f"{what}_{split}"][:, :, layer], layer_label(res, layer), palette[layer])
            ax.set_ylabel(("I(X;T)" if what == "i_xt" else "I(T;Y)") + " [bits]")
            ax.set_title(plane_title(res, name, split), fontsize=9)
        axes[1, col].set_xlabel("epoch")
    axes[0, 1].legend(fontsize=7, loc="best")
    fig.savefig(path, dpi=110)


def training_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Loss and accuracy of both splits against epoch."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    epochs = np.arange(res["train_loss"].shape[1])
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, color in zip(SPLITS, ("tab:blue", "tab:orange")):
            band(ax, epochs, res[f"{split}_{what}"], split, color)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy [nats]" if what == "loss" else "accuracy")
        ax.legend()
    axes[0].set_title(name, fontsize=9)
    fig.savefig(path, dpi=110)


MAX_COLUMNS = 4  # panels per row in the per-estimator figures


def _panel_grid(fig: Figure, count: int, panel_w: float, panel_h: float, **kwargs):
    """`count` axes in rows of at most `MAX_COLUMNS` (the figure sized to fit), the unused
    cells of the last row hidden; returns the used axes, flat."""
    cols = min(MAX_COLUMNS, count)
    rows = -(-count // cols)
    fig.set_size_inches(panel_w * cols + 1.2, panel_h * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return list(axes[:count])


def estimators_plane_figure(res, path: str | os.PathLike, split: str, name: str = "") -> None:
    """The information plane of one split by every estimator of the run, in a grid of at most
    four panels a row, with shared epoch colours (each estimator keeps its own axes: their
    scales differ)."""
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
    fig.savefig(path, dpi=110)


def estimators_layers_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """I(X;T) of every layer against epoch, a panel per estimator and split (train, then test),
    at most four a row; the layer key below the panels, where it covers no curve."""
    names = results.estimator_names(res)
    widths = res["layer_widths"]
    palette = cm.plasma(np.linspace(0, 0.9, len(widths)))
    fig = Figure(layout="constrained")
    axes = _panel_grid(fig, 2 * len(names), 3.9, 3.1)
    for i, (estimator, split) in enumerate((e, s) for e in names for s in SPLITS):
        view = results.estimator_view(res, estimator)
        ax = axes[i]
        for layer in range(len(widths)):
            band(ax, res["mi_epochs"], view[f"i_xt_{split}"][:, :, layer], layer_label(res, layer), palette[layer])
        ax.set_title(f"{estimator}, {split}", fontsize=9)
        ax.set_ylabel("I(X;T) [bits]", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(widths), 8), fontsize=8)
    fig.suptitle(name, fontsize=9)
    fig.savefig(path, dpi=110)


def estimators_grid_figure(
    runs: Sequence[Mapping[str, np.ndarray]],
    names: Sequence[str],
    estimators: Sequence[str],
    split: str,
    path: str | os.PathLike,
) -> None:
    """A row per run and a column per estimator: the information plane of one split (seed
    means with one standard deviation), shared axes within a column; epoch colours shared when
    the runs are equally long, else one colour bar per run."""
    fig = Figure(figsize=(4.2 * len(estimators) + 1.5, 3.8 * len(runs) + 0.4), layout="constrained")
    axes = fig.subplots(len(runs), len(estimators), sharex="col", sharey="col", squeeze=False)
    for row, name in enumerate(names):
        for col, estimator in enumerate(estimators):
            axes[row, col].set_title(f"{name}: {estimator}", fontsize=9)
    cells = {id(ax): (res, e) for row, res in zip(axes, runs) for ax, e in zip(row, estimators)}
    _epoch_colours(
        fig,
        axes,
        runs,
        lambda ax, norm: draw_plane(ax, results.estimator_view(*cells[id(ax)]), split, norm),
    )
    layer_key(fig, runs[0])
    fig.savefig(path, dpi=110)


def compare_figure(runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], path: str | os.PathLike) -> None:
    """Runs side by side (columns), one row per split, on shared axes; epoch colours shared when
    the runs are equally long, else one colour bar per run."""
    fig = Figure(figsize=(5.2 * len(runs) + 1.5, 8.8), layout="constrained")
    axes = fig.subplots(2, len(runs), sharex=True, sharey=True, squeeze=False)
    cells = {}
    for col, (res, name) in enumerate(zip(runs, names)):
        for row, split in enumerate(SPLITS):
            axes[row, col].set_title(plane_title(res, name, split), fontsize=9)
            cells[id(axes[row, col])] = (res, split)
    _epoch_colours(fig, axes.T, runs, lambda ax, norm: draw_plane(ax, *cells[id(ax)], norm))
    layer_key(fig, runs[0])
    fig.savefig(path, dpi=110)
