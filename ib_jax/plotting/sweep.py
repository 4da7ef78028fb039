"""Figures of a memorization sweep (conditions x seeds): Zhang et al.'s three panels, every
condition's plane, and the reimplemented project's headline (true vs random labels)."""

import os
import pathlib

import numpy as np
from matplotlib import cm, colors
from matplotlib.figure import Figure

from ib_jax import results
from ib_jax.plotting.plane import band, draw_plane, layer_key, layer_label, plane_title


def _condition_views(res) -> list[tuple[str, dict]]:
    return [
        (results.condition_label(c, p), results.row_view(res, results.condition_rows(res, c, p)))
        for c, p in results.conditions(res)
    ]


def _by_p(views, values_of):
    """(p, values) of the true-label and label-corruption conditions, sorted by p (true: 0)."""
    pts = [
        (float(v["corruption"][0]) if str(v["condition"][0]) == "labels" else 0.0, values_of(v))
        for _, v in views
        if str(v["condition"][0]) in ("true", "labels")
    ]
    return sorted(pts, key=lambda t: t[0])


def _others(views, values_of):
    """(label, values) of the conditions without a p: permuted labels, input corruptions."""
    return [(label, values_of(v)) for label, v in views if str(v["condition"][0]) not in ("true", "labels")]


def _fit(v):
    e = v["epochs_to_fit"].astype(float)
    return np.where(e >= 0, e, np.nan)


def _test_error(v):
    return 1.0 - (v["final_test_accuracy"] if "final_test_accuracy" in v else v["test_accuracy"][:, -1])


def _loss_panel(ax, views, palette) -> None:
    for i, (label, view) in enumerate(views):
        band(ax, np.arange(view["train_loss"].shape[1]), view["train_loss"], label, palette[i % 10])
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.set_title("(a) training loss", fontsize=10)
    ax.legend(fontsize=7)


