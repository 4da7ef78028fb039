"""Figures of a memorization sweep (conditions x seeds): Zhang et al.'s three panels, every
condition's plane, the reimplemented project's headline (true vs random labels), and with a
probe what it decodes from each layer per condition."""

import os
import pathlib

import numpy as np
from matplotlib import cm, colors, transforms
from matplotlib.figure import Figure

from ib_jax import outcome, results
from ib_jax.plotting.keys import MARKERS, layer_colours, layer_key, layer_keys, layer_label, run_title, titled
from ib_jax.plotting.plane import DPI, band, draw_plane, layer_curves, plane_title


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
    stays right whatever later stretches the left axis. p spans [0, 1] and epochs start at 0; a
    p whose rows did not all fit says how many did not, and a panel where no row fitted says so."""
    base = next((np.nanmean(_fit(v)) for _, v in views if str(v["condition"][0]) == "true" and _fitted(v)), np.nan)
    rel = None
    if np.isfinite(base) and base > 0:
        rel = ax.secondary_yaxis("right", functions=(lambda y: y / base, lambda r: r * base))
        rel.set_ylabel("relative to true labels")
    pts = _by_p(views, _fit)
    if pts:
        p = np.array([t[0] for t in pts])
        fitted = [t[1][np.isfinite(t[1])] for t in pts]
        mean = np.array([f.mean() if f.size else np.nan for f in fitted])
        std = np.array([f.std() if f.size else np.nan for f in fitted])
        if np.isfinite(mean).any():
            ax.errorbar(p, mean, yerr=std, marker="o", color="tab:blue", capsize=3, label="label corruption")
        top = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        for x, m, t in zip(p, mean, pts):
            unfit = int(np.sum(~np.isfinite(t[1])))
            if unfit and np.isfinite(m):
                ax.annotate(f"{unfit}/{len(t[1])} not fitted", (x, m), fontsize=7, color="tab:red")
            elif unfit:  # no row of this p fitted: no point to draw, so the count stands at the top
                ax.text(
                    x,
                    0.97,
                    f"{unfit}/{len(t[1])}\nnot fitted",
                    transform=top,
                    ha="right" if x > 0.9 else ("left" if x < 0.1 else "center"),  # inside the panel
                    va="top",
                    fontsize=7,
                    color="tab:red",
                )
    for i, (label, values) in enumerate(_others(views, _fit)):
        unfit = int(np.sum(~np.isfinite(values)))
        color = palette[(i + 3) % 10]
        if np.isfinite(values).any():
            note = f" ({unfit}/{len(values)} not fitted)" if unfit else ""
            ax.axhline(np.nanmean(values), color=color, ls="--", lw=1, label=label + note)
        else:  # in the legend, with no line
            ax.plot([], [], color=color, ls=":", lw=1, label=f"{label} ({unfit}/{len(values)} not fitted)")
    total = sum(len(v["epochs_to_fit"]) for _, v in views)
    if not any(_fitted(v) for _, v in views):
        ax.text(
            0.5,
            0.5,
            f"no row reached {threshold:.0%} train accuracy\n({total} rows)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="tab:red",
        )
        ax.set_ylim(0, 1)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("label corruption p")
    ax.set_ylabel(f"epochs to reach {threshold:.0%} train accuracy")
    ax.set_title("(b) time to fit", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")
    return rel


def _fitted(view) -> bool:
    return bool(np.isfinite(_fit(view)).any())


def _error_panel(ax, views, palette, num_classes: int) -> None:
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
    chance = 1.0 - 1.0 / num_classes
    ax.axhline(chance, color="0.4", ls=":", lw=0.8)
    # Named outside the plotting area, where no line can run through the label.
    right = ax.secondary_yaxis("right")
    right.set_yticks([chance], labels=[f"chance ({chance:.2f})"], fontsize=7)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("label corruption p")
    ax.set_ylabel("test error")
    ax.set_ylim(0, 1)
    ax.set_title("(c) test error", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")


def zhang_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Zhang et al.'s figure 1 for one sweep: (a) training loss per condition against epoch;
    (b) epochs to fit against the label corruption p, absolute and relative to true labels;
    (c) test error against p, with chance (1 - 1/K; K = 10 for folders that did not record it).
    Seed means with one standard deviation; the conditions without a p (permuted labels, input
    corruptions) appear as labelled horizontal lines in (b) and (c)."""
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    views = _condition_views(res)
    palette = cm.tab10(np.linspace(0, 1, 10))
    _loss_panel(axes[0], views, palette)
    _fit_panel(axes[1], views, palette, float(res.get("fit_threshold", 0.99)))
    _error_panel(axes[2], views, palette, int(res["num_classes"]) if "num_classes" in res else 10)
    fig.suptitle(run_title(res, name), fontsize=9)
    fig.savefig(path, dpi=DPI)


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
    fig.suptitle(titled(res, name, f"{split} split"), fontsize=9)
    fig.savefig(path, dpi=DPI)


