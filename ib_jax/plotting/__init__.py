"""Figures of runs, by concern: `plane` (the information plane and the curves of a run, runs and
estimators side by side), `sweep` (a memorization sweep) and `dynamics` (gradient statistics and
animations). `save_run_figures` writes every figure of one run.

Uses matplotlib's object API (`Figure`), so no pyplot state or display backend is involved.
"""

import os
import pathlib

from ib_jax import outcome, results
from ib_jax.plotting.confidence import convergence_figure
from ib_jax.plotting.dynamics import gradient_epochs, gradients_figure, plane_animation, save_animations, snr_crossings
from ib_jax.plotting.keys import SPLITS, layer_colours, layer_label
from ib_jax.plotting.plane import (
    compare_figure,
    decodable_figure,
    draw_plane,
    estimators_grid_figure,
    estimators_layers_figure,
    estimators_plane_figure,
    layers_figure,
    plane_figure,
    training_figure,
)
from ib_jax.plotting.sweep import (
    conditions_plane_figure,
    decodable_sweep_figure,
    headline_figure,
    save_sweep_figures,
    zhang_figure,
)


def skipped_figures(res) -> dict[str, str]:
    """The figures of `save_run_figures` that this run cannot have, with why (one line each)."""
    if "grad_mean_norm" not in res:
        return {"gradients.png": "the run has no gradient statistics"}
    count = int(gradient_epochs(res).sum())
    if count < 2:
        return {
            "gradients.png": f"{'only one' if count else 'no'} measured epoch after 0 has gradient statistics (the "
            "final epoch has none), and its log-log curves need two; measure more often (--mi_every) to draw it"
        }
    return {}


def save_run_figures(
    res, output_dir: str | os.PathLike, name: str = "", seeds_faint: bool = False, suffix: str = ""
) -> list[pathlib.Path]:
    """The run's figures (of its first estimator), with a probe what it decodes per layer
    (`decodable_figure`), and with several estimators their planes side by side per split and
    I(X;T) per layer per estimator; any number of measured epochs
    draws (the gradient figure needs two after epoch 0: `skipped_figures` says why not). Each
    file is named <figure><suffix>.png. DataError for the rows of several conditions (a
    memorization sweep: `outcome.select_condition` picks one)."""
    outcome.single_condition(res)
    out = pathlib.Path(output_dir)
    named = lambda figure: out / f"{figure}{suffix}.png"  # noqa: E731
    names = results.estimator_names(res)
    res = results.estimator_view(res, names[0])  # the first estimator's (paired, if I(T;Y) only)
    paths = [named("information_plane"), named("information_per_layer"), named("training")]
    plane_figure(res, paths[0], name, seeds_faint)
    layers_figure(res, paths[1], name)
    training_figure(res, paths[2], name)
    if not skipped_figures(res):
        paths.append(named("gradients"))
        gradients_figure(res, paths[-1], name)
    for estimator in names:
        if f"{estimator}.accuracy_train" in res:  # a probe: what it decodes, per layer and epoch
            paths.append(named("decodable_information" + ("" if estimator == "probe" else f"_{estimator}")))
            decodable_figure(res, paths[-1], name, estimator)
    if convergence_figure(res, named("convergence"), name):
        paths.append(named("convergence"))
    if len(names) > 1:
        for split in SPLITS:
            paths.append(named(f"information_plane_estimators_{split}"))
            estimators_plane_figure(res, paths[-1], split, name)
        paths.append(named("information_per_layer_estimators"))
        estimators_layers_figure(res, paths[-1], name)
    return paths


__all__ = [
    "SPLITS",
    "compare_figure",
    "convergence_figure",
    "conditions_plane_figure",
    "decodable_figure",
    "decodable_sweep_figure",
    "draw_plane",
    "estimators_grid_figure",
    "estimators_layers_figure",
    "estimators_plane_figure",
    "gradients_figure",
    "headline_figure",
    "layer_colours",
    "layer_label",
    "layers_figure",
    "plane_animation",
    "plane_figure",
    "save_animations",
    "save_run_figures",
    "skipped_figures",
    "save_sweep_figures",
    "snr_crossings",
    "training_figure",
    "zhang_figure",
]
