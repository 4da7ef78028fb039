"""How sure is a number: parts 7 and 8 of the ground-truth benchmark (`docs/accuracy.md`).

Run by hand: `python -m benchmarks.accuracy_confidence` (`--quick`: the smallest case of each
part, as the tests do). It prints one table per part and writes `accuracy_confidence.json` to
--output_dir:

  7. The entropy bias corrections against N: `exact` on `validation.quantized_clusters` (K = 2
     classes, separation 2, cells of --code_width) in dim 2 (H(T) = 8.2 bits) and dim 3
     (12.3 bits), N from 100 to 100,000: H(T) (= I(X;T)) and I(T;Y) by the plug-in and each
     correction (`estimators.corrections`), mean +- std over --draws draws (bias).
  8. Bootstrap coverage: over --coverage_draws draws of the data, how often the truth lies within
     +- 2 bootstrap standard errors (--bootstrap resamples) of the estimate, and the mean SE
     against the spread of the estimates over draws (SE / std: 1 where the bootstrap measures the
     estimator's variance well). Cases: `exact` (plug-in, Grassberger, NSB) on the dim-2 codes
     for H(T) and I(T;Y); `knn` (Ross's I(T;Y)) on class clusters in dim 1 (K = 2, half of
     log2 K); `binned` (bin 0.5) on the same clusters against I(T;Y) of T itself.
"""

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import estimators, validation
from ib_jax.estimators import common, corrections

K, SEPARATION, SPREAD = 2, 2.0, 1.0
PARTS = ("corrections", "coverage")


def _codes(seed: int, n: int, dim: int, width: float, draws: int):
    pairs = [
        validation.quantized_clusters(
            seed + s, n=n, dim=dim, num_classes=K, separation=SEPARATION, spread=SPREAD, width=width
        )
        for s in range(draws)
    ]
    return np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs])


_NONE = common.Confidence()


def _measure(estimator, acts, labels, confidence=_NONE, inputs=None):
    i_xt, i_ty, extras = common.measure(
        (jnp.asarray(acts),),
        jnp.asarray(labels),
        estimator,
        num_classes=K,
        with_extras=True,
        confidence=confidence,
        inputs=inputs,
    )
    return np.asarray(i_xt[..., 0], np.float64), np.asarray(i_ty[..., 0], np.float64), extras


def corrections_part(args) -> list[dict]:
    """Part 7: every correction of `exact` on the codes, against N."""
    rows = []
    sizes = (100, 1000) if args.quick else (100, 316, 1000, 3162, 10_000, 31_622, 100_000)
    for dim in (2,) if args.quick else (2, 3):
        truth_h = validation.quantized_clusters_entropy(
            dim=dim, num_classes=K, separation=SEPARATION, spread=SPREAD, width=args.code_width
        )
        truth_i = validation.quantized_clusters_information(
            num_classes=K, separation=SEPARATION, spread=SPREAD, width=args.code_width
        )
        for n in sizes:
            start = time.perf_counter()
            codes, y = _codes(50, n - n % K, dim, args.code_width, args.draws)
            row = dict(dim=dim, N=n, truth_h=truth_h, truth_i=truth_i, estimates={})
            for correction in corrections.CORRECTIONS:
                h, i, _ = _measure(estimators.Exact(correction), codes, y)
                row["estimates"][correction] = dict(h=h.tolist(), i=i.tolist())
            rows.append(row)
            print(f"  corrections: dim {dim}, N = {n:,}: {time.perf_counter() - start:.1f} s", flush=True)
    return rows


def coverage_part(args) -> list[dict]:
    """Part 8: coverage of the truth by +- 2 bootstrap SE."""
    confidence = common.Confidence(bootstrap=args.bootstrap)
    draws = args.coverage_draws
    rows = []
    truth_h = validation.quantized_clusters_entropy(
        dim=2, num_classes=K, separation=SEPARATION, spread=SPREAD, width=args.code_width
    )
    truth_i = validation.quantized_clusters_information(
        num_classes=K, separation=SEPARATION, spread=SPREAD, width=args.code_width
    )
    separation = _half_separation()
    truth_t = validation.class_clusters_information(num_classes=K, separation=separation, spread=SPREAD)
    for n in (1000,) if args.quick else (1000, 10_000, 100_000):
        codes, y = _codes(500, n, 2, args.code_width, draws)
        for correction in ("none", "grassberger", "nsb"):
            h, i, extras = _measure(estimators.Exact(correction), codes, y, confidence)
            for what, values, se, truth in (
                ("H(T)", h, extras["i_xt_se"], truth_h),
                ("I(T;Y)", i, extras["i_ty_se"], truth_i),
            ):
                rows.append(_coverage_row(f"exact ({correction})", what, n, values, se, truth))
        print(f"  coverage: exact, N = {n:,}", flush=True)
    for n in (1000,) if args.quick else (1000, 4000):  # knn (N^2 per resample) at 1,000 only
        pairs = [
            validation.class_clusters(900 + s, n=n, dim=1, num_classes=K, separation=separation, spread=SPREAD)
            for s in range(draws)
        ]
        t = np.stack([p[0] for p in pairs]).astype(np.float32)
        y = np.stack([p[1] for p in pairs])
        named = [("binned 0.5", estimators.Binning(bin_size=0.5))] + (
            [("knn (Ross)", estimators.KNN(k=3))] if n <= 1000 else []
        )
        for name, estimator in named:
            inputs = jnp.asarray(t) if estimator.needs_inputs else None
            _, i, extras = _measure(estimator, t, y, confidence, inputs=inputs)
            rows.append(_coverage_row(name, "I(T;Y)", n, i, extras["i_ty_se"], truth_t))
        print(f"  coverage: clusters, N = {n:,}", flush=True)
    return rows


