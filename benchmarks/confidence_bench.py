"""The cost of confidence (`docs/performance.md`), run by hand:

    python -m benchmarks.confidence_bench

The measurement of one measured epoch of one row (every layer, both splits, `measure_splits` as
a run calls it) by `binned` and by `kde_upper`, alone, without confidence and with
`--bootstrap 20`, `--null_permutations 20` and both, each timed in the same run; and the
convergence check (nested subsets of N/8, N/4, N/2). Two networks, as their mains build them
from their flags' defaults: the 12-bit main (12-10-7-5-4-3-2 tanh, N = 3,277 + 819) and the MNIST
main on 2,000 training and 1,000 test images (784-1024-1024-20-20-20-10-10 ReLU). Best of 3
after compiling (of 1 where the first call took over 20 s); the machine is named in the first
line printed.
"""

import argparse
import functools
import platform
import time

import jax
import numpy as np

from experiments import flags as flags_lib
from ib_jax import experiment, train
from ib_jax.estimators import channels, common

CASES = {
    "none": common.Confidence(),
    "bootstrap 20": common.Confidence(bootstrap=20),
    "null 20": common.Confidence(null_permutations=20),
    "both": common.Confidence(bootstrap=20, null_permutations=20),
}


def _config(main: str, data_dir: str, **changes) -> experiment.ExperimentConfig:
    vals = {f.name: f.default for f in flags_lib.flags_of(main)}
    if main == "tishby":
        vals.update(flags_lib.PRESETS[vals["preset"]])
    fixed = {"dataset": "mnist" if main == "mnist" else "tishby"}
    config = flags_lib.config(main, vals, False, **fixed)
    return experiment.ExperimentConfig(**{**config.__dict__, **changes})


def _splits(config, data_dir):
    dataset = experiment.load_dataset(config, data_dir)
    state = train.create_state(jax.random.key(0), config.train, dataset.x_train.shape[1], dataset.num_classes)
    out = []
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
        _, acts = train.evaluate(state.apply_fn, state.params, x, y)
        out.append((tuple(acts), np.asarray(y), None))
    return out, dataset.num_classes


def _best(fn, repeats=3) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    if time.perf_counter() - start > 20:  # compiling included: a slow case is timed once more
        repeats = 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def _seconds(chosen, splits, k, what: str) -> dict[str, float]:
    """The measurement's seconds without confidence, with each case of `CASES`, and with the
    convergence check."""
    seconds = {}
    for case, confidence in CASES.items():
        fn = jax.jit(functools.partial(channels.measure_splits, chosen, num_classes=k, confidence=confidence))
        seconds[case] = _best(lambda f=fn: f(splits))
        print(f"  {what}, {case}: {seconds[case]:.3f} s", flush=True)
    fn = jax.jit(functools.partial(channels.measure_splits, chosen, num_classes=k, convergence="measure"))
    seconds["convergence"] = _best(lambda: fn(splits))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="../shared/data", help="MNIST's files (torchvision's layout)")
    parser.add_argument("--estimators", default="binned,kde_upper")
    args = parser.parse_args(argv)
    device, cpu = jax.devices()[0], platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    networks = {
        "12-bit default (N = 3,277 + 819)": _config("tishby", args.data_dir),
        "MNIST 2,000 + 1,000 images": _config("mnist", args.data_dir, train_size=2000, test_size=1000),
    }
    names = [n.strip() for n in args.estimators.split(",")]
    print("\n| network | estimator | measurement | + bootstrap 20 | + null 20 | + both | + convergence (N/8..N/2) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for title, config in networks.items():
        splits, k = _splits(config, args.data_dir)
        for name in names:
            chosen = experiment.measured_estimators(
                experiment.ExperimentConfig(**{**config.__dict__, "estimators": (name,)})
            )
            seconds = _seconds(chosen, splits, k, f"{title}, {name}")
            base = seconds["none"]
            cells = [f"{seconds[c]:.3f} s ({seconds[c] / base:.1f}x)" for c in (*list(CASES)[1:], "convergence")]
            print(f"| {title} | {name} | {base:.3f} s | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
