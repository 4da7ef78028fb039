"""The information plane of an MLP on MNIST, with true or random labels.

Defaults reproduce the "Memorizing Information Bottleneck" experiment: 784-784-1024-1024-20-
20-20-10-10 tanh, full-batch Adam 1e-3 on the summed cross-entropy, 4,000 epochs, information
every 20 epochs on the whole train and test sets, bin size 0.5, all 8 layers (about 6.6 hours on
a 2-core CPU, docs/running.md; the README has smaller settings). A quick run, offline:

  python -m experiments.mnist --random_labels --data_dir ../shared/data \\
      --train_size 1000 --test_size 1000 --epochs 1000 --output_dir runs/mnist_random

With these 1,000 images, training accuracy passed 0.99 at epoch 303 with random labels (test
accuracy 0.102, chance) and at epoch 94 with true labels (test 0.832): the README's figure.
Outputs in --output_dir: results.npz, config.json, information_plane.png,
information_per_layer.png, training.png, gradients.png (with several --estimators, also the
planes and layers per estimator).
"""

from absl import flags

from . import common
from . import flags as flag_table

_FLAGS = flag_table.define("mnist")
flags.adopt_module_key_flags(flag_table)


def main(argv):
    if len(argv) > 1:
        common.fail(f"error: unexpected arguments {argv[1:]}", 2)
    vals = flag_table.values("mnist", _FLAGS)
    common.init_distributed(vals)
    try:
        dataset, title = common.dataset_from_flag(vals["dataset"])
        config = flag_table.config("mnist", vals, _FLAGS["bin_size"].present, dataset=dataset)
    except common.errors.ConfigError as e:
        common.fail(f"error: {e}", 2)
    labels = "random labels" if config.random_labels else "true labels"
    if config.label_corruption:
        labels = f"labels corrupted with p={config.label_corruption}"
    if vals["output_dir"] is None:
        vals["output_dir"] = flag_table.mnist_output_dir(config.random_labels)
    common.run_experiment(config, f"{common.with_model(title, vals)}, {labels}", vals, "mnist")


def cli():
    """The console script `ib-jax-mnist` (pip install .): the same main as `python -m experiments.mnist`."""
    common.start(main, __doc__)


if __name__ == "__main__":
    cli()
