"""Estimators of the information plane: I(X;T) and I(T;Y) in bits of every layer, on the device.

Families, one module each, behind one checking and batching layer (`common`):
  * `binned`: fixed bins (`Binning`), the plug-in estimate of the reimplemented project,
    IDNNs and ibsgd.
  * `kde`: Kolchinsky & Tracey's upper and lower bounds for a layer with Gaussian noise (`KDE`),
    as Saxe et al.'s ibsgd uses them, and the Monte Carlo value between them (Goldfeld et al.).
  * `adaptive`: bins adapted to each item (`AdaptiveBinning`), Chelombiev et al.'s entropy-based
    and range-based binning.
  * `exact`: no estimator at all (`Exact`): the distinct rows of the activation values counted
    exactly, the information of a quantized network (Lorenzen, Igel & Nielsen).
  * `renyi`: matrix-based Rényi α-information from Gram matrices of batches (`Renyi`; Giraldo,
    Rao & Principe), the estimator of Yu et al. and Wickstrøm et al.; it needs the inputs X.
  * `edge`: the ensemble dependence-graph estimator (`EDGE`; Noshad, Zeng & Hero), hashed
    buckets of X, T and Y; it needs the inputs X.
  * `knn`: k-nearest-neighbour estimators (`KNN`): Ross's mixed discrete-continuous I(T;Y),
    jointly over the units, and Kraskov et al.'s KSG I(X;T); it needs the inputs X.
  * `probe`: decodable information (`Probe`): a lower bound on I(T;Y) from cross-fitted
    softmax (or MLP) probes, Barber & Agakov's bound, Xu et al.'s usable information; it
    measures I(T;Y) only (I(X;T) is NaN) and stays meaningful in wide layers.
  * `noise_mc`: the information of a layer with noise of its own (`NoiseMC`; `ib_jax.noise`,
    Gaussian dropout or additive), under that noise: h(T|X) analytic, h(T) by Monte Carlo over
    the mixture of the samples' Gaussians; it takes the noiseless activations.
  * `sliced`: sliced mutual information (`Sliced`; Goldfeld & Greenewald), the mean over random
    projections of X and T of the k-NN estimators' information; it needs the inputs X.

Every estimator takes activations [..., N, D] and labels [N] (or [..., N], one labelling per
item), treats the leading axes as separate items, and returns float32 [...] in bits; the
estimators that need the inputs X take them as `inputs=` [N, Dx] or [..., N, Dx]. Bad
arguments raise ValueError before anything is traced. `ESTIMATORS` maps the names the mains
use to builders; adding an estimator is one module and one line there.
"""

import dataclasses
from collections.abc import Callable, Sequence

import jax

from ib_jax import noise
from ib_jax.estimators import (
    adaptive,
    binned,
    channels,
    common,
    confidence,
    corrections,
    edge,
    exact,
    kde,
    knn,
    noise_mc,
    probe,
    renyi,
    sliced,
)
from ib_jax.estimators.adaptive import AdaptiveBinning, adaptive_binned_information
from ib_jax.estimators.binned import Binning, binned_information
from ib_jax.estimators.common import Estimator
from ib_jax.estimators.edge import EDGE, edge_information
from ib_jax.estimators.exact import Exact, exact_information
from ib_jax.estimators.kde import KDE, kde_information
from ib_jax.estimators.knn import KNN, knn_information
from ib_jax.estimators.noise_mc import NoiseMC, noise_mc_information
from ib_jax.estimators.probe import Probe, probe_information
from ib_jax.estimators.renyi import Renyi, renyi_information
from ib_jax.estimators.sliced import Sliced, sliced_information


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings of the estimators the mains build by name: the fixed binning, the KDE
    family's noise variance, the adaptive binnings' bin count, Rényi's order and batch size, the
    plug-in estimators' bias correction, the k-NN estimators' neighbours, the probe's folds,
    hidden units and steps."""

    binning: Binning
    noise_variance: float
    num_bins: int
    renyi_alpha: float = 1.01
    renyi_batch: int = 200
    bias_correction: str = "none"  # of the plug-in estimators: one of corrections.CORRECTIONS
    knn_neighbours: int = 3
    probe_folds: int = 5
    probe_hidden: int = 0
    probe_steps: int = 0  # 0: the probe's default
    layer_noise: str = "none"  # the network's own noise (`ib_jax.noise`), which noise_mc integrates
    noisy_layers: tuple[int, ...] = ()
    noise_samples: int = 4
    sliced_slices: int = 1000
    sliced_dim: int = 1


# name -> builder(settings): the estimator's object with those settings.
ESTIMATORS: dict[str, Callable[[Settings], Estimator]] = {
    "binned": lambda s: dataclasses.replace(s.binning, bias_correction=s.bias_correction),
    "kde_upper": lambda s: KDE(s.noise_variance, "upper"),
    "kde_lower": lambda s: KDE(s.noise_variance, "lower"),
    "kde_mc": lambda s: KDE(s.noise_variance, "mc"),
    "adaptive_entropy": lambda s: AdaptiveBinning(s.num_bins, "entropy", s.bias_correction),
    "adaptive_range": lambda s: AdaptiveBinning(s.num_bins, "range", s.bias_correction),
    "exact": lambda s: Exact(s.bias_correction),
    "renyi": lambda s: Renyi(alpha=s.renyi_alpha, batch_size=s.renyi_batch),
    "edge": lambda s: EDGE(),
    "knn": lambda s: KNN(k=s.knn_neighbours),
    "probe": lambda s: Probe(folds=s.probe_folds, hidden=s.probe_hidden, steps=s.probe_steps),
    "noise_mc": lambda s: NoiseMC(noise.LayerNoise.parse(s.layer_noise, s.noisy_layers), samples=s.noise_samples),
    "sliced": lambda s: Sliced(slices=s.sliced_slices, dim=s.sliced_dim, k=s.knn_neighbours),
}


def by_name(name: str, **settings) -> Estimator:
    """The estimator called `name` (a key of `ESTIMATORS`) with these settings (the fields of
    `Settings`: binning, noise_variance and num_bins required); ValueError for an unknown name
    or a bad setting."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](Settings(**settings))


