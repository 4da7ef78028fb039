"""Two or more runs side by side: the information plane of each split, shared scales.

  python -m experiments.compare runs/mnist_true runs/mnist_random --output compare.png

The reimplemented project's headline figure is this with a true-label and a random-label run.
"""

from absl import app, flags

from experiments import common
from ib_jax import errors, plotting, results

_OUTPUT = flags.DEFINE_string("output", "compare.png", "Where to write the figure (PNG).")
_NAMES = flags.DEFINE_list("names", None, "Column titles (default: each run's name, else its folder).")


def main(argv):
    runs = argv[1:]
    if len(runs) < 2:
        common.fail("error: give at least two run folders: python -m experiments.compare RUN_A RUN_B", 2)
    try:
        loaded = [results.load_results(r) for r in runs]
    except errors.DataError as e:
        common.fail(f"error: {e}", 2)
    names = _NAMES.value or [results.load_config(r).get("name") or r for r in runs]
    if len(names) != len(runs):
        common.fail(f"error: --names has {len(names)} names for {len(runs)} runs", 2)
    plotting.compare_figure(loaded, names, _OUTPUT.value)
    print(f"figure: {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
