"""What names things in the figures: each layer's label, colour and marker, the layer keys
(which layers sit at the estimator's ceiling, `outcome.saturated`), and the titles of a run that
diverged or is unfinished (`outcome.run_status`)."""

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import cm, lines

from ib_jax import outcome

SPLITS = ("train", "test")
MARKERS = "osD^vP*Xh<>p"  # a marker per layer, in order


DPI = 110  # of every figure written


def layer_label(res: Mapping[str, np.ndarray], layer: int) -> str:
    """ "layer 3 (1024)", or the layer's name where the run recorded names ("conv1 (1568)")."""
    name = str(res["layer_names"][layer]) if "layer_names" in res else f"layer {layer + 1}"
    return f"{name} ({int(res['layer_widths'][layer])})"


def layer_colours(count: int) -> np.ndarray:
    """A distinct colour per layer: tab10's for up to ten layers, else spread over plasma."""
    if count <= 10:
        return cm.tab10(np.arange(count))
    return cm.plasma(np.linspace(0, 0.9, count))


def marker_size(layer: int, count: int) -> float:
    """The plane's marker area of a layer: the first layer largest, so that layers on one point
    nest (each drawn over the larger ones before it)."""
    return 22.0 + 50.0 * (count - 1 - layer) / max(count - 1, 1)


def at_ceiling(res: Mapping[str, np.ndarray]) -> list[str]:
    """Per layer, the splits on which its I(X;T) sits at log2 N in most rows and measured epochs
    (the estimator cannot resolve it there): "at log2 N: train, test", or "" for neither."""
    flags_RxKxL = outcome.saturated(res)
    at_log_n = flags_RxKxL[:, (0, 2)].mean(axis=0) > 0.5  # [2, L]: train, test
    return [
        f"at log2 N: {', '.join(s for s, f in zip(SPLITS, at_log_n[:, layer]) if f)}"
        if at_log_n[:, layer].any()
        else ""
        for layer in range(at_log_n.shape[1])
    ]


def layer_handles(res: Mapping[str, np.ndarray]) -> list:
    """The layers' markers for a legend; a layer whose I(X;T) sits at log2 N in most epochs says
    so, with the outline it has in the plane (see docs/accuracy.md)."""
    notes = at_ceiling(res)
    return [
        lines.Line2D(
            [],
            [],
            ls="none",
            marker=MARKERS[i % len(MARKERS)],
            color="0.35",
            markerfacecolor="none" if notes[i] else "0.35",
            markersize=7 if notes[i] else 6,
            label=layer_label(res, i) + (f", {notes[i]}" if notes[i] else ""),
        )
        for i in range(len(res["layer_widths"]))
    ]


def same_layers(runs: Sequence[Mapping[str, np.ndarray]]) -> bool:
    """Whether one layer key serves every run: the same layers, at log2 N on the same splits."""
    return len({tuple(h.get_label() for h in layer_handles(r)) for r in runs}) == 1


def layer_key(fig, res: Mapping[str, np.ndarray]) -> None:
    """The layers' markers, as a legend below the figure's panels."""
    handles = layer_handles(res)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8, frameon=False)


def layer_keys(
    fig, runs: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], axes_by_run, beside: bool = False
) -> None:
    """The layer key of runs drawn side by side: one below the figure where every run has the
    same layers, else each run's own, below its last panel (`beside`: right of it), titled with
    the run's name."""
    if same_layers(runs):
        layer_key(fig, runs[0])
        return
    place = (
        {"loc": "center left", "bbox_to_anchor": (1.04, 0.5)}
        if beside
        else {
            "loc": "upper center",
            "bbox_to_anchor": (0.5, -0.16),
        }
    )
    for res, name, axes in zip(runs, names, axes_by_run):
        inside = axes[-1].get_legend()  # a legend of the panel's own curves stays beside the key
        axes[-1].legend(
            handles=layer_handles(res),
            **place,
            ncols=1 if beside else 2,
            fontsize=7,
            frameon=False,
            title=f"{name}: layers",
            title_fontsize=7,
        )
        if inside is not None:
            axes[-1].add_artist(inside)


def run_title(res, name: str) -> str:
    """The run's name, with what is not whole about it ("diverged at epoch 2")."""
    status = outcome.run_status(res)
    return f"{name} [{status}]" if status and name else (f"[{status}]" if status else name)


def titled(res, name: str, what: str) -> str:
    """ "name [status] — what", or `what` alone for a run without a name or a status."""
    title = run_title(res, name)
    return f"{title} — {what}" if title else what


def curves_key(fig, ax, count: int) -> None:
    """The legend of an axis's curves below the figure, in up to four columns."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(count, 4), fontsize=8, frameon=False)
