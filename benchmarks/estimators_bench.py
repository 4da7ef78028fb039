"""Benchmark of the KDE, adaptive and exact estimators against plain numpy implementations of the
same formulas.

Run by hand: `python -m benchmarks.estimators_bench` (add `--quick` for a short run). Shapes:
the 12-bit task (N = 4,096, layers 10, 7, 5, 4, 3, 2, 100 epochs) and MNIST's test set
(N = 10,000, the reimplemented network's 8 layers, 3 epochs), saturating tanh activations. One
ib_jax call measures every layer and epoch (best of --repeats, after compiling); numpy runs one
layer-epoch at a time:
  * KDE: float32 N x N distances |a|^2 + |b|^2 - 2 a.b by BLAS, diagonal zeroed, exp, row sums,
    class sums by a product with the one-hot labels (the whole N x N matrix held at once).
  * adaptive: `np.unique` of the item's values for the edges, `np.searchsorted`, then the
    reference implementations' row counting (`np.unique` of rows viewed as bytes, per class).
  * exact: the same row counting on the values themselves; the layers are the tanh activations
    put on an 8-bit grid over [-1, 1], as a quantized network's are.
Where numpy would take minutes (KDE on the 12-bit shape) it runs on the first --numpy_epochs
epochs and its time is scaled to all of them (marked *: every item has the same size). The
floor column is what bounds each estimator here: the exp of the N^2 terms (KDE, narrow
layers), the float32 matrix products (KDE, wide layers), the sort of the item's values
(adaptive entropy), the binned estimator on the same layers (adaptive range and exact: hash and
row sort).
"""

import argparse
import math
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.information_bench import best_of, codes_information, tanh_epochs
from ib_jax import estimators
from ib_jax.estimators import adaptive


def numpy_kde(acts_ExNxD, labels, noise_variance, bound):
    width = (2.0 if bound == "upper" else 8.0) * noise_variance
    classes, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    onehot = (index[:, None] == np.arange(len(classes))[None, :]).astype(np.float32)
    n = len(labels)
    h_y_part = float(np.sum(counts / n * np.log(counts)))
    i_xt, i_ty = [], []
    for a in acts_ExNxD:
        sq = (a * a).sum(axis=1)
        d = sq[:, None] + sq[None, :] - 2.0 * (a @ a.T)
        np.maximum(d, 0.0, out=d)
        np.fill_diagonal(d, 0.0)
        np.exp(d * np.float32(-1.0 / width), out=d)
        log_all = np.log(d.sum(axis=1, dtype=np.float64))
        log_same = np.log((d @ onehot)[np.arange(n), index].astype(np.float64))
        h = math.log(n) - log_all.mean()
        i_xt.append(h / math.log(2.0))
        i_ty.append((h - h_y_part + log_same.mean()) / math.log(2.0))
    return np.array(i_xt), np.array(i_ty)