def _fit_panel(ax, views, palette, threshold: float):
    """Panel (b); returns its right axis (epochs relative to the true labels' mean), or None
    without a fitted true-label condition. The right axis is a function of the left one, so it
    stays right whatever later stretches the left axis."""
    base = next((np.nanmean(_fit(v)) for _, v in views if str(v["condition"][0]) == "true"), np.nan)
    rel = None
    if np.isfinite(base) and base > 0:
        rel = ax.secondary_yaxis("right", functions=(lambda y: y / base, lambda r: r * base))
        rel.set_ylabel("relative to true labels")
    pts = _by_p(views, _fit)
    if pts:
        p = np.array([t[0] for t in pts])
        mean = np.array([np.nanmean(t[1]) if np.isfinite(t[1]).any() else np.nan for t in pts])
        std = np.array([np.nanstd(t[1]) if np.isfinite(t[1]).any() else np.nan for t in pts])
        ax.errorbar(p, mean, yerr=std, marker="o", color="tab:blue", capsize=3, label="label corruption")
        for x, m, t in zip(p, mean, pts):
            unfit = int(np.sum(~np.isfinite(t[1])))
            if unfit:
                ax.annotate(f"{unfit} not fitted", (x, m if np.isfinite(m) else 0), fontsize=7, color="tab:red")
    for i, (label, values) in enumerate(_others(views, _fit)):
        if np.isfinite(values).any():
            ax.axhline(np.nanmean(values), color=palette[(i + 3) % 10], ls="--", lw=1, label=label)
    ax.set_xlabel("label corruption p")
    ax.set_ylabel(f"epochs to reach {threshold:.0%} train accuracy")
    ax.set_title("(b) time to fit", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return rel


def _error_panel(ax, views, palette) -> None:
    pts = _by_p(views, _test_error)
    if pts:
        ax.errorbar(
            [t[0] for t in pts],
            [t[1].mean() for t in pts],
            yerr=[t[1].std() for t in pts],
            marker="o",
            capsize=3,
            label="label corruption",
        )
    for i, (label, values) in enumerate(_others(views, _test_error)):
        ax.axhline(values.mean(), color=palette[(i + 3) % 10], ls="--", lw=1, label=label)
    ax.axhline(0.9, color="0.4", ls=":", lw=0.8)
    ax.text(0.0, 0.9, " chance", fontsize=7, va="bottom")
    ax.set_xlabel("label corruption p")
    ax.set_ylabel("test error")
    ax.set_ylim(0, 1)
    ax.set_title("(c) test error", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")


def zhang_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Zhang et al.'s figure 1 for one sweep: (a) training loss per condition against epoch;
    (b) epochs to fit against the label corruption p, absolute and relative to true labels;
    (c) test error against p. Seed means with one standard deviation; the conditions without a
    p (permuted labels, input corruptions) appear as labelled horizontal lines in (b) and (c)."""
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    views = _condition_views(res)
    palette = cm.tab10(np.linspace(0, 1, 10))
    _loss_panel(axes[0], views, palette)
    _fit_panel(axes[1], views, palette, float(res.get("fit_threshold", 0.99)))
    _error_panel(axes[2], views, palette)
    fig.suptitle(name, fontsize=9)
    fig.savefig(path, dpi=110)


def conditions_plane_figure(res, path: str | os.PathLike, split: str = "train", name: str = "") -> None:
    """The information plane of every condition of a sweep (seed means), shared axes and epoch
    colours."""
    views = _condition_views(res)
    cols = min(len(views), 5)
    rows = -(-len(views) // cols)
    fig = Figure(figsize=(3.6 * cols + 1, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    norm = colors.Normalize(0, max(int(res["mi_epochs"].max()), 1))
    for ax, (label, view) in zip(axes.ravel(), views):
        points = draw_plane(ax, view, split, norm)
        ax.set_title(label, fontsize=9)
    for ax in axes.ravel()[len(views) :]:
        ax.set_visible(False)
    fig.colorbar(points, ax=axes, label="Epochs")
    layer_key(fig, res)
    fig.suptitle(f"{name} — {split} split", fontsize=9)
    fig.savefig(path, dpi=110)


def headline_figure(runs, names, path: str | os.PathLike, split: str = "train") -> None:
    """The reimplemented project's headline, 2 x 2: two runs (true vs random labels) as
    columns; top, the information plane; bottom, I(X;T) of the last five layers against epoch."""
    fig = Figure(figsize=(12, 8.6), layout="constrained")
    axes = fig.subplots(2, 2)
    norm = colors.Normalize(0, max(max(int(r["mi_epochs"].max()), 1) for r in runs))
    for col, (res, name) in enumerate(zip(runs, names)):
        points = draw_plane(axes[0, col], res, split, norm)
        axes[0, col].set_title(plane_title(res, name, split), fontsize=9)
        widths = res["layer_widths"]
        last = range(max(len(widths) - 5, 0), len(widths))
        palette = cm.plasma(np.linspace(0, 0.9, len(last)))
        for color, layer in zip(palette, last):
            band(axes[1, col], res["mi_epochs"], res[f"i_xt_{split}"][:, :, layer], layer_label(res, layer), color)
        axes[1, col].set_xlabel("epoch")
        axes[1, col].set_ylabel("I(X;T) [bits]")
        axes[1, col].legend(fontsize=7)
    axes[1, 1].sharey(axes[1, 0])
    fig.colorbar(points, ax=axes[0, :], label="Epochs")
    layer_key(fig, runs[0])  # the planes' markers
    fig.savefig(path, dpi=110)


def save_sweep_figures(res, output_dir: str | os.PathLike, name: str = "") -> list[pathlib.Path]:
    """A memorization sweep's figures: Zhang's three panels, the plane of every condition (both
    splits), the headline (true vs random labels), and the training curves per condition."""
    out = pathlib.Path(output_dir)
    paths = [
        out / "zhang.png",
        out / "information_plane_conditions_train.png",
        out / "information_plane_conditions_test.png",
    ]
    zhang_figure(res, paths[0], name)
    conditions_plane_figure(res, paths[1], "train", name)
    conditions_plane_figure(res, paths[2], "test", name)
    views = dict(_condition_views(res))
    random = next((k for k in ("permuted", "labels p=1") if k in views), None)
    if "true" in views and random:
        paths.append(out / "headline.png")
        headline_figure([views["true"], views[random]], ["true labels", f"random labels ({random})"], paths[-1])
    return paths
