"""Benchmark of the binned estimator against the reference implementations' numpy method.

Run by hand: `python -m benchmarks.information_bench` (add `--quick` for a short run). Prints a
table: the time of one call on a whole batch of epochs x layers, the numpy baseline on the same
activations (floor binning, rows viewed as bytes, `np.unique` with counts, once per class, as
ibsgd and IDNNs do), their ratio, and for the 12-bit shape the floor: one jitted sort of N
uint64 keys per layer-epoch. Values are checked to agree to 1e-5 bits.
"""

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import estimators


def numpy_baseline(acts_ExNxD: np.ndarray, labels_N: np.ndarray, bin_size: float) -> tuple[np.ndarray, np.ndarray]:
    """What the reference implementations do, one layer-epoch at a time."""
    return codes_information([np.floor(acts / bin_size).astype(np.int64) for acts in acts_ExNxD], labels_N)


def codes_information(codes_seq, labels_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in I(X;T), I(T;Y) in bits of each array of codes [N, D]: rows viewed as bytes,
    `np.unique` with counts, once for all rows and once per class."""

    def entropy(codes):
        rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.dtype.itemsize * codes.shape[1])))
        _, counts = np.unique(rows, return_counts=True)
        p = counts / counts.sum()
        return -np.sum(p * np.log2(p))

    classes, class_counts = np.unique(labels_N, return_counts=True)
    p_y = class_counts / len(labels_N)
    i_xt, i_ty = [], []
    for codes in codes_seq:
        h_t = entropy(codes)
        h_t_given_y = sum(p * entropy(codes[labels_N == c]) for c, p in zip(classes, p_y))
        i_xt.append(h_t)
        i_ty.append(h_t - h_t_given_y)
    return np.array(i_xt), np.array(i_ty)


def tanh_epochs(rng, epochs, n, widths, in_dim=12):
    """Saturating tanh activations of a random MLP whose weights grow over 'epochs'."""
    x = rng.normal(size=(n, in_dim)).astype(np.float32)
    layers = [np.empty((epochs, n, w), np.float32) for w in widths]
    for e in range(epochs):
        h = x
        for layer, w in zip(layers, widths):
            scale = (1.0 + 4.0 * e / max(epochs - 1, 1)) / np.sqrt(h.shape[1])
            h = np.tanh(h @ (rng.normal(size=(h.shape[1], w)).astype(np.float32) * scale))
            layer[e] = h
    return layers


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def run_case(name, layers, labels, bin_size, repeats, floor=False):
    device_layers = [jnp.asarray(a) for a in layers]
    labels_dev = jnp.asarray(labels)
    call = lambda: estimators.information_plane(device_layers, labels_dev, bin_size=bin_size)  # noqa: E731
    jax.block_until_ready(call())  # compile
    t_jax = best_of(call, repeats)
    i_xt, i_ty = (np.asarray(v) for v in call())
    t = time.perf_counter()
    ref = [numpy_baseline(a, labels, bin_size) for a in layers]
    t_np = time.perf_counter() - t
    err = max(
        max(np.abs(i_xt[:, layer] - r[0]).max(), np.abs(i_ty[:, layer] - r[1]).max()) for layer, r in enumerate(ref)
    )
    epochs, n = layers[0].shape[:2]
    row = f"| {name} | {epochs} x {len(layers)} | {t_np:8.3f} | {t_jax:8.4f} | {t_np / t_jax:6.1f}x | {err:.1e} |"
    if floor:
        with jax.enable_x64(True):
            keys = jnp.asarray(
                np.random.default_rng(0).integers(0, 2**63, size=(epochs * len(layers), n), dtype=np.uint64)
            )
            sort = jax.jit(lambda k: jax.lax.sort(k, dimension=1))
            jax.block_until_ready(sort(keys))
            t_floor = best_of(lambda: sort(keys), repeats)
        row += f" {t_floor:.4f} s ({t_jax / t_floor:.1f}x floor) |"
    else:
        row += " |"
    print(row, flush=True)
    assert err < 1e-5, f"{name}: estimator and numpy baseline disagree by {err} bits"
    return t_np / t_jax


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({platform.processor() or platform.machine()})")
    print("| case | epochs x layers | numpy s | ib_jax s | speed-up | max diff (bits) | sort floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    quick = args.quick
    e12, e10k, e60k = (10, 2, 1) if quick else (200, 20, 5)
    labels = rng.integers(0, 2, 4096).astype(np.int32)
    run_case(
        "12-bit, N=4,096, bin 0.07",
        tanh_epochs(rng, e12, 4096, (10, 7, 5, 4, 3, 2)),
        labels,
        0.07,
        args.repeats,
        floor=True,
    )
    mnist_widths = (784, 1024, 1024, 20, 20, 20, 10, 10)
    for n, epochs in ((10_000, e10k), (60_000, e60k)):
        labels = rng.integers(0, 10, n).astype(np.int32)
        layers = tanh_epochs(rng, epochs, n, mnist_widths, in_dim=784)
        run_case(f"MNIST, N={n:,}, bin 0.5", layers, labels, 0.5, args.repeats)


if __name__ == "__main__":
    main()
