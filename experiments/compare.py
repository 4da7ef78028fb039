"""Two or more runs side by side, on shared scales.

  python -m experiments.compare runs/mnist_true runs/mnist_random  # writes runs/compare.png

`--layout runs` (default): a column per run, a row per split: the information plane of one
estimator (`--estimator`, default each run's first). The reimplemented project's headline
figure is this with a true-label and a random-label run.

`--layout headline RUN_TRUE RUN_RANDOM`: the reimplemented project's headline figure, 2 x 2:
the information plane of --split on top, I(X;T) of the last five layers against epoch below.

`--layout estimators`: a row per run, a column per estimator measured by every run (or those
of `--estimators`), the information plane of `--split`; it also prints a table of the last
hidden layer's I(X;T) at its peak and at the end, mean +- std over seeds, per run and
estimator. Saxe et al.'s tanh-vs-ReLU comparison (docs/results/saxe.md):

  python -m experiments.compare runs/saxe_tanh runs/saxe_relu --layout estimators \\
      --names tanh,ReLU --output saxe.png

A memorization sweep's conditions are never averaged together: `--condition NAME` picks one
(for every sweep among the runs, or one name per run), and a sweep given without it is refused
with the list of its conditions. Each run is drawn with its own layers' names and widths; a run
that diverged or is unfinished is marked in its titles and in a printed note. `--csv FILE`
also writes the runs' tidy table (docs/outputs.md):

  python -m experiments.compare runs/memorization runs/mnist_true --condition permuted
  python -m experiments.compare runs/mnist_true runs/mnist_random --csv runs/planes.csv
"""

import pathlib

from absl import flags

from ib_jax import errors, outcome, plotting, results, tidy

from . import common
from . import flags as flag_table

_FLAGS = flag_table.define("compare")
flags.adopt_module_key_flags(flag_table)
_OUTPUT, _NAMES, _LAYOUT = _FLAGS["output"], _FLAGS["names"], _FLAGS["layout"]
_ESTIMATOR, _ESTIMATORS, _SPLIT = _FLAGS["estimator"], _FLAGS["estimators"], _FLAGS["split"]
_CONDITION, _CSV = _FLAGS["condition"], _FLAGS["csv"]


def _one_condition(res, run: str, condition: str) -> dict:
    """The run, or the condition `condition` of it (required where the run is a sweep)."""
    if condition:
        return outcome.select_condition(res, condition, run)
    outcome.single_condition(res, run)
    return res


def load_runs(runs: list[str], conditions: list[str] | None) -> tuple[list[dict], list[str]]:
    """Each run's results, restricted to a condition: one name for every sweep among the runs
    (the other runs whole), or one per run (empty: the run whole); and each run's default title
    (its name, with the condition drawn where the run has several)."""
    conditions = conditions or [""]
    if len(conditions) not in (1, len(runs)):
        raise errors.ConfigError(
            f"--condition has {len(conditions)} names for {len(runs)} runs: give one, or one per run"
        )
    per_run = conditions * len(runs) if len(conditions) == 1 else conditions
    loaded, titles = [], []
    for run, condition in zip(runs, per_run):
        res = results.load_results(run)
        several = len(results.conditions(res)) > 1
        loaded.append(_one_condition(res, run, condition.strip() if len(conditions) > 1 or several else ""))
        titles.append(results.load_config(run).get("name") or run)
        if several:
            titles[-1] += f" ({outcome.condition_name(*results.conditions(loaded[-1])[0])})"
    return loaded, titles


def _table(loaded, names, chosen, split) -> str:
    lines = [
        f"| run | estimator | last hidden layer | peak I(X;T) ({split}) | end I(X;T) | peak epoch | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res, name in zip(loaded, names):
        layer = max(len(res["layer_widths"]) - 2, 0)
        for estimator in chosen:
            r = outcome.peak_and_end(res, estimator, split, layer)
            shown = estimator  # an I(T;Y)-only estimator's plane (the probe's) has another's I(X;T)
            if not outcome.measures_xt(res, estimator):
                shown += f" (I(X;T) by {outcome.plane_partner(res, estimator) or 'none'})"
            lines.append(
                f"| {name} | {shown} | {plotting.layer_label(res, layer)} | "
                f"{r['peak_mean']:.2f} ± {r['peak_std']:.2f} | {r['end_mean']:.2f} ± {r['end_std']:.2f} | "
                f"{r['peak_epoch']} | {r['seeds']} |"
            )
    return "\n".join(lines)


def _estimator_of(res, run: str, estimator: str) -> dict:
    try:
        return results.estimator_view(res, estimator)
    except errors.DataError as e:
        raise errors.DataError(f"{run}: {e}") from None


def main(argv):
    runs = argv[1:]
    if len(runs) < 2:
        common.fail("error: give at least two run folders: python -m experiments.compare RUN_A RUN_B", 2)
    output = pathlib.Path(_OUTPUT.value or pathlib.Path(runs[0]).parent / "compare.png")
    try:
        loaded, titles = load_runs(runs, _CONDITION.value)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise errors.ConfigError(f"cannot make the folder of --output {output}: {e.strerror or e}") from None
        names = _NAMES.value or titles
        if len(names) != len(runs):
            raise errors.ConfigError(f"--names has {len(names)} names for {len(runs)} runs")
        if _LAYOUT.value in ("runs", "headline"):
            # Each run's view of --estimator, else of its first: its error bars and null travel with it.
            loaded = [
                _estimator_of(res, run, _ESTIMATOR.value or results.estimator_names(res)[0])
                for res, run in zip(loaded, runs)
            ]
            if _LAYOUT.value == "runs":
                plotting.compare_figure(loaded, names, output)
            elif len(loaded) != 2:
                raise errors.ConfigError(f"--layout headline takes two runs (true, random labels), got {len(loaded)}")
            else:
                plotting.headline_figure(loaded, names, output, _SPLIT.value)
        else:
            shared = [
                e
                for e in results.estimator_names(loaded[0])
                if all(e in results.estimator_names(res) for res in loaded)
            ]
            chosen = _ESTIMATORS.value or shared
            missing = [e for e in chosen if e not in shared]
            if missing or not chosen:
                raise errors.ConfigError(
                    f"not every run measured {', '.join(missing) or 'any common estimator'}; "
                    f"they share {', '.join(shared) or 'none'}"
                )
            plotting.estimators_grid_figure(loaded, names, chosen, _SPLIT.value, output)
            print(_table(loaded, names, chosen, _SPLIT.value))
        if _CSV.value:
            tidy.write_csv(_CSV.value, [tidy.records(res, run) for res, run in zip(loaded, runs)])
    except (errors.DataError, errors.ConfigError) as e:
        common.fail(f"error: {e}", 2)
    except OSError as e:
        common.fail(f"error: writing {e.filename or 'the output'} failed ({e.strerror or e})", 1)
    for res, run in zip(loaded, runs):
        status = outcome.run_status(res)
        if status:
            print(f"note: {run}: {status}")
    print(f"figure: {output}")
    if _CSV.value:
        print(f"table: {_CSV.value}")


def cli():
    """The console script `ib-jax-compare` (pip install .): the same main as `python -m experiments.compare`."""
    common.start(main, __doc__)


if __name__ == "__main__":
    cli()