def headline_figure(runs, names, path: str | os.PathLike, split: str = "train") -> None:
    """The reimplemented project's headline, 2 x 2: two runs (true vs random labels) as
    columns; top, the information plane; bottom, I(X;T) of the last five layers against epoch
    (each layer the colour and marker of its curves elsewhere)."""
    for res, name in zip(runs, names):
        outcome.single_condition(res, name)
    fig = Figure(figsize=(12, 9.4), layout="constrained")
    axes = fig.subplots(2, 2)
    norm = colors.Normalize(0, max(max(int(r["mi_epochs"].max()), 1) for r in runs))
    for col, (res, name) in enumerate(zip(runs, names)):
        points = draw_plane(axes[0, col], res, split, norm)
        axes[0, col].set_title(plane_title(res, name, split), fontsize=9)
        widths = res["layer_widths"]
        layer_curves(axes[1, col], res, f"i_xt_{split}", range(max(len(widths) - 5, 0), len(widths)))
        axes[1, col].set_xlabel("epoch")
        axes[1, col].set_ylabel("I(X;T) [bits]")
        axes[1, col].legend(fontsize=7)
    axes[1, 1].sharey(axes[1, 0])
    fig.colorbar(points, ax=axes[0, :], label="Epochs")
    layer_keys(fig, runs, names, axes.T)
    fig.savefig(path, dpi=DPI)


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
    for estimator in results.estimator_names(res):
        if f"{estimator}.accuracy_train" in res:  # a probe: what it decodes per layer, per condition
            paths.append(out / ("decodable_sweep" + ("" if estimator == "probe" else f"_{estimator}") + ".png"))
            decodable_sweep_figure(res, paths[-1], estimator, name)
    return paths


def decodable_sweep_figure(res, path: str | os.PathLike, estimator: str = "probe", name: str = "") -> None:
    """What a held-out probe decodes from each layer of the last measured network, per condition
    (seed means with one standard deviation): of each row's own training labels (left), of the
    true test labels (right); H(Y) dotted."""
    views = _condition_views(res)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    count = len(res["layer_widths"])
    palette = layer_colours(count)
    x = np.arange(len(views))
    epoch = int(res["mi_epochs"][-1])
    for ax, split in zip(axes, ("train", "test")):
        for layer in range(count):
            values = [results.estimator_view(v, estimator)[f"i_ty_{split}"][:, -1, layer] for _, v in views]
            ax.errorbar(
                x + 0.04 * (layer - (count - 1) / 2),
                [v.mean() for v in values],
                yerr=[v.std() for v in values],
                marker=MARKERS[layer % len(MARKERS)],
                color=palette[layer],
                lw=1.0,
                ms=5,
                capsize=2,
                label=layer_label(res, layer),
            )
        ax.axhline(float(res[f"h_y_{split}"]), color="0.3", ls=":", lw=0.8)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xticks(x, [label for label, _ in views], rotation=30, ha="right", fontsize=8)
        what = (
            "each row's own training labels" if split == "train" else f"the true {res.get('test_name', 'test')} labels"
        )
        ax.set_title(f"{split} split: {what}, epoch {epoch}", fontsize=9)
    axes[0].set_ylabel(f"I(T;Y) [bits], {estimator} (held out)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(count, 4), fontsize=8, frameon=False)
    fig.suptitle(run_title(res, name), fontsize=9)
    fig.savefig(path, dpi=DPI)
