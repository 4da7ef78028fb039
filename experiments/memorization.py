"""Memorization in the information plane: Zhang et al.'s corruptions as one program.

Every condition (true labels; labels corrupted with probability p for each level of
--label_corruption_levels; the reimplemented project's permuted labels; shuffled pixels,
random pixels and Gaussian inputs) x --num_seeds seeds trains as ONE compiled program: rows
vmapped, grouped and sharded over devices like seeds. A quick CPU run on a 1,000-image subset
(about 20 minutes on 2 cores):

  python -m experiments.memorization --data_dir ../shared/data --train_size 1000 \\
      --test_size 1000 --epochs 400 --mi_every 20 --output_dir runs/memorization

Outputs in --output_dir: results.npz (rows in place of seeds, plus `condition`, `corruption`,
`seed`, `epochs_to_fit`), summary.json (one object per row), config.json, zhang.png (training
loss per condition; epochs to fit and test error against p), information_plane_conditions_*.png
(every condition's plane) and headline.png (true vs permuted labels: the plane above, I(X;T) of
the last five layers below). Expect every condition to fit, fitting to take longer as p
grows, test accuracy to fall to chance at p = 1, and shuffled pixels to generalise like true
pixels (a fully connected network does not see the pixel order).

Defaults: the reimplemented project's network on the full data (a GPU job) with SGD 0.01,
momentum 0.9, batch 100 and the mean loss, under which every condition fits and stays fitted
(see the README); its own optimiser is `--optimizer adam --learning_rate 1e-3 --batch_size 0
--loss_reduction sum`.
"""

from absl import app, flags

from experiments import common
from ib_jax import data

common.define_flags(
    {
        "output_dir": "runs/memorization",
        "epochs": 1000,
        "hidden": "784,1024,1024,20,20,20,10",
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.9,
        "batch_size": 100,
        "loss_reduction": "mean",
        "mi_every": 20,
        "bin_size": 0.5,
        "kde_noise_variance": 0.1,
    }
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the data set's files in torchvision's layout "
                                "(default: $IB_JAX_DATA or ~/.cache/ib_jax; downloaded when missing).")  # fmt: skip
_DATASET = common.define_dataset_flag()
_LEVELS = flags.DEFINE_list("label_corruption_levels", ["0.2", "0.4", "0.6", "0.8", "1.0"],
                            "Label corruption probabilities p, one condition each (empty: none).")  # fmt: skip
_PERMUTED = flags.DEFINE_bool("permuted_labels", True, "Add the reimplemented project's random labels: one "
                              "permutation of the training labels.")  # fmt: skip
_INPUTS = flags.DEFINE_list("input_corruptions", list(data.INPUT_CORRUPTIONS),
                            "Input corruptions, each with the true labels (empty: none).")  # fmt: skip
_FIT = flags.DEFINE_float("fit_threshold", 0.99, "A row's epochs-to-fit: the first epoch whose training "
                          "accuracy reaches this.")  # fmt: skip


def conditions_from_flags() -> tuple[str, ...]:
    if common.FLAGS.random_labels or common.FLAGS.label_corruption:
        raise common.errors.ConfigError("--random_labels and --label_corruption are single-condition flags; use "
                                        "--permuted_labels and --label_corruption_levels here")  # fmt: skip
    levels = []
    for text in _LEVELS.value:
        try:
            levels.append(float(text))
        except ValueError:
            raise common.errors.ConfigError(f"--label_corruption_levels must be numbers, got {text!r}") from None
    conditions = ["true", *(f"labels:{p:g}" for p in levels)]
    if _PERMUTED.value:
        conditions.append("permuted")
    conditions += [c.strip() for c in _INPUTS.value]
    return tuple(conditions)


def main(argv):
    if len(argv) > 1:
        common.fail(f"error: unexpected arguments {argv[1:]}", 2)
    common.init_distributed()
    try:
        dataset, title = common.dataset_from_flag(_DATASET.value)
        config = common.config_from_flags(dataset, conditions=conditions_from_flags(), fit_threshold=_FIT.value)
    except common.errors.ConfigError as e:
        common.fail(f"error: {e}", 2)
    common.run_experiment(config, f"{title}, memorization sweep", _DATA_DIR.value, sweep=True)


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