def _half_separation() -> float:
    lo, hi = 0.0, 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if validation.class_clusters_information(num_classes=K, separation=mid, spread=SPREAD) < 0.5:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _coverage_row(name, what, n, values, se, truth) -> dict:
    se = np.asarray(se, np.float64).ravel()
    return dict(
        estimator=name,
        quantity=what,
        N=n,
        truth=truth,
        bias=float(values.mean() - truth),
        spread=float(values.std(ddof=1)),
        mean_se=float(se.mean()),
        coverage=float(np.mean(np.abs(values - truth) <= 2 * se)),
        draws=len(values),
    )


def _cell(values, truth) -> str:
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std():.3f} ({values.mean() - truth:+.3f})"


def print_tables(result: dict) -> None:
    if "corrections" in result:
        print(
            f"\n### Part 7: entropy bias corrections on discrete codes; mean ± std over {result['draws']} draws (bias)"
        )
        for quantity, key, truth_key in (("H(T) = I(X;T)", "h", "truth_h"), ("I(T;Y)", "i", "truth_i")):
            header = ["dim", "N", "truth", *corrections.CORRECTIONS]
            print(f"\n{quantity}\n\n| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
            for row in result["corrections"]:
                cells = [str(row["dim"]), f"{row['N']:,}", f"{row[truth_key]:.3f}"]
                cells += [_cell(row["estimates"][c][key], row[truth_key]) for c in corrections.CORRECTIONS]
                print("| " + " | ".join(cells) + " |")
    if "coverage" in result:
        print(
            f"\n### Part 8: coverage of the truth by ± 2 bootstrap SE ({result['bootstrap']} resamples) over "
            f"{result['coverage_draws']} draws\n"
        )
        print("| estimator | quantity | N | truth | bias | std over draws | mean SE | SE / std | coverage |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in result["coverage"]:
            ratio = row["mean_se"] / row["spread"] if row["spread"] > 0 else float("nan")
            print(
                f"| {row['estimator']} | {row['quantity']} | {row['N']:,} | {row['truth']:.3f} | {row['bias']:+.3f} | "
                f"{row['spread']:.4f} | {row['mean_se']:.4f} | {ratio:.2f} | {row['coverage']:.0%} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest case of each part (smoke run)")
    parser.add_argument("--draws", type=int, default=10, help="draws of the data per case of part 7")
    parser.add_argument("--coverage_draws", type=int, default=100, help="draws of the data per case of part 8")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples of part 8")
    parser.add_argument("--code_width", type=float, default=0.25, help="cell width of the discrete codes")
    parser.add_argument("--output_dir", default="runs/accuracy", help="where accuracy_confidence.json goes")
    parser.add_argument("--parts", default=",".join(PARTS), help="the parts to measure")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws, args.coverage_draws, args.bootstrap = 2, 4, 4
    if args.draws < 1 or args.coverage_draws < 2 or args.bootstrap < 2:
        parser.error("--draws >= 1, --coverage_draws >= 2, --bootstrap >= 2")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts must name some of {', '.join(PARTS)}")
    out = pathlib.Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device, cpu = jax.devices()[0], platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    result = dict(
        draws=args.draws, coverage_draws=args.coverage_draws, bootstrap=args.bootstrap, code_width=args.code_width
    )
    start = time.perf_counter()
    if "corrections" in parts:
        result["corrections"] = corrections_part(args)
    if "coverage" in parts:
        result["coverage"] = coverage_part(args)
    result["seconds"] = time.perf_counter() - start
    (out / "accuracy_confidence.json").write_text(json.dumps(result, indent=1) + "\n")
    print_tables(result)
    print(f"\n{result['seconds']:.0f} s; {out / 'accuracy_confidence.json'}")


if __name__ == "__main__":
    main()
