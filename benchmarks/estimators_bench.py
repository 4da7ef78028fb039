"""Benchmark of the KDE, adaptive, exact, Rényi and EDGE estimators against plain numpy
implementations of the same formulas.

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
  * kde_mc: 4 noisy queries per sample against all samples by BLAS (its own draws: the two
    agree within their Monte Carlo errors, not exactly).
  * renyi: per batch of 200, float32 Gram matrices by BLAS and `np.linalg.eigvalsh`, 5 per batch.
  * edge: the definition in `ib_jax.estimators.edge` in numpy: projection, k-NN distances over
    windows of the sorted values, buckets counted with `np.unique`.
  kde_mc, renyi and edge run on the first --slow_epochs epochs of the 12-bit shape and on the
  first epoch of MNIST's (their inputs: the 12-bit patterns, and uniform 784-pixel images).
Where numpy would take minutes (KDE on the 12-bit shape) it runs on the first --numpy_epochs
epochs and its time is scaled to all of them (marked *: every item has the same size). The
floor column is what bounds each estimator here: the exp of the N^2 terms (KDE, narrow
layers), the float32 matrix products (KDE, wide layers), the sort of the item's values
and the edges read from it (adaptive entropy; on CPU numpy's sort in threads, as the estimator
runs it), the binned estimator on the same layers (adaptive range and exact: hash and
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


def numpy_kde_mc(acts_ExNxD, labels, noise_variance, draws=4, seed=0):
    rng = np.random.default_rng(seed)
    classes, index = np.unique(labels, return_inverse=True)
    onehot = (index[:, None] == np.arange(len(classes))[None, :]).astype(np.float32)
    n = len(labels)
    counts = onehot.sum(0)
    h_y_part = float(np.sum(counts / n * np.log(counts)))
    i_xt, i_ty = [], []
    for a in acts_ExNxD:
        sq = (a * a).sum(axis=1)
        log_all, log_same = [], []
        for _ in range(draws):
            z = (rng.standard_normal(a.shape) * math.sqrt(noise_variance)).astype(np.float32)
            q = a + z
            d = (q * q).sum(1)[:, None] + sq[None, :] - 2.0 * (q @ a.T) - (z * z).sum(1)[:, None]
            np.exp(d * np.float32(-0.5 / noise_variance), out=d)
            log_all.append(np.log(d.sum(axis=1, dtype=np.float64)))
            log_same.append(np.log((d @ onehot)[np.arange(n), index].astype(np.float64)))
        h = math.log(n) - np.mean(log_all)
        i_xt.append(h / math.log(2.0))
        i_ty.append((h - h_y_part + np.mean(log_same)) / math.log(2.0))
    return np.array(i_xt), np.array(i_ty)


def numpy_renyi(acts_ExNxD, labels, inputs, alpha=1.01, size=200, k=10):
    def gram(a):
        sq = (a * a).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (a @ a.T), 0.0)
        np.fill_diagonal(d2, 0.0)
        width = np.sqrt(np.sort(d2, axis=1)[:, k]).mean()
        return np.exp(-d2 / (2.0 * width**2))

    def s(m):
        lam = np.clip(np.linalg.eigvalsh(m), 0, None).astype(np.float64)
        return math.log2((lam**alpha).sum() / lam.sum() ** alpha) / (1 - alpha)

    batches = [slice(i, i + size) for i in range(0, (len(labels) // size) * size, size)]
    x_grams = [gram(inputs[b] - inputs[b].mean(0)) for b in batches]
    y_grams = [(labels[b][:, None] == labels[b][None, :]).astype(np.float32) for b in batches]
    s_x, s_y = [s(g) for g in x_grams], [s(g) for g in y_grams]
    i_xt, i_ty = [], []
    for a in acts_ExNxD:
        xt, ty = [], []
        for j, b in enumerate(batches):
            k_t = gram(a[b] - a[b].mean(0))
            s_t = s(k_t)
            xt.append(s_x[j] + s_t - s(x_grams[j] * k_t))
            ty.append(s_y[j] + s_t - s(y_grams[j] * k_t))
        i_xt.append(np.mean(xt))
        i_ty.append(np.mean(ty))
    return np.array(i_xt), np.array(i_ty)


def numpy_edge(acts_ExNxD, labels, inputs, estimates=5, seed=0):
    n = len(labels)

    def knn(c, k):
        s = np.sort(c)
        best = np.full(n, np.inf, np.float32)
        i = np.arange(n)
        for t in range(k):  # windows s[i - t .. i - t + k - 1]
            ok = (i - t >= 0) & (i - t + k - 1 <= n - 1)
            lo, hi = np.clip(i - t, 0, n - 1), np.clip(i - t + k - 1, 0, n - 1)
            best = np.where(ok, np.minimum(best, np.maximum(s - s[lo], s[hi] - s)), best)
        return best.mean()

    def hashed(v, scale):
        d = v.shape[1]
        z = v
        if d > 6:
            dp = max(1, min(d, math.floor(math.log2(n / 10))))
            std = v.std(axis=0)
            std = np.where(std < 1e-4, 1.0, std)
            w = np.random.default_rng([seed, d, dp]).standard_normal((d, dp)).astype(np.float32)
            z = v @ (w / (std[:, None] * math.sqrt(d))).astype(np.float32)
        dp = z.shape[1]
        k = min(n, max(1, math.floor(0.43 * n ** (2 / 3 + 0.17 * dp / (dp + 1)))))
        rho = np.array([knn(c, k) for c in z.T])
        width = scale * 0.4 * 18 * dp / max(1 + math.log(d), 1) * (rho + 1e-4)
        out = []
        for j in range(estimates):
            wj = (width * (1 + 0.1 * j / (estimates - 1))).astype(np.float32)
            codes = np.floor((z + np.float32(j / estimates) * wj) / wj).astype(np.int64)
            out.append(np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1))
        return out

    def information(a, b, cap):
        _, ia, ca = np.unique(a, return_inverse=True, return_counts=True)
        _, ib, cb = np.unique(b, return_inverse=True, return_counts=True)
        _, ij, cj = np.unique(np.stack([a, b], 1), axis=0, return_inverse=True, return_counts=True)
        return np.clip(np.log2(cj[ij.reshape(-1)] * n / (ca[ia] * cb[ib])), 0.001, cap).mean()

    x_ids = hashed(inputs, 0.001)
    cap_ty = math.log2(max(len(np.unique(labels)), 2))
    i_xt, i_ty = [], []
    for a in acts_ExNxD:
        t_ids = hashed(a, 1.0)
        i_xt.append(np.median([information(x, t, math.log2(n)) for x, t in zip(x_ids, t_ids)]))
        i_ty.append(np.median([information(t, labels, cap_ty) for t in t_ids]))
    return np.array(i_xt), np.array(i_ty)


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
    elif name == "renyi":  # the eigendecompositions alone: 5 per batch of 200
        count = sum(a.shape[0] for a in layers) * 5 * (layers[0].shape[1] // 200)
        gram = np.exp(-np.square(np.linspace(0, 3, 200, dtype=np.float32)[:, None] - np.linspace(0, 3, 200)[None]))
        fn = jax.jit(lambda ls: jax.lax.map(lambda i: jnp.linalg.eigvalsh(jnp.asarray(gram) + i), jnp.zeros(count)))
        label = "eigvalsh"
    elif name == "adaptive_entropy":
        keys = lambda a: adaptive._order_keys(a).reshape(a.shape[0], -1)  # noqa: E731
        fn = jax.jit(lambda ls: [adaptive.entropy_edges(keys(a), 30) for a in ls])
        label = "value sort"  # on CPU: numpy's, in threads (a host callback)
    else:
        zeros = jnp.zeros(layers[0].shape[1], jnp.int32)
        fn = jax.jit(lambda ls: estimators.information_plane(ls, zeros, bin_size=0.1, num_classes=1))
        label = "binned"
    jax.block_until_ready(fn(device))
    return best_of(lambda: fn(device), repeats), label


def run_case(case, name, estimator, reference, layers, labels, repeats, numpy_epochs, tolerance, inputs=None):
    device = [jnp.asarray(a) for a in layers]
    x = None if inputs is None else jnp.asarray(inputs)
    call = lambda: estimators.information_plane(device, jnp.asarray(labels), estimator=estimator, inputs=x)  # noqa: E731
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
    parser.add_argument("--slow_epochs", type=int, default=10, help="12-bit epochs of kde_mc, renyi and edge")
    parser.add_argument("--only", default="", help="comma-separated estimators to run (default: all)")
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
    everything = ["kde_upper", "kde_lower", "adaptive_entropy", "adaptive_range", "exact", "kde_mc", "renyi", "edge"]
    chosen = [e for e in args.only.split(",") if e] or everything
    cases = [
        (
            "12-bit, N=4,096",
            tanh_epochs(rng, e12, 4096, (10, 7, 5, 4, 3, 2)),
            rng.integers(0, 2, 4096),
            1e-3,
            rng.integers(0, 2, (4096, 12)).astype(np.float32),
            min(args.slow_epochs, e12),
        ),
        (
            "MNIST, N=10,000",
            tanh_epochs(rng, e10k, 10_000, (784, 1024, 1024, 20, 20, 20, 10, 10), in_dim=784),
            rng.integers(0, 10, 10_000),
            0.1,
            rng.uniform(size=(10_000, 784)).astype(np.float32),
            1,
        ),
    ]
    for case, layers, labels, variance, x, slow_epochs in cases:
        labels = labels.astype(np.int32)
        for name in chosen:
            measured, title = layers, f"{case}{f', s2={variance}' if name.startswith('kde') else ', 30 bins'}"
            inputs = None
            if name in ("kde_mc", "renyi", "edge"):
                measured = [a[:slow_epochs] for a in layers]
            if name == "kde_mc":
                estimator = estimators.KDE(variance, "mc")
                reference = lambda a, y, v=variance: numpy_kde_mc(a, y, v)  # noqa: E731
                numpy_epochs, tolerance = 0, 0.05  # two sets of draws: their Monte Carlo errors
            elif name == "renyi":
                estimator, title, inputs = estimators.Renyi(), f"{case}, batches of 200", x
                reference = lambda a, y, x=x: numpy_renyi(a, y, x)  # noqa: E731
                numpy_epochs, tolerance = 0, 5e-3
            elif name == "edge":
                estimator, title, inputs = estimators.EDGE(), f"{case}, 5 estimates", x
                reference = lambda a, y, x=x: numpy_edge(a, y, x)  # noqa: E731
                numpy_epochs, tolerance = 0, 1e-3
            elif name == "exact":
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
                inputs,
            )


if __name__ == "__main__":
    main()