def numpy_adaptive(acts_ExNxD, labels, num_bins, strategy):
    codes = []
    for a in acts_ExNxD:
        if strategy == "entropy":
            u = np.unique(a)
            c = np.searchsorted(u[(np.arange(1, num_bins) * len(u)) // num_bins], a, side="right")
        else:
            lo, hi = a.min(), a.max()
            c = np.minimum(np.floor((a - lo) / (hi - lo) * np.float32(num_bins)), num_bins - 1)
        codes.append(c.astype(np.int16))
    return codes_information(codes, labels)


def numpy_exact(acts_ExNxD, labels):
    """The distinct rows of the float32 values themselves (bit patterns, -0.0 as 0.0)."""
    return codes_information([np.where(a == 0, np.float32(0), a).view(np.int32) for a in acts_ExNxD], labels)


def quantized(layers, bits=8):
    """tanh layers on the 2**bits-level grid over [-1, 1] (a quantized network's values)."""
    step = np.float32(2.0 / (2**bits - 1))
    return [(np.float32(-1.0) + step * np.round((a + np.float32(1.0)) / step)).astype(np.float32) for a in layers]


def floor_time(name, layers, repeats):
    """The time of what bounds the estimator, on the same layers."""
    device = [jnp.asarray(a) for a in layers]
    if name.startswith("kde"):

        def terms(a):  # the products (wide layers) or the exp of every pair (narrow ones)
            if a.shape[-1] > 64:
                return jnp.einsum("eid,ejd->eij", a, a, precision=jax.lax.Precision.HIGHEST)[..., 0]
            return jax.lax.map(lambda x: jnp.sum(jnp.exp(x[:, :1] - x[:, 0][None, :])), a)

        fn = jax.jit(lambda ls: [jax.lax.map(lambda x: terms(x[None])[0], a) for a in ls])
        label = "f32 GEMMs" if max(a.shape[-1] for a in layers) > 64 else "N^2 exps"
    elif name == "adaptive_entropy":
        fn = jax.jit(lambda ls: [jnp.sort(adaptive._order_keys(a).reshape(a.shape[0], -1), axis=1) for a in ls])
        label = "value sort"
    else:
        zeros = jnp.zeros(layers[0].shape[1], jnp.int32)
        fn = jax.jit(lambda ls: estimators.information_plane(ls, zeros, bin_size=0.1, num_classes=1))
        label = "binned"
    jax.block_until_ready(fn(device))
    return best_of(lambda: fn(device), repeats), label


def run_case(case, name, estimator, reference, layers, labels, repeats, numpy_epochs, tolerance):
    device = [jnp.asarray(a) for a in layers]
    call = lambda: estimators.information_plane(device, jnp.asarray(labels), estimator=estimator)  # noqa: E731
    jax.block_until_ready(call())
    t_jax = best_of(call, repeats)
    i_xt, i_ty = (np.asarray(v) for v in call())
    epochs = layers[0].shape[0]
    used = min(numpy_epochs or epochs, epochs)
    t = time.perf_counter()
    ref = [reference(a[:used], labels) for a in layers]
    t_np = (time.perf_counter() - t) * epochs / used
    err = max(max(np.abs(i_xt[:used, j] - r[0]).max(), np.abs(i_ty[:used, j] - r[1]).max()) for j, r in enumerate(ref))
    t_floor, label = floor_time(name, layers, repeats)
    star = "*" if used < epochs else ""
    print(
        f"| {case} | {name} | {epochs} x {len(layers)} | {t_np:8.2f}{star} | {t_jax:7.3f} | {t_np / t_jax:6.1f}x "
        f"| {err:.1e} | {label} {t_floor:.3f} s ({t_jax / t_floor:.1f}x) |",
        flush=True,
    )
    assert err < tolerance, f"{case} {name}: ib_jax and numpy disagree by {err} bits"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (smoke run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--numpy_epochs", type=int, default=5, help="12-bit KDE: epochs numpy runs (scaled up)")
    parser.add_argument("--only", default="", help="comma-separated estimators to run (default: all five)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    device = jax.devices()[0]
    print(
        f"jax {jax.__version__} on {device.platform}: {device.device_kind} "
        f"({platform.processor() or platform.machine()})"
    )
    print("| case | estimator | epochs x layers | numpy s | ib_jax s | speed-up | max diff (bits) | floor |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    e12, e10k = (4, 1) if args.quick else (100, 3)
    everything = ["kde_upper", "kde_lower", "adaptive_entropy", "adaptive_range", "exact"]
    chosen = [e for e in args.only.split(",") if e] or everything
    cases = [
        ("12-bit, N=4,096", tanh_epochs(rng, e12, 4096, (10, 7, 5, 4, 3, 2)), rng.integers(0, 2, 4096), 1e-3),
        (
            "MNIST, N=10,000",
            tanh_epochs(rng, e10k, 10_000, (784, 1024, 1024, 20, 20, 20, 10, 10), in_dim=784),
            rng.integers(0, 10, 10_000),
            0.1,
        ),
    ]
    for case, layers, labels, variance in cases:
        labels = labels.astype(np.int32)
        for name in chosen:
            measured, title = layers, f"{case}{f', s2={variance}' if name.startswith('kde') else ', 30 bins'}"
            if name == "exact":
                estimator, reference, numpy_epochs, tolerance = estimators.Exact(), numpy_exact, 0, 1e-5
                measured, title = quantized(layers), f"{case}, 8-bit grid"
            elif name.startswith("kde"):
                bound = name.split("_")[1]
                estimator = estimators.KDE(variance, bound)
                reference = lambda a, y, v=variance, b=bound: numpy_kde(a, y, v, b)  # noqa: E731
                numpy_epochs, tolerance = (args.numpy_epochs if case.startswith("12") else 0), 2e-3
            else:
                strategy = name.split("_")[1]
                estimator = estimators.AdaptiveBinning(30, strategy)
                reference = lambda a, y, s=strategy: numpy_adaptive(a, y, 30, s)  # noqa: E731
                numpy_epochs, tolerance = 0, 1e-5
            run_case(
                title,
                name,
                estimator,
                reference,
                measured,
                labels,
                args.repeats,
                numpy_epochs,
                tolerance,
            )


if __name__ == "__main__":
    main()
