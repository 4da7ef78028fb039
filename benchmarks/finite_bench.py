"""The cost of the finite-I(X;T) estimators (`docs/performance.md`), run by hand:

    python -m benchmarks.finite_bench

  * `sliced` on one layer of N samples x 1,024 units against 784 inputs (MNIST's shapes), 1,000
    one-dimensional slices, seconds per layer; and per slice, the sorting forms of KSG and Ross
    (`knn.ksg_information_1d`, `ross_information_1d`) against the brute-force forms on the same
    projections, the baseline timed in the same run.
  * `noise_mc` on one Gaussian-dropout layer of N x D, 4 draws per sample, seconds per layer,
    against `kde_mc` (additive noise, the same number of draws) timed in the same run.
Best of 3 after compiling; the machine is named in the first line printed.
"""

import argparse
import platform
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import estimators
from ib_jax.estimators import common, knn


def _best(fn, *args, repeats=3):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def _layer(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 784)).astype(np.float32)
    t = np.tanh(x[:, :64] @ rng.standard_normal((64, d)) / 8).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    return x, t, y


def sliced_table(sizes, slices: int) -> None:
    print(f"\n### sliced: one layer of N x 1,024 units, 784 inputs, {slices:,} slices")
    print("| N | sliced s per layer | per slice: sorting ms | brute force ms | brute / sorting |")
    print("| --- | --- | --- | --- | --- |")
    for n in sizes:
        x, t, y = _layer(n, 1024)
        est = estimators.Sliced(slices=slices)
        measure = lambda t, y, x, est=est: common.measure((t,), y, est, num_classes=10, inputs=x, with_extras=True)  # noqa: E731
        whole = _best(measure, t, y, x, repeats=2)
        rng = np.random.default_rng(1)
        px = jnp.asarray(rng.standard_normal((20, n)).astype(np.float32))
        pt = jnp.asarray((0.5 * np.asarray(px) + rng.standard_normal((20, n))).astype(np.float32))
        yy = jnp.asarray(y)
        with jax.enable_x64(True):
            fast = jax.jit(
                lambda a, b, c: jax.lax.map(
                    lambda s: knn.ksg_information_1d(s[0], s[1], 3) + knn.ross_information_1d(s[1], c, 3), (a, b)
                )
            )
            slow = jax.jit(
                lambda a, b, c: jax.lax.map(
                    lambda s: (
                        knn.ksg_information(s[0][:, None], s[1][:, None], 3) + knn.ross_information(s[1][:, None], c, 3)
                    ),
                    (a, b),
                )
            )
            t_fast = _best(fast, px, pt, yy) / 20
            t_slow = _best(slow, px, pt, yy) / 20
        print(f"| {n:,} | {whole:.1f} | {1e3 * t_fast:.2f} | {1e3 * t_slow:.2f} | {t_slow / t_fast:.1f}x |")


def noise_table(cases) -> None:
    print("\n### noise_mc: one layer, 4 draws per sample (kde_mc: additive noise, 4 draws, the baseline)")
    print("| N | D | noise_mc s (gaussian_dropout:0.2) | noise_mc s (additive:0.3) | kde_mc s | noise_mc / kde_mc |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, d in cases:
        _, t, y = _layer(n, d)
        dropout = _best(partial(estimators.noise_mc_information, noise="gaussian_dropout:0.2", num_classes=10), t, y)
        additive = _best(partial(estimators.noise_mc_information, noise="additive:0.3", num_classes=10), t, y)
        kde = _best(partial(estimators.kde_information, noise_variance=0.09, bound="mc", num_classes=10), t, y)
        print(f"| {n:,} | {d:,} | {dropout:.2f} | {additive:.2f} | {kde:.2f} | {additive / kde:.1f}x |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000", help="sample sizes of the sliced table")
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="tiny shapes (smoke run)")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    cases = ((2000, 20), (2000, 1024), (10_000, 20), (10_000, 1024))
    if args.quick:
        sizes, args.slices, cases = (200,), 10, ((200, 8),)
    sliced_table(sizes, args.slices)
    noise_table(cases)


if __name__ == "__main__":
    main()
