"""Finite I(X;T) against known truths: parts 4-6 of the ground-truth benchmark (`docs/accuracy.md`).

Run by hand: `python -m benchmarks.accuracy_finite` (`--quick`: the smallest case of each part,
as the tests do; `--parts noise` measures one part again and keeps the others of the JSON). It
prints one table per part and writes `accuracy_finite.json` to --output_dir:

  4. Jointly Gaussian (X, T) (`validation.correlated_gaussians`), Dx = Dt = dim in {1, 10, 100,
     1,000}, N in --sizes, two dependence patterns: "one" (a single canonical correlation 0.9:
     I(X;T) = 1.198 bits) and "many" (min(dim, 10) correlations of 0.6). `knn` (KSG) against the
     closed-form I(X;T) (where N^2 (Dx + Dt) <= --knn_max_work: not at N = 4,000, dim 1,000);
     `sliced` (m = --slices) against the closed-form sliced information of its own slices (each
     slice's pair is Gaussian) and against SI itself (the closed form over --truth_slices
     random slices).
  5. Layers with noise of their own: `noise_mc` against an independent numpy Monte Carlo
     (`validation.diagonal_noise_information`), mu = tanh of random projections of Gaussian
     inputs at widths 3 to 1,024, additive (SIGMA = 0.5) and Gaussian dropout (P = 0.2, 0.5),
     N up to 10,000 (--noise_draws layers per case): both values with their standard errors
     and their difference, also in units of the combined error (z).
  6. Sliced SI(T;Y) of class clusters (K = 10, the informative axis carrying 90% of log2 K) in
     dim in {1, 10, 100, 1,000}: `sliced` against the 1-D quadrature of each of its own slices
     (`validation.clusters_sliced_information`) and against SI itself (--truth_slices slices).
The estimates of parts 4 and 6 are the mean +- std over --draws draws of the data.
"""

import argparse
import json
import math
import pathlib
import platform
import time

import jax
import numpy as np

from ib_jax import estimators, noise, results, validation
from ib_jax.estimators import sliced

CORRELATION_SETS = {"one": lambda dim: [0.9], "many": lambda dim: [0.6] * min(dim, 10)}
NOISES = ("additive:0.5", "gaussian_dropout:0.2", "gaussian_dropout:0.5")
_REFERENCE_SEED = 10_000  # + the draw: the reference Monte Carlo's seed, apart from the data's
PARTS = ("gaussian", "noise", "clusters")


def _own_slices(seed: int, slices: int, dim_x: int, dim_t: int):
    key = jax.random.key(seed)
    theta = np.asarray(sliced.frames(jax.random.fold_in(key, 0), slices, dim_x, 1))
    phi = np.asarray(sliced.frames(jax.random.fold_in(key, 1), slices, dim_t, 1))
    return theta, phi