def information_plane(
    acts_seq: Sequence[jax.Array],
    labels: jax.Array,
    *,
    estimator: Estimator | None = None,
    bin_size: float | None = None,
    num_bins: int | None = None,
    value_range: tuple[float, float] | None = None,
    binning: Binning | None = None,
    num_classes: int | None = None,
    method: str = "hash",
    inputs: jax.Array | None = None,
    bootstrap: int = 0,
    null_permutations: int = 0,
):
    """The information plane of several layers at once, in one jitted call.

    Args:
      acts_seq: one array per layer, [..., N, D_l]; widths may differ, leading axes (seeds,
        epochs, ...) must agree. A train step's activation tuple fits as it is.
      labels: int [N], class indices; or [..., N] with the activations' leading axes, a
        labelling per item (say, per seed).
      estimator: any estimator (`Binning`, `KDE`, `AdaptiveBinning`); or the fixed binning as
        `bin_size=` / `num_bins=, value_range=` / `binning=`. Exactly one of these.
      num_classes: number of classes; inferred from concrete labels, required inside jit.
      method: "hash" (fast) or "exact" (slow, for checks), for the estimators that bin.
      inputs: the inputs X, flattened, [N, Dx] (shared) or [..., N, Dx]: required by the
        estimators that need them (`renyi`, `edge`), ignored by the others.
      bootstrap: B >= 2: each value's standard error over B resamples of the N samples (0: none).
      null_permutations: P >= 2: I(T;Y) under P shuffles of the labels (0: none).

    Returns:
      i_xt, i_ty: float32 [..., L] in bits; with `bootstrap` or `null_permutations`, a third
      element {"i_xt_se", "i_ty_se", "i_ty_null_mean", "i_ty_null_p95": float32 [..., L]}
      (`common.Confidence`; NaN where not drawn).
    """
    given = [e for e in (estimator, binning) if e is not None]
    if (bin_size, num_bins, value_range) != (None, None, None):
        given.append(Binning(bin_size=bin_size, num_bins=num_bins, value_range=value_range))
    if len(given) > 1:
        raise ValueError("give exactly one estimator: estimator=, binning= or bin_size / num_bins, value_range")
    chosen = given[0] if given else Binning()  # Binning() raises "give exactly one binning"
    confidence = common.Confidence(bootstrap, null_permutations)
    if not confidence.active:
        return common.measure(acts_seq, labels, chosen, num_classes=num_classes, method=method, inputs=inputs)
    i_xt, i_ty, extras = common.measure(
        acts_seq,
        labels,
        chosen,
        num_classes=num_classes,
        method=method,
        inputs=inputs,
        with_extras=True,
        confidence=confidence,
    )
    return i_xt, i_ty, {k: extras[k] for k in common.CONFIDENCE_KEYS}


__all__ = [
    "EDGE",
    "ESTIMATORS",
    "AdaptiveBinning",
    "Binning",
    "Estimator",
    "Exact",
    "KDE",
    "KNN",
    "NoiseMC",
    "Probe",
    "Renyi",
    "Settings",
    "Sliced",
    "adaptive",
    "adaptive_binned_information",
    "binned",
    "binned_information",
    "by_name",
    "channels",
    "common",
    "confidence",
    "corrections",
    "edge",
    "edge_information",
    "exact",
    "exact_information",
    "information_plane",
    "kde",
    "kde_information",
    "knn",
    "knn_information",
    "noise_mc",
    "noise_mc_information",
    "probe",
    "probe_information",
    "renyi",
    "renyi_information",
    "sliced",
    "sliced_information",
]
