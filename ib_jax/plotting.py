"""Figures of a run: the information plane, information per layer against epoch, and the
training curves; and two runs side by side. With several seeds, lines are seed means, and
the spread is one standard deviation (bars in the plane, bands in the curves).

Uses matplotlib's object API (`Figure`), so no pyplot state or display backend is involved.
"""

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import cm, colors
from matplotlib.figure import Figure

from ib_jax import results

SPLITS = ("train", "test")


def layer_label(res: Mapping[str, np.ndarray], layer: int) -> str:
    """ "layer 3 (1024)", or the layer's name where the run recorded names ("conv1 (1568)")."""
    name = str(res["layer_names"][layer]) if "layer_names" in res else f"layer {layer + 1}"
    return f"{name} ({int(res['layer_widths'][layer])})"


def _mean_std(x_SxE: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x_SxE.mean(axis=0), x_SxE.std(axis=0)


def draw_plane(ax, res: Mapping[str, np.ndarray], split: str, norm: colors.Normalize, seeds_faint: bool = False):
    """One information plane: a point per layer and measured epoch, coloured by epoch; the
    layers of one epoch joined by a faint line. Returns the colour mappable."""
    i_xt, i_ty = res[f"i_xt_{split}"], res[f"i_ty_{split}"]  # [S, E, L]
    epochs = res["mi_epochs"]
    x, x_std = _mean_std(i_xt)
    y, y_std = _mean_std(i_ty)
    cmap = cm.viridis
    for e in range(len(epochs)):
        ax.plot(x[e], y[e], color=cmap(norm(epochs[e])), alpha=0.15, lw=0.8, zorder=1)
    if i_xt.shape[0] > 1:
        if seeds_faint:
            for s in range(i_xt.shape[0]):
                for layer in range(i_xt.shape[2]):
                    ax.plot(i_xt[s, :, layer], i_ty[s, :, layer], color="0.6", lw=0.3, alpha=0.4, zorder=0)
        ax.errorbar(x.ravel(), y.ravel(), xerr=x_std.ravel(), yerr=y_std.ravel(), fmt="none",
                    ecolor="0.5", elinewidth=0.5, alpha=0.35, zorder=1)  # fmt: skip
    colour = np.repeat(epochs[:, None], x.shape[1], axis=1)
    points = ax.scatter(x.ravel(), y.ravel(), c=colour.ravel(), cmap=cmap, norm=norm, s=14, zorder=2,
                        edgecolors="none")  # fmt: skip
    n, h_y = int(res[f"n_{split}"]), float(res[f"h_y_{split}"])
    ax.axvline(np.log2(n), color="0.3", ls="--", lw=0.8)
    ax.axhline(h_y, color="0.3", ls=":", lw=0.8)
    ax.text(np.log2(n), 0.02, f" log2 N = {np.log2(n):.2f}", rotation=90, va="bottom", ha="right", fontsize=7,
            transform=ax.get_xaxis_transform())  # fmt: skip
    ax.text(0.01, h_y, f"H(Y) = {h_y:.3f}", va="bottom", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    return points


def _title(res, name: str, split: str) -> str:
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
        ax.set_title(_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    fig.savefig(path, dpi=110)


def _band(ax, epochs, x_SxE, label, color):
    mean, std = _mean_std(x_SxE)
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
                _band(ax, res["mi_epochs"], res[f"{what}_{split}"][:, :, layer], layer_label(res, layer),
                      palette[layer])  # fmt: skip
            ax.set_ylabel(("I(X;T)" if what == "i_xt" else "I(T;Y)") + " [bits]")
            ax.set_title(_title(res, name, split), fontsize=9)
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
            _band(ax, epochs, res[f"{split}_{what}"], split, color)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy [nats]" if what == "loss" else "accuracy")
        ax.legend()
    axes[0].set_title(name, fontsize=9)
    fig.savefig(path, dpi=110)


def estimators_plane_figure(res, path: str | os.PathLike, split: str, name: str = "") -> None:
    """The information plane of one split by every estimator of the run, side by side, with
    shared epoch colours (each estimator keeps its own axes: their scales differ)."""
    names = results.estimator_names(res)
    fig = Figure(figsize=(4.6 * len(names) + 1, 4.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    norm = colors.Normalize(0, max(int(res["mi_epochs"].max()), 1))
    for ax, estimator in zip(axes, names):
        points = draw_plane(ax, results.estimator_view(res, estimator), split, norm)
        ax.set_title(estimator, fontsize=10)
    fig.suptitle(_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    fig.savefig(path, dpi=110)


def estimators_layers_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """I(X;T) of every layer against epoch: a column per estimator, a row per split."""
    names = results.estimator_names(res)
    widths = res["layer_widths"]
    palette = cm.plasma(np.linspace(0, 0.9, len(widths)))
    fig = Figure(figsize=(4.2 * len(names) + 1, 7), layout="constrained")
    axes = fig.subplots(2, len(names), sharex=True, squeeze=False)
    for col, estimator in enumerate(names):
        view = results.estimator_view(res, estimator)
        for row, split in enumerate(SPLITS):
            ax = axes[row, col]
            for layer in range(len(widths)):
                _band(ax, res["mi_epochs"], view[f"i_xt_{split}"][:, :, layer], layer_label(res, layer),
                      palette[layer])  # fmt: skip
            ax.set_title(f"{estimator}, {split}", fontsize=9)
            ax.set_ylabel("I(X;T) [bits]")
        axes[1, col].set_xlabel("epoch")
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.suptitle(name, fontsize=9)
    fig.savefig(path, dpi=110)


def save_run_figures(
    res, output_dir: str | os.PathLike, name: str = "", seeds_faint: bool = False
) -> list[pathlib.Path]:
    """The run's figures (of its first estimator), and with several estimators their planes
    side by side per split and I(X;T) per layer per estimator."""
    out = pathlib.Path(output_dir)
    paths = [out / "information_plane.png", out / "information_per_layer.png", out / "training.png"]
    plane_figure(res, paths[0], name, seeds_faint)
    layers_figure(res, paths[1], name)
    training_figure(res, paths[2], name)
    if "grad_mean_norm" in res and res["grad_mean_norm"].shape[1] > 1:
        paths.append(out / "gradients.png")
        gradients_figure(res, paths[-1], name)
    if len(results.estimator_names(res)) > 1:
        for split in SPLITS:
            paths.append(out / f"information_plane_estimators_{split}.png")
            estimators_plane_figure(res, paths[-1], split, name)
        paths.append(out / "information_per_layer_estimators.png")
        estimators_layers_figure(res, paths[-1], name)
    return paths


def estimators_grid_figure(
    runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], estimators: Sequence[str], split: str,
    path: str | os.PathLike,
) -> None:  # fmt: skip
    """A row per run and a column per estimator: the information plane of one split (seed
    means with one standard deviation), shared epoch colours, shared axes within a column."""
    fig = Figure(figsize=(4.2 * len(estimators) + 1, 3.8 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), len(estimators), sharex="col", sharey="col", squeeze=False)
    norm = colors.Normalize(0, max(max(int(r["mi_epochs"].max()), 1) for r in runs))
    for row, (res, name) in enumerate(zip(runs, names)):
        for col, estimator in enumerate(estimators):
            points = draw_plane(axes[row, col], results.estimator_view(res, estimator), split, norm)
            axes[row, col].set_title(f"{name}: {estimator}", fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    fig.savefig(path, dpi=110)


def compare_figure(runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], path: str | os.PathLike) -> None:
    """Runs side by side (columns), one row per split, on shared axes and colour scale."""
    fig = Figure(figsize=(5.2 * len(runs) + 1, 8.4), layout="constrained")
    axes = fig.subplots(2, len(runs), sharex=True, sharey=True, squeeze=False)
    norm = colors.Normalize(0, max(max(int(r["mi_epochs"].max()), 1) for r in runs))
    for col, (res, name) in enumerate(zip(runs, names)):
        for row, split in enumerate(SPLITS):
            points = draw_plane(axes[row, col], res, split, norm)
            axes[row, col].set_title(_title(res, name, split), fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs")
    fig.savefig(path, dpi=110)


def _condition_views(res) -> list[tuple[str, dict]]:
    return [
        (results.condition_label(c, p), results.row_view(res, results.condition_rows(res, c, p)))
        for c, p in results.conditions(res)
    ]


def zhang_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Zhang et al.'s figure 1 for one sweep: (a) training loss per condition against epoch;
    (b) epochs to fit against the label corruption p, absolute and relative to true labels;
    (c) test error against p. Seed means with one standard deviation; the conditions without a
    p (permuted labels, input corruptions) appear as labelled horizontal lines in (b) and (c)."""
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    views = _condition_views(res)
    palette = cm.tab10(np.linspace(0, 1, 10))
    for i, (label, view) in enumerate(views):
        _band(axes[0], np.arange(view["train_loss"].shape[1]), view["train_loss"], label, palette[i % 10])
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss (cross-entropy, nats)")
    axes[0].set_title("(a) training loss", fontsize=10)
    axes[0].legend(fontsize=7)

    def by_p(values_of):
        pts = [(float(v["corruption"][0]) if str(v["condition"][0]) == "labels" else 0.0, values_of(v))
               for label, v in views if str(v["condition"][0]) in ("true", "labels")]  # fmt: skip
        pts.sort(key=lambda t: t[0])
        return pts

    def others(values_of):
        return [(label, values_of(v)) for label, v in views if str(v["condition"][0]) not in ("true", "labels")]

    def fit(v):
        e = v["epochs_to_fit"].astype(float)
        return np.where(e >= 0, e, np.nan)

    base = next((np.nanmean(fit(v)) for _, v in views if str(v["condition"][0]) == "true"), np.nan)
    ax, rel = axes[1], axes[1].twinx()
    pts = by_p(fit)
    if pts:
        p = np.array([t[0] for t in pts])
        mean = np.array([np.nanmean(t[1]) if np.isfinite(t[1]).any() else np.nan for t in pts])
        std = np.array([np.nanstd(t[1]) if np.isfinite(t[1]).any() else np.nan for t in pts])
        ax.errorbar(p, mean, yerr=std, marker="o", color="tab:blue", capsize=3, label="label corruption")
        rel.set_ylim(*(np.array(ax.get_ylim()) / base if np.isfinite(base) and base > 0 else (0, 1)))
        for x, m, t in zip(p, mean, pts):
            unfit = int(np.sum(~np.isfinite(t[1])))
            if unfit:
                ax.annotate(f"{unfit} not fitted", (x, m if np.isfinite(m) else 0), fontsize=7, color="tab:red")
    for i, (label, values) in enumerate(others(fit)):
        if np.isfinite(values).any():
            ax.axhline(np.nanmean(values), color=palette[(i + 3) % 10], ls="--", lw=1, label=label)
    ax.set_xlabel("label corruption p")
    ax.set_ylabel(f"epochs to reach {float(res.get('fit_threshold', 0.99)):.0%} train accuracy")
    rel.set_ylabel("relative to true labels")
    ax.set_title("(b) time to fit", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")

    def test_error(v):
        return 1.0 - (v["final_test_accuracy"] if "final_test_accuracy" in v else v["test_accuracy"][:, -1])

    pts = by_p(test_error)
    if pts:
        axes[2].errorbar([t[0] for t in pts], [t[1].mean() for t in pts], yerr=[t[1].std() for t in pts],
                         marker="o", capsize=3, label="label corruption")  # fmt: skip
    for i, (label, values) in enumerate(others(test_error)):
        axes[2].axhline(values.mean(), color=palette[(i + 3) % 10], ls="--", lw=1, label=label)
    axes[2].axhline(0.9, color="0.4", ls=":", lw=0.8)
    axes[2].text(0.0, 0.9, " chance", fontsize=7, va="bottom")
    axes[2].set_xlabel("label corruption p")
    axes[2].set_ylabel("test error")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("(c) test error", fontsize=10)
    axes[2].legend(fontsize=7, loc="lower right")
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
        axes[0, col].set_title(_title(res, name, split), fontsize=9)
        widths = res["layer_widths"]
        last = range(max(len(widths) - 5, 0), len(widths))
        palette = cm.plasma(np.linspace(0, 0.9, len(last)))
        for color, layer in zip(palette, last):
            _band(axes[1, col], res["mi_epochs"], res[f"i_xt_{split}"][:, :, layer],
                  layer_label(res, layer), color)  # fmt: skip
        axes[1, col].set_xlabel("epoch")
        axes[1, col].set_ylabel("I(X;T) [bits]")
        axes[1, col].legend(fontsize=7)
    axes[1, 1].sharey(axes[1, 0])
    fig.colorbar(points, ax=axes[0, :], label="Epochs")
    fig.savefig(path, dpi=110)


def save_sweep_figures(res, output_dir: str | os.PathLike, name: str = "") -> list[pathlib.Path]:
    """A memorization sweep's figures: Zhang's three panels, the plane of every condition (both
    splits), the headline (true vs random labels), and the training curves per condition."""
    out = pathlib.Path(output_dir)
    paths = [out / "zhang.png", out / "information_plane_conditions_train.png",
             out / "information_plane_conditions_test.png"]  # fmt: skip
    zhang_figure(res, paths[0], name)
    conditions_plane_figure(res, paths[1], "train", name)
    conditions_plane_figure(res, paths[2], "test", name)
    views = dict(_condition_views(res))
    random = next((k for k in ("permuted", "labels p=1") if k in views), None)
    if "true" in views and random:
        paths.append(out / "headline.png")
        headline_figure([views["true"], views[random]], ["true labels", f"random labels ({random})"], paths[-1])
    return paths


def snr_crossings(res) -> list[int | None]:
    """Per layer, the first measured epoch (after epoch 0) at which the SNR |mean gradient| /
    |std| (geometric mean over seeds, as drawn) falls below 1; None where it never does."""
    snr = np.exp(np.mean(np.log(res["grad_mean_norm"] / res["grad_std_norm"]), axis=0))  # [E, L]; NaN at the end
    epochs = res["mi_epochs"]
    out = []
    for layer in range(snr.shape[1]):
        below = np.flatnonzero((epochs > 0) & (snr[:, layer] < 1.0))
        out.append(int(epochs[below[0]]) if below.size else None)
    return out


def _log_band(ax, epochs, x_SxE, label, color, ls="-"):
    """For log axes: the geometric mean over seeds, and a band of one geometric standard
    deviation (x / and x the factor), which stays positive."""
    logs = np.log(x_SxE)
    mean, std = logs.mean(axis=0), logs.std(axis=0)
    ax.plot(epochs, np.exp(mean), label=label, color=color, lw=1.2 if ls == "-" else 1.0, ls=ls)
    if x_SxE.shape[0] > 1:
        ax.fill_between(epochs, np.exp(mean - std), np.exp(mean + std), color=color, alpha=0.15, lw=0)


def gradients_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Shwartz-Ziv & Tishby's gradient picture: per layer, the norms of the mean and of the
    standard deviation of the kernel gradients against epoch (log-log; solid mean, dashed std;
    geometric mean over seeds with a band of one geometric standard deviation), and their
    ratio, the SNR, with the epoch where each layer's SNR first falls below 1 marked and stated
    in the legend."""
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    widths = res["layer_widths"]
    palette = cm.plasma(np.linspace(0, 0.9, len(widths)))
    epochs = res["mi_epochs"]
    keep = (epochs > 0) & np.all(np.isfinite(res["grad_mean_norm"]), axis=(0, 2))  # log axes; the final has none
    snr = res["grad_mean_norm"] / res["grad_std_norm"]
    crossings = snr_crossings(res)
    for layer in range(len(widths)):
        color = palette[layer]
        _log_band(axes[0], epochs[keep], res["grad_mean_norm"][:, keep, layer], layer_label(res, layer), color)
        _log_band(axes[0], epochs[keep], res["grad_std_norm"][:, keep, layer], None, color, ls="--")
        cross = crossings[layer]
        label = f"layer {layer + 1}: SNR < 1 at epoch {cross}" if cross is not None else f"layer {layer + 1}: SNR ≥ 1"
        _log_band(axes[1], epochs[keep], snr[:, keep, layer], label, color)
        if cross is not None:
            axes[1].axvline(cross, color=color, lw=0.8, ls=":")
    axes[1].axhline(1.0, color="0.3", lw=0.8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("gradient norm (solid: |mean|, dashed: |std|)")
    axes[1].set_ylabel("SNR = |mean| / |std|")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    axes[0].set_title(f"{name} — kernel gradients over each epoch's batches", fontsize=9)
    axes[1].set_title("signal-to-noise ratio", fontsize=9)
    fig.savefig(path, dpi=110)


def plane_animation(res, path: str | os.PathLike, split: str, name: str = "", max_frames: int = 200) -> None:
    """The information plane as a GIF (matplotlib's Pillow writer): a frame per measured epoch
    (at most `max_frames`, evenly chosen), the current epoch's layers joined, earlier points
    fading, the epoch in the corner, axes fixed across frames; seed means."""
    from matplotlib import animation  # pylint: disable=g-import-not-at-top
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top

    x, y = res[f"i_xt_{split}"].mean(axis=0), res[f"i_ty_{split}"].mean(axis=0)  # [E, L]
    epochs = res["mi_epochs"]
    frames = np.unique(np.linspace(0, len(epochs) - 1, min(len(epochs), max_frames)).round().astype(int))
    fig = Figure(figsize=(6.4, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    pad_x, pad_y = 0.05 * (np.ptp(x) + 1e-3), 0.05 * (np.ptp(y) + 1e-3)
    ax.set_xlim(x.min() - pad_x, x.max() + pad_x)
    ax.set_ylim(y.min() - pad_y, y.max() + pad_y)
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(_title(res, name, split), fontsize=9)
    norm = colors.Normalize(0, max(int(epochs.max()), 1))
    past = ax.scatter([], [], s=10, edgecolors="none")
    (line,) = ax.plot([], [], color="k", lw=1.2, zorder=3)
    current = ax.scatter([], [], s=30, c="k", zorder=4)
    label = ax.text(0.98, 0.03, "", transform=ax.transAxes, ha="right", fontsize=11)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cm.viridis), ax=ax, label="Epochs")

    def update(frame):
        shown = slice(0, frame + 1)
        points = np.stack([x[shown].ravel(), y[shown].ravel()], axis=1)
        age = (frame - np.repeat(np.arange(frame + 1), x.shape[1])) / max(frame, 1)
        rgba = cm.viridis(norm(np.repeat(epochs[shown], x.shape[1])))
        rgba[:, 3] = 0.15 + 0.85 * (1.0 - age)
        past.set_offsets(points)
        past.set_facecolors(rgba)
        line.set_data(x[frame], y[frame])
        current.set_offsets(np.stack([x[frame], y[frame]], axis=1))
        label.set_text(f"epoch {int(epochs[frame])}")
        return past, line, current, label

    anim = animation.FuncAnimation(fig, update, frames=frames)
    anim.save(str(path), writer=animation.PillowWriter(fps=10))


def save_animations(res, output_dir: str | os.PathLike, name: str = "") -> list[pathlib.Path]:
    out = pathlib.Path(output_dir)
    paths = [out / f"information_plane_{split}.gif" for split in SPLITS]
    for split, path in zip(SPLITS, paths):
        plane_animation(res, path, split, name)
    return paths