def _random_frames(seed: int, count: int, width: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((count, width, 1))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def gaussian_part(args) -> list[dict]:
    rows = []
    for n in args.sizes:
        for dim in args.dims:
            for pattern, make in CORRELATION_SETS.items():
                rho = make(dim)
                cross = validation.cross_covariance(dim, dim, rho)
                si_true, si_err = validation.gaussian_sliced_information(
                    cross, _random_frames(1, args.truth_slices, dim), _random_frames(2, args.truth_slices, dim)
                )
                knn, sl, own = [], [], []
                for draw in range(args.draws):
                    x, t = validation.correlated_gaussians(draw, n=n, dim_x=dim, dim_t=dim, correlations=rho)
                    y = np.zeros(n, np.int32)
                    if n * n * 2 * dim <= args.knn_max_work:
                        knn.append(float(estimators.knn_information(t, y, x)[0]))
                    si_xt, _, _, _ = estimators.sliced_information(t, y, x, slices=args.slices, seed=draw)
                    sl.append(float(si_xt))
                    theta, phi = _own_slices(draw, args.slices, dim, dim)
                    own.append(validation.gaussian_sliced_information(cross, theta, phi)[0])
                rows.append(
                    dict(
                        n=n,
                        dim=dim,
                        pattern=pattern,
                        truth=validation.gaussian_information(rho),
                        si_truth=si_true,
                        si_truth_error=si_err,
                        knn=knn,
                        sliced=sl,
                        sliced_own_truth=own,
                    )
                )
                print(f"  gaussian N={n} dim={dim} {pattern}: done", flush=True)
    return rows


def noise_part(args) -> list[dict]:
    rows = []
    for n, width in args.noise_cases:
        for spec in NOISES:
            values, errors, truths, truth_errors = [], [], [], []
            layer_noise = noise.LayerNoise.parse(spec)
            for draw in range(args.noise_draws):
                rng = np.random.default_rng(draw)
                g = rng.standard_normal((n, 12))
                mu = np.tanh(g @ rng.standard_normal((12, width)) / math.sqrt(12) * 1.5).astype(np.float32)
                y = np.zeros(n, np.int32)
                i_xt, _, se_xt, _ = estimators.noise_mc_information(mu, y, noise=spec, samples=args.noise_samples)
                var = np.maximum(np.asarray(layer_noise.variance(mu), np.float64), 1e-6)
                # The reference's draws from a seed of their own: the layer's inputs came from `draw`.
                truth, err = validation.diagonal_noise_information(
                    mu, var, draws=args.reference_draws * n, seed=_REFERENCE_SEED + draw
                )
                values.append(float(i_xt))
                errors.append(float(se_xt))
                truths.append(truth)
                truth_errors.append(err)
            rows.append(
                dict(
                    n=n,
                    width=width,
                    noise=spec,
                    noise_mc=values,
                    se=errors,
                    reference=truths,
                    reference_se=truth_errors,
                )
            )
            print(f"  noise N={n} width={width} {spec}: done", flush=True)
    return rows


def clusters_part(args) -> list[dict]:
    rows = []
    k = 10
    target = 0.9 * math.log2(k)
    separation = _separation_for(k, target)
    for dim in args.dims:
        n = max(args.sizes)
        si_true, si_err = validation.clusters_sliced_information(
            _random_frames(3, args.truth_slices // 10, dim),
            num_classes=k,
            separation=separation,
            spread=1.0,
            points=4001,
        )
        values, own = [], []
        for draw in range(args.draws):
            t, y = validation.class_clusters(draw, n=n, dim=dim, num_classes=k, separation=separation, spread=1.0)
            _, si_ty, _, _ = estimators.sliced_information(t, y, t[:, :1], slices=args.slices, seed=draw)
            values.append(float(si_ty))
            _, phi = _own_slices(draw, args.slices, 1, dim)
            own.append(
                validation.clusters_sliced_information(
                    phi, num_classes=k, separation=separation, spread=1.0, points=4001
                )[0]
            )
        rows.append(
            dict(
                n=n,
                dim=dim,
                truth_1d=target,
                si_truth=si_true,
                si_truth_error=si_err,
                sliced=values,
                sliced_own_truth=own,
            )
        )
        print(f"  clusters dim={dim}: done", flush=True)
    return rows


def _separation_for(num_classes: int, bits: float) -> float:
    lo, hi = 0.0, 50.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if validation.class_clusters_information(num_classes=num_classes, separation=mid, spread=1.0) < bits:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _cell(values, truth=None) -> str:
    v = np.asarray(values, np.float64)
    if not v.size:
        return "—"
    text = f"{v.mean():.3f} ± {v.std():.3f}"
    return text if truth is None else f"{text} ({v.mean() - truth:+.3f})"


def print_tables(result: dict) -> None:
    print("\n### Jointly Gaussian (X, T): KSG against I(X;T), sliced against SI (bits; mean ± std over draws, bias)")
    print("| N | dim | correlations | I(X;T) | knn (KSG) | SI(X;T) | sliced | its own slices' truth |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in result["gaussian"]:
        own = float(np.mean(r["sliced_own_truth"]))
        print(
            f"| {r['n']:,} | {r['dim']:,} | {r['pattern']} | {r['truth']:.3f} | {_cell(r['knn'], r['truth'])} | "
            f"{r['si_truth']:.4f} | {_cell(r['sliced'], r['si_truth'])} | {own:.4f} |"
        )
    print(
        "\n### noise_mc against an independent Monte Carlo (bits; the first layer drawn: value ± standard error; "
        "every layer: mean difference, mean z)"
    )
    print("| N | width | noise | noise_mc | reference | difference (z) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in result["noise"]:
        diff = np.asarray(r["noise_mc"]) - np.asarray(r["reference"])
        z = diff / np.hypot(r["se"], r["reference_se"])
        print(
            f"| {r['n']:,} | {r['width']:,} | {r['noise']} | {r['noise_mc'][0]:.3f} ± {r['se'][0]:.3f} | "
            f"{r['reference'][0]:.3f} ± {r['reference_se'][0]:.3f} | {diff.mean():+.4f} ({z.mean():+.1f}) |"
        )
    print("\n### Sliced SI(T;Y) of class clusters, K = 10 (bits)")
    print("| N | dim | I(T;Y) | SI(T;Y) | sliced | its own slices' truth |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in result["clusters"]:
        own = float(np.mean(r["sliced_own_truth"]))
        print(
            f"| {r['n']:,} | {r['dim']:,} | {r['truth_1d']:.3f} | {r['si_truth']:.3f} | "
            f"{_cell(r['sliced'], own)} | {own:.3f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest case of each part (smoke run)")
    parser.add_argument("--draws", type=int, default=3, help="draws of the data per case")
    parser.add_argument("--sizes", default="1000,4000", help="sample sizes N of parts 4 and 6 (6 takes the largest)")
    parser.add_argument("--dims", default="1,10,100,1000", help="dimensions of parts 4 and 6")
    parser.add_argument("--slices", type=int, default=1000, help="the sliced estimator's slices")
    parser.add_argument("--truth_slices", type=int, default=100_000, help="random slices of the SI truths")
    parser.add_argument(
        "--knn_max_work", type=float, default=4e9, help="knn runs where N^2 (Dx + Dt) is at most this (its cost)"
    )
    parser.add_argument("--noise_samples", type=int, default=8, help="noise_mc's draws per sample")
    parser.add_argument("--reference_draws", type=int, default=4, help="the reference's draws per sample")
    parser.add_argument("--noise_draws", type=int, default=2, help="draws of the layer per case of part 5")
    parser.add_argument("--output_dir", default="runs/accuracy", help="where accuracy_finite.json goes")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="the parts to measure; the others are kept from an existing JSON"
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = tuple(int(s) for s in args.sizes.split(","))
        args.dims = tuple(int(s) for s in args.dims.split(","))
    except ValueError:
        parser.error("--sizes and --dims must be comma-separated integers")
    args.noise_cases = ((1000, 3), (1000, 32), (1000, 1024), (2000, 1024), (10_000, 3), (10_000, 32))
    if args.quick:
        args.draws, args.sizes, args.dims, args.slices, args.truth_slices = 1, (300,), (1, 10), 20, 2000
        args.noise_draws = 1
        args.noise_cases = ((200, 3),)
    if args.draws < 1 or min(args.sizes) < 20 or args.slices < 2 or min(args.dims) < 1:
        parser.error("--draws >= 1, every size >= 20, --slices >= 2, every dim >= 1")
    out = pathlib.Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts must name some of {', '.join(PARTS)}")
    path = out / "accuracy_finite.json"
    result = dict(draws=args.draws, slices=args.slices, truth_slices=args.truth_slices)
    if set(parts) != set(PARTS):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            parser.error(f"--parts {args.parts}: the other parts come from {path}, which cannot be read: {e}")
    start = time.perf_counter()
    functions = {"gaussian": gaussian_part, "noise": noise_part, "clusters": clusters_part}
    for part in parts:
        result[part] = functions[part](args)
    result["seconds"] = time.perf_counter() - start
    print_tables(result)
    results.atomic_write(path, lambda f: f.write(json.dumps(result, indent=1).encode()))
    print(f"\ntook {result['seconds']:.0f} s ({', '.join(parts)}); wrote {path}")
    return result


if __name__ == "__main__":
    main()
