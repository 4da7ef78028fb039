"""The layout of a measurement of both splits by several estimators, as a run stores it: the
values, then the channels of the estimators' diagnostics, their confidence and their
convergence subsets (`extra_channels`), stacked by `measure_splits` and taken apart for the
results contract by `unpack_channels`."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators.common import Estimator, measure
from ib_jax.estimators.confidence import CONVERGENCE_FRACTIONS, NO_CONFIDENCE, Confidence

CONFIDENCE_CHANNELS = ("se", "null_mean", "null_p95")


def extra_channels(estimators: Sequence[Estimator], confidence: bool = False, convergence: bool = False) -> list[str]:
    """The channels `measure_splits` stacks after the estimators' values, in order: each
    estimator's diagnostics, "<estimator>.<extra>"; with `confidence`, "<estimator>.se",
    ".null_mean", ".null_p95" of each; with `convergence`, "<estimator>.n8", ".n4", ".n2" of each
    (its values on nested subsets of N / 8, N / 4, N / 2 samples)."""
    names = [f"{e.name}.{x}" for e in estimators for x in e.extras]
    if confidence:
        names += [f"{e.name}.{c}" for e in estimators for c in CONFIDENCE_CHANNELS]
    if convergence:
        names += [f"{e.name}.n{f}" for e in estimators for f in CONVERGENCE_FRACTIONS]
    return names


def unpack_channels(
    information, estimators: Sequence[Estimator], plane_x: str = "", confidence: bool = False, convergence: bool = False
):
    """What `results.build_results` takes from stacked `measure_splits` output, [M + X, 4, ...]
    (any trailing axes): {"information": the M estimators' [M, 4, ...], "extras": {channel:
    [2, ...] (train, test)} of the diagnostics, "confidence": {"<estimator>.<channel>": [4, ...]}
    of the `CONFIDENCE_CHANNELS` (when measured), "convergence": {"<estimator>": [4, ..., 4]}
    (the values on N / 8, N / 4, N / 2 and N samples on a last axis, when measured), "plane_x":
    the estimator whose I(X;T) an I(T;Y)-only estimator's planes take (`plane_x`, else the first
    that measures I(X;T), "" for none), None where every estimator measures I(X;T)}.
    `confidence` and `convergence` say which channels `measure_splits` stacked."""
    m = len(estimators)
    x = sum(len(e.extras) for e in estimators)
    if information.shape[0] != m + len(extra_channels(estimators, confidence, convergence)):
        raise ValueError(f"{information.shape[0]} channels do not fit {m} estimators and their diagnostics")
    names = extra_channels(estimators)
    out = {
        "information": information[:m],
        "extras": dict(zip(names, information[m : m + x, 1::2])),
        "confidence": {},
        "convergence": {},
        "plane_x": None,
    }
    at = m + x
    if confidence:
        for e in estimators:
            for c in CONFIDENCE_CHANNELS:
                out["confidence"][f"{e.name}.{c}"] = information[at]
                at += 1
    if convergence:
        for k, e in enumerate(estimators):
            sub = information[at : at + len(CONVERGENCE_FRACTIONS)]
            at += len(CONVERGENCE_FRACTIONS)
            out["convergence"][e.name] = np.moveaxis(np.concatenate([sub, information[k : k + 1]]), 0, -1)
    if not all(e.measures_xt for e in estimators):
        out["plane_x"] = plane_x or next((e.name for e in estimators if e.measures_xt), "")
    return out


def measure_splits(
    estimators: Sequence[Estimator],
    splits,
    num_classes: int,
    means=None,
    confidence: Confidence = NO_CONFIDENCE,
    convergence: str | None = None,
) -> jax.Array:
    """Every estimator on every layer of both splits, (acts_seq, labels, inputs or None) each:
    float32 [..., M + C, 4, L], I(X;T) and I(T;Y) of the first split, then of the second, for
    each of the M estimators; then the channels of `extra_channels`: each diagnostic as
    (NaN, the first split's, NaN, the second's); with an active `confidence`, each estimator's
    standard errors (in the order of the values) and its null's mean and 95th percentile (NaN,
    train, NaN, test); with `convergence` ("measure"; "skip": the channels, all NaN; None: no
    channels), each estimator's values on nested subsets of N / 8, N / 4 and N / 2 samples
    (`convergence_order`; NaN where the estimator refuses so few). A network with noise of its
    own passes `means`, the noiseless activations of both splits (acts_seq each), which the
    estimators that integrate the noise (`takes_means`) measure instead. Pure and jittable (the
    arguments are checked by `measure`, before tracing where the caller is not itself traced)."""

    def plane(estimator):
        if estimator.takes_means and means is None:
            raise ValueError(f"the {estimator.name} estimator needs a network with noise of its own (--layer_noise)")
        per_split = [
            measure(
                means[s] if estimator.takes_means else acts,
                labels,
                estimator,
                num_classes=num_classes,
                inputs=inputs,
                with_extras=True,
                confidence=confidence,
                convergence=convergence == "measure",
            )
            for s, (acts, labels, inputs) in enumerate(splits)
        ]
        values = jnp.stack([v for i_xt, i_ty, _ in per_split for v in (i_xt, i_ty)], axis=-2)
        return values, [extra for _, _, extra in per_split]

    def interleaved(extras, name):  # (NaN, first split's, NaN, second's)
        nan = jnp.full_like(extras[0][name], jnp.nan)
        return jnp.stack([nan, extras[0][name], nan, extras[1][name]], axis=-2)

    def both(extras, name):  # (first split's I(X;T), I(T;Y), second's)
        return jnp.stack([extras[s][f"{name}_{q}"] for s in (0, 1) for q in ("xt", "ty")], axis=-2)

    planes, diagnostics, confidences, converged = [], [], [], []
    for estimator in estimators:
        values, extras = plane(estimator)
        planes.append(values)
        diagnostics += [interleaved(extras, name) for name in estimator.extras]
        if confidence.active:
            se = [extras[s][f"i_{q}_se"] for s in (0, 1) for q in ("xt", "ty")]
            confidences.append(jnp.stack(se, axis=-2))
            confidences += [interleaved(extras, f"i_ty_{c}") for c in ("null_mean", "null_p95")]
        if convergence == "measure":
            converged += [both(extras, f"n{f}") for f in CONVERGENCE_FRACTIONS]
        elif convergence is not None:
            converged += [jnp.full_like(values, jnp.nan)] * len(CONVERGENCE_FRACTIONS)
    return jnp.stack(planes + diagnostics + confidences + converged, axis=-3)
