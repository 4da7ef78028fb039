"""The cost of the decodable-information estimators: the held-out probe per layer size, and our
KSG beside the MI libraries' own (cbg-ethz/bmi's `KSGEnsembleFirstEstimator`).

Run by hand: `python -m benchmarks.decodable_bench [--bmi_python PATH]` (about 3 minutes on a
2-core CPU; `--quick` for a smoke run). Prints two markdown tables:

  1. probe: one layer [N, D] of ReLU features of 10 class clusters (a random projection of
     `validation.class_clusters`, so the units are correlated), 5 folds, the default settings;
     seconds per layer after compiling (best of --repeats), and the compile time.
  2. KSG on 5,000 samples of 50 + 50 dimensions (X ~ N(0, I), T = 0.5 X + noise per coordinate:
     I(X;T) = 50 x 0.5 log2(4/3) = 10.38 bits), k = 10: ib_jax's `knn.ksg_information` alone
     and the whole `knn` estimator (KSG plus Ross's I(T;Y)), against bmi 0.1.3's
     `KSGEnsembleFirstEstimator(neighborhoods=(10,))` on the same arrays (its default metric,
     Euclidean within X and within T, and with metric_x="chebyshev", ours), run by
     --bmi_python (a venv of its own: bmi pins an old JAX; ../shared/NOTES.md gives versions
     that import together), best of --repeats each. The ratio is the default bmi's time over
     each one's, measured in the same run.
"""

import argparse
import json
import math
import pathlib
import platform
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.information_bench import best_of
from ib_jax import estimators, validation
from ib_jax.estimators import knn

_BMI_SCRIPT = """
import json, sys, time
from importlib import metadata
import numpy as np
import bmi
data = np.load(sys.argv[1])
x, t = data["x"].astype(np.float64), data["t"].astype(np.float64)
out = {"version": metadata.version("benchmark-mi")}
for metric in ("euclidean", "chebyshev"):
    times, value = [], None
    for _ in range(int(sys.argv[2])):
        estimator = bmi.estimators.KSGEnsembleFirstEstimator(neighborhoods=(10,), metric_x=metric)
        start = time.perf_counter()
        value = estimator.estimate(x, t)
        times.append(time.perf_counter() - start)
    out[metric] = {"seconds": min(times), "nats": float(value)}
print(json.dumps(out))
"""


def relu_layer(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t, y = validation.class_clusters(seed, n=n, dim=d, num_classes=10, separation=2.0, spread=1.0)
    projection = np.random.default_rng(seed).standard_normal((d, d)).astype(np.float32) / math.sqrt(d)
    return np.maximum(t @ projection, 0.0), y


def probe_table(sizes, widths, repeats: int) -> None:
    print("\n| N | D | probe s per layer | compile s | I(T;Y) bits | change over the last 10% |")
    print("| --- | --- | --- | --- | --- | --- |")
    estimator = estimators.Probe()
    for n in sizes:
        for d in widths:
            t, y = relu_layer(n, d)
            acts, labels = jnp.asarray(t)[None], jnp.asarray(y)[None]

            def run(acts=acts, labels=labels):
                return estimators.common.measure((acts,), labels, estimator, num_classes=10, with_extras=True)

            start = time.perf_counter()
            out = jax.block_until_ready(run())
            first = time.perf_counter() - start
            seconds = best_of(run, repeats)
            print(
                f"| {n:,} | {d:,} | {seconds:.2f} | {max(first - seconds, 0.0):.1f} | {float(out[1][0, 0]):.3f} | "
                f"{float(out[2]['change'][0, 0]):+.4f} |",
                flush=True,
            )


def ksg_table(n: int, bmi_python: str, repeats: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 50)).astype(np.float32)
    t = (0.5 * x + math.sqrt(0.75) * rng.standard_normal((n, 50))).astype(np.float32)
    truth = 50 * 0.5 * math.log2(1 / 0.75)
    jitted = jax.jit(lambda a, b: knn.ksg_information(*(knn.scaled(v[None])[0] for v in (a, b)), 10))

    def ksg(a, b):  # in float64 sums, as the estimator runs it
        with jax.enable_x64(True):
            return jitted(a, b)

    y = np.zeros(n, np.int32)
    whole = lambda: estimators.knn_information(t, y, x, k=10)  # noqa: E731
    rows = []
    for name, fn in (("ib_jax knn.ksg_information (KSG only)", lambda: ksg(x, t)), ("ib_jax knn estimator", whole)):
        out = jax.block_until_ready(fn())  # compiles
        value = float(out[0] if isinstance(out, tuple) else out)
        rows.append((name, best_of(fn, repeats), value))
    bmi = None
    if bmi_python:
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "data.npz"
            np.savez(path, x=x, t=t)
            script = pathlib.Path(tmp) / "bmi_ksg.py"
            script.write_text(_BMI_SCRIPT)
            proc = subprocess.run(
                [bmi_python, str(script), str(path), str(repeats)], capture_output=True, text=True, check=False
            )
            if proc.returncode == 0:
                bmi = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                print(f"bmi failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    print(f"\nKSG, k = 10, N = {n:,}, 50 + 50 dimensions; truth {truth:.2f} bits\n")
    print(f"| estimator | seconds (best of {repeats}) | I(X;T) bits | bmi s / ours |")
    print("| --- | --- | --- | --- |")
    for name, seconds, value in rows:
        ratio = f"{bmi['euclidean']['seconds'] / seconds:.1f}x" if bmi else "—"
        print(f"| {name} | {seconds:.3f} | {value:.3f} | {ratio} |")
    if bmi:
        for metric in ("euclidean", "chebyshev"):
            seconds, bits = bmi[metric]["seconds"], bmi[metric]["nats"] / math.log(2)
            ratio = f"{bmi['euclidean']['seconds'] / seconds:.1f}x"
            print(
                f"| bmi {bmi['version']} KSGEnsembleFirstEstimator, {metric} | {seconds:.3f} | {bits:.3f} | {ratio} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (the best is printed)")
    parser.add_argument("--bmi_python", default="", help="python of a venv with bmi 0.1.3 ('' to skip bmi)")
    parser.add_argument("--only", default="", choices=("", "probe", "ksg"), help="one table only")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    if args.quick:
        probe_table((1000,), (10, 100), 1)
        ksg_table(500, args.bmi_python, 1)
    else:
        if args.only in ("", "probe"):
            probe_table((1000, 4000, 10_000), (10, 100, 1024), args.repeats)
        if args.only in ("", "ksg"):
            ksg_table(5000, args.bmi_python, args.repeats)


if __name__ == "__main__":
    main()
