"""What every estimator shares: the argument checks, the per-item batching over leading axes,
label handling, chunking for memory, and the one jitted entry point `measure` (which
`ib_jax.estimators.information_plane` calls).

An *item* is one layer's activations [N, D] for one epoch, seed and split: one point of the
information plane. An estimator is a frozen (hashable) dataclass with a `name` and a method

    layer_information(acts_BxNxD, labels, num_classes, exact) -> (i_xt [B], i_ty [B])

that measures a batch of items of one layer in bits, inside jit with x64 enabled; `labels` is
[N] (shared by the items) or [B, N] (one labelling per item). An estimator that also needs the
inputs X (`needs_inputs`) takes them as `inputs=`, flattened: [N, Dx] (shared) or [B, N, Dx].
Members hold only their mathematics: everything else lives here.
"""

import abc
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators.confidence import (  # noqa: F401  (names the estimators and the mains read from here)
    CONFIDENCE_KEYS,
    CONVERGENCE_FRACTIONS,
    CONVERGENCE_KEYS,
    NO_CONFIDENCE,
    Confidence,
    by_resampling,
    convergence_order,
    convergence_sizes,
    summarize_confidence,
)


class Estimator(abc.ABC):
    """The interface of an estimator (see the module docstring). Subclasses are frozen
    dataclasses that check their parameters in `__post_init__` (ValueError)."""

    supports_exact = False  # whether `method="exact"` means something for this estimator
    needs_inputs = False  # whether `layer_information` takes the inputs X (`inputs=`)
    extras: tuple[str, ...] = ()  # names of per-item diagnostics `layer_information` also returns
    measures_xt = True  # False: I(X;T) is not measured (NaN), only I(T;Y)
    takes_means = False  # True: measures a noisy network's noiseless activations (it integrates the noise)
    resamples = True  # False: no bootstrap (`resamples_why` says why)
    resamples_why = ""

    def at_layer(self, index: int, num_layers: int) -> "Estimator":
        """The estimator that measures layer `index` of `num_layers` (one that depends on the
        layer, as `noise_mc` on which layers are noisy, returns another; most return self)."""
        del index, num_layers
        return self

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name the mains and `results.npz` use ("binned", "kde_upper", ...)."""

    def check_size(self, n: int, num_classes: int) -> None:
        """ValueError (before tracing) if N samples of `num_classes` classes are too few."""
        del n, num_classes

    @abc.abstractmethod
    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        """I(X;T), I(T;Y) in bits, float32 [B], of B items of one layer; an estimator with
        `extras` returns a third element, {name: float32 [B]} for each of them."""

    def layer_confidence(
        self, acts_BxNxD, labels, num_classes: int, exact: bool, resamples_RxN, permutations_PxN, **kw
    ):
        """The estimates of B items on R bootstrap resamples of the samples (indices into N,
        drawn with replacement), I(X;T) and I(T;Y) [R, B] each, and I(T;Y) under P permutations
        of the labels [P, B] (`Confidence`). This default measures each resampled copy and each
        permuted labelling with `layer_information`, one at a time; the plug-in estimators count
        the resamples as weights instead (`plugin.PlugIn`)."""
        return by_resampling(self, acts_BxNxD, labels, num_classes, exact, resamples_RxN, permutations_PxN, **kw)

    def layer_subsets(self, acts_BxNxD, labels, num_classes: int, exact: bool, order_N, sizes, **kw):
        """I(X;T), I(T;Y) [S, B] of B items on the first `sizes[s]` samples of `order_N` (the
        convergence check's nested subsets). This default measures each subset's copy; NaN where
        the estimator refuses so few samples (`check_size`); the plug-ins weigh their counts."""
        b = acts_BxNxD.shape[0]
        out = []
        for size in sizes:
            try:
                self.check_size(size, num_classes)
            except ValueError:
                out.append((jnp.full((b,), jnp.nan, jnp.float32),) * 2)
                continue
            index = order_N[:size]
            more = {} if kw.get("inputs") is None else {"inputs": jnp.take(kw["inputs"], index, axis=-2)}
            values = self.layer_information(
                jnp.take(acts_BxNxD, index, axis=1), jnp.take(labels, index, axis=-1), num_classes, exact, **more
            )
            out.append(values[:2])
        return jnp.stack([o[0] for o in out]), jnp.stack([o[1] for o in out])


def label_distribution(labels: jax.Array, num_classes: int) -> jax.Array:
    """Class frequencies p(y) [..., K] (float64 under x64) of labels [..., N]."""
    n = labels.shape[-1]
    counts = jnp.vectorize(lambda y: jnp.bincount(y, length=num_classes), signature="(n)->(k)")(labels)
    return counts / n


def entropy_bits(p: jax.Array) -> jax.Array:
    """-sum p log2 p over the last axis, with 0 log 0 = 0."""
    safe = jnp.where(p > 0, p, 1.0)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log2(safe), 0.0), axis=-1)


def mean_log_class_size(labels: jax.Array, num_classes: int) -> jax.Array:
    """sum_y p(y) log N_y in nats, [...] over labels [..., N]: the part of H(Y) that the
    mixture-based estimators (`kde`, `noise_mc`) subtract, I(T;Y) = I(X;T) - sum_y p_y
    [log N_y - <log sum over class y>]."""
    p_y = label_distribution(labels, num_classes)
    counts = p_y * labels.shape[-1]
    return jnp.sum(jnp.where(counts > 0, p_y * jnp.log(jnp.where(counts > 0, counts, 1.0)), 0.0), axis=-1)


def item_keys(acts_KxNxD: jax.Array, item_K: jax.Array, seed: int) -> jax.Array:
    """One PRNG key per item [K], folded from `seed`, the item's position among the measured
    items and a fingerprint of its activations (the sum of their bit patterns modulo 2**32,
    exact in any order or chunking): every run, epoch and layer draws its own noise, and a
    rerun draws the same (the Monte Carlo estimators `kde_mc` and `noise_mc`)."""
    bits = jax.lax.bitcast_convert_type(acts_KxNxD.astype(jnp.float32), jnp.uint32)
    fingerprint = jnp.sum(bits, axis=(1, 2), dtype=jnp.uint32)
    base = jax.random.key(jnp.uint32(seed))
    return jax.vmap(lambda item, p: jax.random.fold_in(jax.random.fold_in(base, item), p))(item_K, fingerprint)


def finite_items(acts_BxNxD: jax.Array) -> jax.Array:
    """[B] True where every activation of the item is finite (a sum propagates NaN and inf;
    XLA's CPU min/max reductions may drop NaN)."""
    return jnp.isfinite(jnp.sum(acts_BxNxD * 0.0, axis=(1, 2)))


def in_chunks(fn: Callable, acts_BxNxD: jax.Array, items_per_chunk: int, *per_item):
    """`fn(acts_KxNxD, *per_item_K)` over chunks of `items_per_chunk` items (at least one),
    stitched into outputs with a leading [B] axis; `per_item` arrays have a leading [B] axis too.

    Small chunks in a loop reuse one set of temporaries: besides bounding memory, that is ~3x
    faster on CPU than one batched pass, whose fresh multi-GB temporaries cost page faults.
    The last chunk is aligned to the end and overlaps its predecessor (recomputing a few items
    identically), so no padding copy is made.
    """
    b = acts_BxNxD.shape[0]
    k = max(1, min(b, items_per_chunk))
    if k == b:
        return fn(acts_BxNxD, *per_item)
    args = (acts_BxNxD, *per_item)
    shapes = jax.eval_shape(fn, *(jax.ShapeDtypeStruct((k, *a.shape[1:]), a.dtype) for a in args))

    def body(i, out):
        start = jnp.minimum(i * k, b - k)
        chunk = fn(*(jax.lax.dynamic_slice_in_dim(a, start, k, axis=0) for a in args))
        return jax.tree.map(lambda o, r: jax.lax.dynamic_update_slice_in_dim(o, r, start, axis=0), out, chunk)

    init = jax.tree.map(lambda s: jnp.zeros((b, *s.shape[1:]), s.dtype), shapes)
    return jax.lax.fori_loop(0, -(-b // k), body, init)


@functools.partial(jax.jit, static_argnames=("estimator", "num_classes", "exact", "confidence", "convergence"))
def _plane(
    acts_seq,
    labels,
    inputs,
    estimator: Estimator,
    num_classes: int,
    exact: bool,
    confidence: Confidence = NO_CONFIDENCE,
    convergence: bool = False,
):
    """(I(X;T) [..., L], I(T;Y) [..., L], {extra: [..., L]}); with `confidence` active the
    extras also hold `CONFIDENCE_KEYS`, with `convergence` the values on nested subsets
    (`CONVERGENCE_KEYS`)."""
    with jax.enable_x64(True):
        out, extras = [], []
        names = estimator.extras + (CONFIDENCE_KEYS if confidence.active else ())
        names += CONVERGENCE_KEYS if convergence else ()
        drawn_for = {}
        for index, acts in enumerate(acts_seq):
            layer_estimator = estimator.at_layer(index, len(acts_seq))
            lead, (n, d) = acts.shape[:-2], acts.shape[-2:]
            layer_labels = labels if labels.ndim == 1 else labels.reshape(-1, n)
            flat = acts.reshape(-1, n, d)
            kw = {}
            if estimator.needs_inputs:
                kw["inputs"] = inputs if inputs.ndim == 2 else inputs.reshape(-1, n, inputs.shape[-1])
            i_xt, i_ty, *more = layer_estimator.layer_information(flat, layer_labels, num_classes, exact, **kw)
            found = dict(more[0]) if more else {}
            if confidence.active:
                if n not in drawn_for:  # once per sample count, shared by the layers
                    drawn_for[n] = confidence.draws(n)
                resamples, permutations = drawn_for[n]
                drawn = layer_estimator.layer_confidence(
                    flat, layer_labels, num_classes, exact, resamples, permutations, **kw
                )
                found.update(summarize_confidence(*drawn, measures_xt=estimator.measures_xt))
            if convergence:
                sizes = tuple(n // f for f in CONVERGENCE_FRACTIONS)
                order = jnp.asarray(convergence_order(n))
                sub_xt, sub_ty = layer_estimator.layer_subsets(
                    flat, layer_labels, num_classes, exact, order, sizes, **kw
                )
                for f, xt, ty in zip(CONVERGENCE_FRACTIONS, sub_xt, sub_ty):
                    found[f"n{f}_xt"], found[f"n{f}_ty"] = xt, ty
            out.append((i_xt.reshape(lead), i_ty.reshape(lead)))
            extras.append({name: found[name].reshape(lead) for name in names})
        stacked = {name: jnp.stack([e[name] for e in extras], axis=-1) for name in names}
        return jnp.stack([o[0] for o in out], axis=-1), jnp.stack([o[1] for o in out], axis=-1), stacked


def check_inputs(acts_seq, labels, num_classes: int | None, inputs=None) -> int:
    """Validation before tracing; returns the number of classes."""
    labels_shape = np.shape(labels)
    if len(labels_shape) < 1:
        raise ValueError("labels must be [N] or [..., N], got a scalar")
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"labels must be integers, got {jnp.result_type(labels)}")
    if not acts_seq:
        raise ValueError("no layers given")
    lead = None
    for i, acts in enumerate(acts_seq):
        shape = np.shape(acts)
        if len(shape) < 2 or shape[-2] != labels_shape[-1] or shape[-1] < 1:
            raise ValueError(
                f"layer {i}: activations must be [..., N, D] with N = {labels_shape[-1]} (len(labels)), "
                f"got shape {shape}"
            )
        if lead is not None and shape[:-2] != lead:
            raise ValueError(f"layer {i}: leading axes {shape[:-2]} differ from layer 0's {lead}")
        lead = shape[:-2]
    if len(labels_shape) > 1 and labels_shape[:-1] != lead:
        raise ValueError(
            f"labels of shape {labels_shape} must be [N] or [..., N] with the activations' leading axes {lead}"
        )
    if inputs is not None:
        shape = np.shape(inputs)
        if len(shape) < 2 or shape[-2] != labels_shape[-1] or shape[-1] < 1 or shape[:-2] not in ((), lead):
            raise ValueError(
                f"inputs must be flattened, [N, Dx] or [..., N, Dx] with the activations' leading axes {lead} "
                f"and N = {labels_shape[-1]}, got shape {shape}"
            )
    if not isinstance(labels, jax.core.Tracer):
        labels_np = np.asarray(labels)
        if labels_np.size and labels_np.min() < 0:
            raise ValueError("labels must be non-negative class indices")
        seen = int(labels_np.max()) + 1 if labels_np.size else 1
        if num_classes is None:
            return max(seen, 1)
        if seen > num_classes:
            raise ValueError(f"a label ({seen - 1}) is >= num_classes ({num_classes})")
    elif num_classes is None:
        raise ValueError("num_classes is required when labels are traced (inside jit)")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return num_classes


def measure(
    acts_seq: Sequence[jax.Array],
    labels: jax.Array,
    estimator: Estimator,
    *,
    num_classes: int | None = None,
    method: str = "hash",
    inputs: jax.Array | None = None,
    with_extras: bool = False,
    confidence: Confidence = NO_CONFIDENCE,
    convergence: bool = False,
):
    """Checks the arguments (ValueError, before tracing), then measures every layer of
    `acts_seq` with `estimator` in one jitted call: float32 [..., L] each. `inputs` (the inputs
    X, flattened) is required by the estimators that need them and ignored by the others. With
    `with_extras`, a third element: the estimator's diagnostics {name: float32 [..., L]}
    (`Estimator.extras`; empty for most), with an active `confidence` the values of
    `CONFIDENCE_KEYS` too, and with `convergence` those of `CONVERGENCE_KEYS` (the values on
    nested subsets of N / 8, N / 4, N / 2 samples). See `ib_jax.estimators.information_plane`."""
    if not isinstance(estimator, Estimator):
        raise ValueError(f"estimator must be an ib_jax estimator, got {type(estimator).__name__}")
    if method not in ("hash", "exact"):
        raise ValueError(f"method must be 'hash' or 'exact', got {method!r}")
    if method == "exact" and not estimator.supports_exact:
        raise ValueError(f"method='exact' does not apply to the {estimator.name} estimator")
    if estimator.needs_inputs and inputs is None:
        raise ValueError(f"the {estimator.name} estimator needs the inputs X: pass inputs=[N, Dx] or [..., N, Dx]")
    inputs = inputs if estimator.needs_inputs else None
    acts_seq = tuple(acts_seq)
    num_classes = check_inputs(acts_seq, labels, num_classes, inputs)
    estimator.check_size(np.shape(labels)[-1], num_classes)
    if confidence.bootstrap and not estimator.resamples:
        raise ValueError(f"the {estimator.name} estimator has no bootstrap: {estimator.resamples_why}")
    i_xt, i_ty, extras = _plane(
        acts_seq,
        labels,
        inputs,
        estimator=estimator,
        num_classes=num_classes,
        exact=method == "exact",
        confidence=confidence,
        convergence=convergence,
    )
    return (i_xt, i_ty, extras) if with_extras else (i_xt, i_ty)


def one_layer(acts: jax.Array, labels: jax.Array, estimator: Estimator, **kwargs) -> tuple[jax.Array, jax.Array]:
    """`measure` of one layer's activations [..., N, D]: float32 [...] each."""
    i_xt, i_ty = measure((acts,), labels, estimator, **kwargs)
    return i_xt[..., 0], i_ty[..., 0]
