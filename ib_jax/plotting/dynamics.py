"""Training dynamics: gradient signal-to-noise per layer (Shwartz-Ziv & Tishby; Saxe et al.) and
the information plane as a movie (GIF)."""

import os
import pathlib

import numpy as np
import PIL.Image
from matplotlib import cm, colors
from matplotlib.figure import Figure

from ib_jax.plotting.keys import SPLITS, layer_colours, layer_label, titled
from ib_jax.plotting.plane import DPI, plane_title


def snr_crossings(res) -> list[int | None]:
    """Per layer, the first measured epoch (after epoch 0) at which the SNR |mean gradient| /
    |std| (geometric mean over seeds, as drawn) falls below 1; None where it never does."""
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN at the final epoch (and in a diverged run)
        snr = np.exp(np.mean(np.log(res["grad_mean_norm"] / res["grad_std_norm"]), axis=0))  # [E, L]
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


def gradient_epochs(res) -> np.ndarray:
    """[E] bool: the measured epochs the (log-log) gradient figure can show: after epoch 0, with
    finite statistics (the final network has none)."""
    return (res["mi_epochs"] > 0) & np.all(np.isfinite(res["grad_mean_norm"]), axis=(0, 2))


def gradients_figure(res, path: str | os.PathLike, name: str = "") -> None:
    """Shwartz-Ziv & Tishby's gradient picture: per layer, the norms of the mean and of the
    standard deviation of the kernel gradients against epoch (log-log; solid mean, dashed std;
    geometric mean over seeds with a band of one geometric standard deviation), and their
    ratio, the SNR, with the epoch where each layer's SNR first falls below 1 marked and stated
    in the legend."""
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    widths = res["layer_widths"]
    palette = layer_colours(len(widths))
    epochs = res["mi_epochs"]
    keep = gradient_epochs(res)
    if keep.sum() < 2:
        raise ValueError("fewer than two measured epochs after 0 have gradient statistics: no curve to draw")
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = res["grad_mean_norm"] / res["grad_std_norm"]
    crossings = snr_crossings(res)
    for layer in range(len(widths)):
        color = palette[layer]
        _log_band(axes[0], epochs[keep], res["grad_mean_norm"][:, keep, layer], layer_label(res, layer), color)
        _log_band(axes[0], epochs[keep], res["grad_std_norm"][:, keep, layer], None, color, ls="--")
        cross = crossings[layer]
        name_ = layer_label(res, layer)
        label = f"{name_}: SNR < 1 at epoch {cross}" if cross is not None else f"{name_}: SNR ≥ 1"
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
    axes[0].set_title(titled(res, name, "kernel gradients over each epoch's batches"), fontsize=9)
    axes[1].set_title("signal-to-noise ratio", fontsize=9)
    fig.savefig(path, dpi=DPI)


def plane_animation(res, path: str | os.PathLike, split: str, name: str = "", max_frames: int = 200) -> None:
    """The information plane as a GIF (Pillow, 10 frames a second): a frame per measured epoch
    (at most `max_frames`, evenly chosen), the current epoch's layers joined, earlier points
    fading, the epoch in the corner, axes fixed across frames; seed means."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top

    x, y = res[f"i_xt_{split}"].mean(axis=0), res[f"i_ty_{split}"].mean(axis=0)  # [E, L]
    epochs = res["mi_epochs"]
    frames = np.unique(np.linspace(0, len(epochs) - 1, min(len(epochs), max_frames)).round().astype(int))
    fig = Figure(figsize=(6.4, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for values, set_lim in ((x, ax.set_xlim), (y, ax.set_ylim)):  # the finite values (a diverged run has NaN)
        shown = values[np.isfinite(values)]
        lo, hi = (shown.min(), shown.max()) if shown.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo + 1e-3)
        set_lim(lo - pad, hi + pad)
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(plane_title(res, name, split), fontsize=9)
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

    # Each frame drawn once (matplotlib's FuncAnimation.save draws every frame twice), at the
    # figure's dpi; the first frame's layout serves all, whose axes and limits are fixed.
    images, size = [], fig.canvas.get_width_height()
    for i, frame in enumerate(frames):
        update(frame)
        fig.canvas.draw()
        if i == 0:
            fig.set_layout_engine("none")
        images.append(PIL.Image.frombuffer("RGBA", size, fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).copy())
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def save_animations(res, output_dir: str | os.PathLike, name: str = "") -> list[pathlib.Path]:
    out = pathlib.Path(output_dir)
    paths = [out / f"information_plane_{split}.gif" for split in SPLITS]
    for split, path in zip(SPLITS, paths):
        plane_animation(res, path, split, name)
    return paths
