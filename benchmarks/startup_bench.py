"""Start-up: the 12-bit default run (`python -m experiments.tishby`) from the shell, cold and warm.

Run by hand: `python -m benchmarks.startup_bench` (about a minute and a half). Each run is a
fresh `python -m` process, as a user starts it, timed from outside (wall seconds):
  * off: `--compilation_cache off` (every program compiled, nothing kept): the baseline;
  * cold: an empty cache folder (compiled, and written to the cache);
  * warm: the same folder again, `--repeats` times (the programs loaded, not compiled).
It prints the wall times, warm against off as a speed-up, and where a warm run's time goes:
the imports, tracing and lowering of the programs (JAX's own timers; lowering includes the
cache's key), loading them from the cache, the training loop, and the figures. `--epochs`
shortens the run (the default is the main's 10,000).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# A child: the main run under timers, its phases written as JSON to the path in $STARTUP_PHASES.
_CHILD = r"""
import json, os, runpy, sys, time, collections
t0 = time.monotonic()
import experiments.common  # the main's imports (jax, flax, optax, ib_jax; the main itself defines flags)
imported = time.monotonic()
from jax._src import monitoring
from experiments import common
from ib_jax import experiment
seconds = collections.defaultdict(float)
def listen(event, duration, **_):
    seconds[event] += duration
monitoring.register_event_duration_secs_listener(listen)
stamps = {}
def timed(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            stamps[key] = time.monotonic() - start
    setattr(owner, name, wrapper)
timed(experiment, "run", "run")
timed(common, "_finish", "figures")
def report():
    phases = {"imports": imported - t0, **stamps}
    events = ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration", "backend_compile_duration")
    phases["compile"] = [seconds["/jax/core/compile/" + e] for e in events]
    with open(os.environ["STARTUP_PHASES"], "w") as f:
        json.dump(phases, f)
import atexit
atexit.register(report)
sys.argv = ["experiments.tishby", *sys.argv[1:]]
runpy.run_module("experiments.tishby", run_name="__main__")
"""


def run(args, cache: str, out: str) -> tuple[float, dict]:
    phases = os.path.join(out, "phases.json")
    command = [sys.executable, "-c", _CHILD, f"--output_dir={out}/run", "--overwrite", f"--compilation_cache={cache}"]
    if args.epochs is not None:
        command.append(f"--epochs={args.epochs}")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "STARTUP_PHASES": phases})
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"error: the run failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    with open(phases) as f:
        return wall, json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs (the best is reported)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of each run (default: the main's)")
    args = parser.parse_args()
    if args.repeats < 1:
        sys.exit("error: --repeats must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        off, _ = run(args, "off", tmp)
        cold, _ = run(args, cache, tmp)
        warm = [run(args, cache, tmp) for _ in range(args.repeats)]
    best, phases = min(warm, key=lambda w: w[0])
    print("| run | wall s | each run |")
    print("| --- | --- | --- |")
    print(f"| off (no cache) | {off:.1f} | |")
    print(f"| cold (empty cache) | {cold:.1f} | |")
    print(f"| warm (best of {args.repeats}) | {best:.1f} | {', '.join(f'{w:.1f}' for w, _ in warm)} |")
    print(f"\nwarm vs off: {off / best:.2f}x faster; cold vs off: {off / cold:.2f}x")
    trace, lower, load = phases["compile"]
    rest = best - phases["imports"] - phases["run"] - phases["figures"]
    print(f"\nthe best warm run's {best:.1f} s:")
    print(f"  imports {phases['imports']:.2f} s")
    print(
        f"  run {phases['run']:.2f} s: tracing {trace:.2f}, lowering {lower:.2f}, loading {load:.2f}; training, "
        f"measuring and writing {phases['run'] - trace - lower - load:.2f}"
    )
    print(f"  figures {phases['figures']:.2f} s")
    print(f"  interpreter start, data, checks and exit {rest:.2f} s")


if __name__ == "__main__":
    main()
