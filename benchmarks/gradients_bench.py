"""Overhead of the gradient statistics: whole runs with and without them, in one process.

Run by hand: `python -m benchmarks.gradients_bench` (add `--quick` for a short run). Runs of
each case with `gradient_stats` off and on, alternating, best of `--repeats` each: the wall
time of `experiment.run`, with JAX's persistent compilation cache on, so that the repeated runs
load their programs instead of compiling them and the times are those of training and
measuring; and the overhead in percent:
  * the 12-bit task with the IDNNs preset (Adam 4e-4, batch 512, 8,000 epochs, 275 measured
    epochs): statistics over each measured epoch's 6 minibatches, accumulated in the scan;
  * MNIST, 1,000 training and 1,000 test images, the reimplemented network and optimiser (full
    batch), 300 epochs, information every 20: statistics from 16 sub-batches at each measured
    epoch.
"""

import argparse
import tempfile
import time

import jax

from ib_jax import estimators, experiment, train


def cases(quick: bool, data_dir: str):
    idnns = experiment.ExperimentConfig(
        dataset="tishby",
        train=train.TrainConfig(
            hidden=(10, 7, 5, 4, 3),
            optimizer="adam",
            learning_rate=4e-4,
            batch_size=512,
            loss_reduction="mean",
            init="truncated_normal",
        ),
        epochs=800 if quick else 8000,
        mi_log_points=400,
        binning=estimators.Binning(num_bins=29, value_range=(-1.0, 1.0)),
        evaluate_on_all=True,
    )
    mnist = experiment.ExperimentConfig(
        dataset="mnist", epochs=40 if quick else 300, mi_every=20, train_size=1000, test_size=1000
    )
    return [("12-bit, IDNNs preset", idnns, None), ("MNIST 1k/1k, full batch", mnist, data_dir)]


def timed_run(config, data_dir):
    dataset = experiment.load_dataset(config, data_dir)
    out = experiment.prepare_output_dir(tempfile.mkdtemp(), False)
    start = time.perf_counter()
    experiment.run(config, dataset, out, checkpoint_every_s=1e9)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (smoke run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data_dir", default="../shared/data")
    args = parser.parse_args()
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    device = jax.devices()[0]
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind}")
    print("| case | epochs | without statistics (s) | with statistics (s) | overhead |")
    print("| --- | --- | --- | --- | --- |")
    for name, config, data_dir in cases(args.quick, args.data_dir):
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for stats in (False, True):
                changed = experiment.ExperimentConfig(**{**config.__dict__, "gradient_stats": stats})
                times[stats].append(timed_run(changed, data_dir))
        off, on = min(times[False]), min(times[True])
        print(f"| {name} | {config.epochs} | {off:.1f} | {on:.1f} | {100 * (on / off - 1):+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
