"""Memorization in the information plane: Zhang et al.'s corruptions as one program.

Every condition (true labels; labels corrupted with probability p for each level of
--label_corruption_levels; the reimplemented project's permuted labels; shuffled pixels,
random pixels and Gaussian inputs) x --num_seeds seeds trains as ONE compiled program: rows
vmapped, grouped and sharded over devices like seeds. A CPU run on a 1,000-image subset, the
one in docs/results/memorization.md (24 to 40 minutes on 2 cores):

  python -m experiments.memorization --data_dir ../shared/data --train_size 1000 \\
      --test_size 1000 --epochs 1000 --mi_every 25 --output_dir runs/memorization

Outputs in --output_dir: results.npz (rows in place of seeds, plus `condition`, `corruption`,
`seed`, `epochs_to_fit`), summary.json (one object per row), config.json, zhang.png (training
loss per condition; epochs to fit and test error against p), information_plane_conditions_*.png
(every condition's plane) and headline.png (true vs permuted labels: the plane above, I(X;T) of
the last five layers below). Expect every condition to fit, fitting to take longer as p
grows, test accuracy to fall to chance at p = 1, and shuffled pixels to generalise like true
pixels (a fully connected network does not see the pixel order).

Defaults: the reimplemented project's network on the full data (a GPU job) with SGD 0.01,
momentum 0.9, batch 100 and the mean loss, under which every condition fits (one row of
docs/results/memorization.md, p = 0.6, dipped once after fitting and refitted); the project's
own optimiser is `--optimizer adam --learning_rate 1e-3 --momentum 0 --batch_size 0
--loss_reduction sum`.
"""

from absl import flags

from . import common
from . import flags as flag_table

_FLAGS = flag_table.define("memorization")
flags.adopt_module_key_flags(flag_table)


def conditions_from_flags(vals) -> tuple[str, ...]:
    """The sweep's conditions: true labels, each label corruption level, the permuted labels,
    then each input corruption."""
    if vals["random_labels"] or vals["label_corruption"]:
        raise common.errors.ConfigError(
            "--random_labels and --label_corruption are single-condition flags; use "
            "--permuted_labels and --label_corruption_levels here"
        )
    levels = []
    for text in vals["label_corruption_levels"]:
        try:
            levels.append(float(text))
        except ValueError:
            raise common.errors.ConfigError(f"--label_corruption_levels must be numbers, got {text!r}") from None
    conditions = ["true", *(f"labels:{p:g}" for p in levels)]
    if vals["permuted_labels"]:
        conditions.append("permuted")
    conditions += [c.strip() for c in vals["input_corruptions"]]
    return tuple(conditions)


def main(argv):
    if len(argv) > 1:
        common.fail(f"error: unexpected arguments {argv[1:]}", 2)
    vals = flag_table.values("memorization", _FLAGS)
    common.init_distributed(vals)
    try:
        dataset, title = common.dataset_from_flag(vals["dataset"])
        conditions = conditions_from_flags(vals)
        config = flag_table.config(
            "memorization", vals, _FLAGS["bin_size"].present, dataset=dataset, conditions=conditions
        )
    except common.errors.ConfigError as e:
        common.fail(f"error: {e}", 2)
    title = f"{common.with_model(title, vals)}, memorization sweep"
    common.run_experiment(config, title, vals, "memorization", sweep=True)


def cli():
    """The console script `ib-jax-memorization` (pip install .): `python -m experiments.memorization`."""
    common.start(main, __doc__)


if __name__ == "__main__":
    cli()
