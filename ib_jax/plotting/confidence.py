"""How sure the points of a figure are: bootstrap error bars and the permutation null in the
planes and curves (`draw_confidence`, `mean_se`), and each estimate against the number of samples
(`convergence_figure`)."""

import os
from collections.abc import Mapping

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from ib_jax import outcome, results
from ib_jax.plotting.keys import DPI, MARKERS, curves_key, layer_colours, layer_label, titled


def mean_se(se_SxE: np.ndarray) -> np.ndarray:
    """The bootstrap standard error of a mean over seeds, sqrt(sum SE^2) / S (seeds measured
    independently)."""
    se = np.asarray(se_SxE, np.float64)
    return np.sqrt(np.sum(se**2, axis=0)) / se.shape[0]


SE_BARS = 2.0  # bootstrap error bars span +- this many standard errors (about 95%)


def draw_confidence(ax, res: Mapping[str, np.ndarray], split: str) -> list[str]:
    """The bootstrap error bars (+- `SE_BARS` standard errors of the seed mean) of each point of a
    plane, and its permutation null (a grey bar from the null's mean to its 95th percentile of
    I(T;Y) at the point's I(T;Y) position); returns what was drawn, for the panel's note."""
    drawn = []
    x, y = res[f"i_xt_{split}"].mean(axis=0), res[f"i_ty_{split}"].mean(axis=0)
    if f"i_ty_{split}_se" in res:
        xerr = SE_BARS * mean_se(res[f"i_xt_{split}_se"]) if f"i_xt_{split}_se" in res else None
        yerr = SE_BARS * mean_se(res[f"i_ty_{split}_se"])
        if xerr is not None and not np.isfinite(xerr).any():
            xerr = None
        ax.errorbar(
            x.ravel(),
            y.ravel(),
            xerr=None if xerr is None else xerr.ravel(),
            yerr=yerr.ravel(),
            fmt="none",
            ecolor="0.15",
            elinewidth=0.7,
            capsize=1.5,
            alpha=0.6,
            zorder=1.5,
        )
        drawn.append(f"bars: +-{SE_BARS:g} bootstrap SE")
    if f"i_ty_{split}_null_p95" in res:
        low = res[f"i_ty_{split}_null_mean"].mean(axis=0).ravel()
        high = res[f"i_ty_{split}_null_p95"].mean(axis=0).ravel()
        ax.vlines(x.ravel(), low, high, colors="tab:red", lw=2.2, alpha=0.35, zorder=1.4)
        ax.scatter(x.ravel(), high, marker="_", s=60, color="tab:red", linewidths=1.4, alpha=0.8, zorder=1.45)
        drawn.append("red: null (shuffled labels, mean to 95th pct)")
    return drawn


def convergence_figure(res, path: str | os.PathLike, name: str = "") -> bool:
    """Each estimate against the number of samples it was measured on (nested subsets of N / 8,
    N / 4, N / 2 and N; `--convergence`), at the last epoch checked: a row per estimator, a
    column per quantity and split, a line per layer (mean over rows). A curve still rising or
    falling at N says the estimate has not converged. False (nothing drawn) for a run without."""
    outcome.single_condition(res)
    names = [n for n in results.estimator_names(res) if outcome.convergence_epoch(res, n) is not None]
    if not names:
        return False
    count = len(res["layer_widths"])
    palette = layer_colours(count)
    fig = Figure(figsize=(13, 3.1 * len(names) + 1.0), layout="constrained")
    axes = fig.subplots(len(names), 4, squeeze=False)
    for row, estimator in enumerate(names):
        e = outcome.convergence_epoch(res, estimator)
        for col, key in enumerate(results.MI_KEYS):
            ax = axes[row, col]
            split = key.rsplit("_", 1)[1]
            sizes = np.asarray(res[f"convergence_n_{split}"])
            values = np.asarray(res[f"{estimator}.{key}_by_n"], np.float64)[:, e].mean(axis=0)  # [L, 4]
            for layer in range(count):
                ax.plot(
                    sizes,
                    values[layer],
                    color=palette[layer],
                    marker=MARKERS[layer % len(MARKERS)],
                    markersize=4,
                    lw=1.2,
                    label=layer_label(res, layer),
                )
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, labels=[f"{int(n):,}" for n in sizes], fontsize=7)
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            what = "I(X;T)" if key.startswith("i_xt") else "I(T;Y)"
            ax.set_title(f"{estimator}: {what}, {split} (epoch {int(res['mi_epochs'][e])})", fontsize=9)
            ax.set_xlabel("samples N", fontsize=8)
            ax.set_ylabel(f"{what} [bits]", fontsize=8)
    fig.suptitle(titled(res, name, "the estimates against the number of samples"), fontsize=9)
    curves_key(fig, axes[0, 0], count)
    fig.savefig(path, dpi=DPI)
    return True
