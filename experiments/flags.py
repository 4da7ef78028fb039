"""The one table of the mains' flags: it defines them (absl `DEFINE_*`), maps their values to the
run's `ExperimentConfig`, and writes the flag reference in docs/flags.md.

A row of `TABLE` is one flag of one or more mains: its kind, default, help text, and the config
field it sets (`field`, a dotted path such as "train.hidden"; None for flags a main reads
itself). `DEFAULTS` holds each main's own defaults, `PRESETS` the 12-bit main's named settings
(data, applied to the values of the flags a user did not give; `FLAGS` is never changed).

    python -m experiments.flags > docs/flags.md    # regenerate the reference (a test checks it)
"""

import dataclasses
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from absl import flags

from ib_jax import data, errors, estimators, experiment, models, noise, train

MAINS = ("mnist", "tishby", "memorization", "compare")
TRAINING = ("mnist", "tishby", "memorization")  # the mains that train and measure
IMAGES = ("mnist", "memorization")  # the mains that read image data sets
DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "flags.md"


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag: `kind` is an absl DEFINE_ suffix (string, bool, integer, float, enum, list);
    `field` the ExperimentConfig field it sets ("train.x" for the TrainConfig), with `parse`
    turning the flag's value into the field's."""

    name: str
    kind: str
    default: Any
    help: str
    mains: tuple[str, ...] = TRAINING
    choices: tuple[str, ...] = ()
    field: str | None = None
    parse: Callable[[Any], Any] | None = None


def _widths(flag: str) -> Callable[[str], tuple[int, ...]]:
    """The parser of a list of widths (empty: none; the model decides whether it may be)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            widths = tuple(int(w) for w in text.split(",") if w.strip())
        except ValueError:
            raise errors.ConfigError(f"--{flag} must be comma-separated positive integers, got {text!r}") from None
        if widths and min(widths) < 1:
            raise errors.ConfigError(f"--{flag} must be comma-separated positive integers, got {text!r}")
        return widths

    return parse


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in values)


_DATA_DIR_IMAGES = (
    "Folder with the data set's files in torchvision's layout (default: $IB_JAX_DATA or ~/.cache/ib_jax; "
    "downloaded when missing)."
)
_DATASET_HELP = (
    "Data set: mnist, fashion_mnist, cifar10 (flattened to 3,072 inputs), or npz:PATH, a .npz with x_train, "
    "y_train, x_test, y_test (inputs of any shape, flattened as they are; integer labels 0..K-1)."
)

# fmt: off
TABLE: tuple[Flag, ...] = (
    # The output folder and the run.
    Flag("output_dir", "string", None, "Folder for results, figures and checkpoints."),
    Flag("overwrite", "bool", False, "Replace a finished run in --output_dir."),
    Flag("epochs", "integer", None, "Epochs to train.", field="epochs"),
    # The network and its optimiser.
    Flag("model", "enum", "mlp", "The network: " + "; ".join(f"{k}: {m.description}" for k, m in
         models.MODELS.items()) + ". Each measured layer is flattened per sample.", choices=tuple(models.MODELS),
         field="train.model"),
    Flag("hidden", "string", None, "Dense widths, comma-separated (the logits layer is added); default for cnn: "
         "128, for resnet: none.", field="train.hidden", parse=_widths("hidden")),
    Flag("channels", "string", "", "cnn, resnet: convolution widths, one block (cnn) or stage (resnet) each, "
         "comma-separated; default for cnn: 16,32, for resnet: 16,32,64.", field="train.channels",
         parse=_widths("channels")),
    Flag("activation", "enum", "tanh", "Hidden activation (default for cnn and resnet: relu).",
         choices=tuple(train.model.ACTIVATIONS),
         field="train.activation"),
    Flag("init", "enum", "default", "Initialiser: default (Flax), truncated_normal (IDNNs), pytorch (nn.Linear).",
         choices=train.model.INITS, field="train.init"),
    Flag("optimizer", "enum", None, "Optimiser.", choices=train.OPTIMIZERS, field="train.optimizer"),
    Flag("learning_rate", "float", None, "Learning rate.", field="train.learning_rate"),
    Flag("momentum", "float", 0.0, "SGD momentum (0 = none).", field="train.momentum"),
    Flag("batch_size", "integer", 0, "Minibatch size; 0 = full batch.", field="train.batch_size"),
    Flag("lr_decay_epochs", "integer", 0, "If E > 0, decay the learning rate along a cosine to 0 over E epochs "
         "(0 after them); 0 = constant.", field="train.lr_decay_epochs"),
    Flag("loss_reduction", "enum", None, "Cross-entropy over a batch.", choices=train.REDUCTIONS,
         field="train.loss_reduction"),
    Flag("quantize_bits", "integer", 0, "If k > 0, quantize every layer's output (logits included) to 2**k "
         "levels in training and measurement (k = 2..16; Lorenzen et al.): measure it with --estimators exact.",
         field="train.quantize_bits"),
    Flag("layer_noise", "string", "none", "The network's own noise in its hidden layers, in training and in every "
         "measurement: none, additive:SIGMA (T = a + SIGMA Z) or gaussian_dropout:P (T = a (1 + sqrt(P/(1-P)) Z)); "
         "measure it with --estimators noise_mc.", field="train.layer_noise"),
    Flag("noisy_layers", "string", "", "The 1-based hidden layers that carry --layer_noise, comma-separated "
         "(default: every hidden layer).", field="train.noisy_layers", parse=noise.parse_layers),
    # What is measured, and when.
    Flag("mi_every", "integer", None, "Measure information every k epochs (and at the end).", field="mi_every"),
    Flag("mi_log_points", "integer", 0, "If > 0, measure at this many log-spaced epochs instead of --mi_every.",
         field="mi_log_points"),
    Flag("bin_size", "float", None, "Bin size b: code = floor(a / b)."),
    Flag("num_bins", "integer", 0, "If > 0, this many equal bins on --bin_range instead."),
    Flag("bin_range", "string", "-1,1", "lo,hi of the --num_bins bins."),
    Flag("estimators", "list", ["binned"], "Estimators measured at every scheduled epoch, comma-separated, "
         f"from {', '.join(estimators.ESTIMATORS)}; the first is the main one.", field="estimators", parse=_names),
    Flag("kde_noise_variance", "float", None, "Noise variance of the KDE bounds.", field="kde_noise_variance"),
    Flag("adaptive_bins", "integer", 30, "Bins per item of the adaptive binnings.", field="adaptive_bins"),
    Flag("bias_correction", "enum", "none", "Of every entropy of the plug-in estimators (binned, adaptive_*, exact): "
         "miller_madow ((m - 1) / (2 N ln 2), m occupied cells), chao_shen, grassberger or nsb (docs/estimators.md).",
         choices=estimators.corrections.CORRECTIONS, field="bias_correction"),
    Flag("mi_subset", "integer", 0, "If > 0, measure information on a fixed, stratified subset of this many samples "
         "of each split (training uses all): the KDE family costs O(N^2) per item.", field="mi_subset"),
    Flag("renyi_alpha", "float", 1.01, "Order a of the matrix-based Renyi estimator (renyi).", field="renyi_alpha"),
    Flag("renyi_batch", "integer", 200, "Samples per batch of the matrix-based Renyi estimator (renyi); the last "
         "N mod b samples are left out.", field="renyi_batch"),
    Flag("knn_neighbours", "integer", 3, "Neighbours k of the k-NN estimators (knn: Ross's I(T;Y), KSG's I(X;T)).",
         field="knn_neighbours"),
    Flag("probe_folds", "integer", 5, "Cross-fitting folds of the probe (each sample scored by the probe fitted on "
         "the other folds).", field="probe_folds"),
    Flag("probe_hidden", "integer", 0, "Hidden units of the probe: 0 = softmax regression, H = one hidden ReLU "
         "layer of H units.", field="probe_hidden"),
    Flag("probe_steps", "integer", 0, "Fitting steps of the probe (0 = 60 L-BFGS steps for softmax regression, "
         "300 Adam steps for the MLP); results keep the estimate's change over the last 10% (probe.change_*).",
         field="probe_steps"),
    Flag("noise_samples", "integer", 4, "Draws of T per sample of noise_mc's Monte Carlo (>= 2: its standard "
         "error, noise_mc.se_*, needs two).", field="noise_samples"),
    Flag("sliced_slices", "integer", 1000, "Random projections m of the sliced estimator (its standard error over "
         "them: sliced.se_*).", field="sliced_slices"),
    Flag("sliced_dim", "integer", 1, "Dimension k of the sliced estimator's projections (1: sliced MI; k > 1: "
         "k-sliced).", field="sliced_dim"),
    Flag("plane_x", "string", "", "The estimator whose I(X;T) the information planes pair with the I(T;Y) of an "
         "estimator that measures I(T;Y) only (probe); default: the first listed that measures I(X;T).",
         field="plane_x"),
    Flag("bootstrap", "integer", 0, "If B >= 2, each value's standard error over B bootstrap resamples of the "
         "measured samples (results: <estimator>.i_xt_train_se, ...; error bars in the figures); 0 = off.",
         field="bootstrap"),
    Flag("null_permutations", "integer", 0, "If P >= 2, I(T;Y) under P shuffles of the labels, the value when T "
         "knows nothing about Y (its mean and 95th percentile, a band in the figures; the summary names the layers "
         "not above it); 0 = off.", field="null_permutations"),
    Flag("convergence", "enum", "final", "Measure each value again on nested subsets of N/8, N/4 and N/2 samples: "
         "of the final network, at every measured epoch, or none (convergence.png; the summary flags changes above "
         "0.1 bits from N/2 to N).", choices=("none", "final", "every"), field="convergence"),
    Flag("gradient_stats", "bool", True, "At every measured epoch, per layer, the norms of the mean and std of the "
         "kernel gradients over the epoch's batches, and |W|_F.", field="gradient_stats"),
    Flag("gradient_sub_batches", "integer", 0, "Full batch: parts of the batch whose gradients give the "
         "statistics (at measured epochs; the update is unchanged); 0 = 16, or the training set's size if smaller.",
         field="gradient_sub_batches"),
    # The data and its labels.
    Flag("random_labels", "bool", False, "Train on a random permutation of the training labels.",
         field="random_labels"),
    Flag("label_corruption", "float", 0.0, "Replace each training label, with this probability, by a uniform "
         "random class (Zhang et al.).", field="label_corruption"),
    Flag("train_size", "integer", 0, "Stratified training subset size; 0 = all.", field="train_size"),
    Flag("test_size", "integer", 0, "Stratified test subset size; 0 = all.", field="test_size"),
    Flag("data_dir", "string", None, "Folder with MNIST/raw/*.gz, or the --dataset's files in torchvision's layout "
         "(default: $IB_JAX_DATA or ~/.cache/ib_jax; downloaded there when missing).", mains=("mnist",)),
    Flag("data_dir", "string", None, _DATA_DIR_IMAGES, mains=("memorization",)),
    Flag("dataset", "string", "mnist", _DATASET_HELP, mains=IMAGES),
    Flag("preset", "enum", "reimplemented", "Settings to start from.", mains=("tishby",),
         choices=("reimplemented", "idnns")),
    Flag("test_fraction", "float", 0.2, "Share of the 4,096 patterns held out.", mains=("tishby",),
         field="test_fraction"),
    # Seeds and devices.
    Flag("seed", "integer", 0, "First seed (initialisation and batch order).", field="seed"),
    Flag("num_seeds", "integer", 1, "Seeds seed..seed+num_seeds-1, trained together as one program.",
         field="num_seeds"),
    Flag("data_seed", "integer", 0, "Seed of the subsets, the split and the random labels.", field="data_seed"),
    Flag("per_seed_labels", "bool", False, "With --random_labels or --label_corruption: each seed draws its own "
         "random labels (default: one draw shared by all seeds).", field="per_seed_labels"),
    Flag("seeds_per_device", "integer", 0, "Seeds (rows) each device runs at once (0 = all; for cnn and resnet on a "
         "CPU, 1: its vmapped convolutions are slower than turns); more run in turns, bounding memory."),
    Flag("coordinator_address", "string", None, "Multi-host: host:port of process 0, for "
         "jax.distributed.initialize (with --num_processes and --process_id)."),
    Flag("num_processes", "integer", None, "Multi-host: number of processes."),
    Flag("process_id", "integer", None, "Multi-host: this process's index."),
    Flag("distributed", "bool", False, "Multi-host: call jax.distributed.initialize() and let it read the "
         "cluster from the environment (Cloud TPU, SLURM, ...)."),
    Flag("compilation_cache", "string", "auto", "JAX's persistent compilation cache: a folder, 'off', or 'auto' "
         "($JAX_COMPILATION_CACHE_DIR if set, else ib_jax/jax under $XDG_CACHE_HOME or ~/.cache); a second run of "
         "the same shapes then starts without compiling."),
    # Long runs and figures.
    Flag("checkpoint_every_s", "float", 120.0, "Seconds between checkpoints (and on SIGINT/SIGTERM)."),
    Flag("plot", "bool", True, "Draw the figures at the end."),
    Flag("plot_only", "bool", False, "Draw the figures of the run in --output_dir again from its results.npz, without "
         "training (the other settings are ignored): a finished or diverged run, with the figures of the main that "
         "wrote it."),
    Flag("condition", "string", None, "With --plot_only on a memorization sweep: draw the run figures of this one "
         "condition (true, labels:0.4, permuted, gaussian, ...), named FIGURE-CONDITION.png.",
         mains=TRAINING),
    Flag("keep_final_state", "bool", True, "Keep the training state after the last epoch (final_state.msgpack, the "
         "size of a checkpoint), so that a larger --epochs with the same settings continues the run."),
    Flag("plot_seeds", "bool", False, "Also draw each seed's trajectories, thin, in the information plane."),
    Flag("animate", "bool", False, "Also write the information plane of each split as a GIF."),
    # The memorization sweep.
    Flag("label_corruption_levels", "list", ["0.2", "0.4", "0.6", "0.8", "1.0"], "Label corruption "
         "probabilities p, one condition each (empty: none).", mains=("memorization",)),
    Flag("permuted_labels", "bool", True, "Add the reimplemented project's random labels: one permutation of the "
         "training labels.", mains=("memorization",)),
    Flag("input_corruptions", "list", list(data.INPUT_CORRUPTIONS), "Input corruptions, each with the true labels "
         "(empty: none).", mains=("memorization",)),
    Flag("fit_threshold", "float", 0.99, "A row's epochs-to-fit: the first epoch whose training accuracy reaches "
         "this.", mains=("memorization",), field="fit_threshold"),
    # Comparing runs.
    Flag("output", "string", None, "Where to write the figure (PNG); default: compare.png beside the first run "
         "(in its parent folder). Missing folders are made.", mains=("compare",)),
    Flag("names", "list", None, "Run titles (default: each run's name, else its folder).", mains=("compare",)),
    Flag("layout", "enum", "runs", "Runs as columns (planes of both splits); runs as rows and estimators as "
         "columns (planes of --split); or the reimplemented project's 2 x 2 headline of two runs (true, random "
         "labels).", mains=("compare",), choices=("runs", "estimators", "headline")),
    Flag("estimator", "string", None, "--layout runs, headline: the estimator to draw (default: each run's first).",
         mains=("compare",)),
    Flag("estimators", "list", None, "--layout estimators: the columns (default: all the runs share).",
         mains=("compare",)),
    Flag("split", "enum", "train", "--layout estimators, headline: the split.", mains=("compare",),
         choices=("train", "test")),
    Flag("condition", "list", None, "The condition of each memorization sweep among the runs (true, labels:0.4, "
         "permuted, gaussian, ...): one name for every sweep, or one per run (empty for a run that is not a sweep); "
         "a sweep's conditions are never averaged together.", mains=("compare",)),
    Flag("csv", "string", None, "Also write the runs' tidy table (a row per run, row, split, epoch, layer and "
         "estimator; docs/outputs.md) to this CSV file.", mains=("compare",)),
)

_PRESET_REIMPLEMENTED = {
    "epochs": 10000, "optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "batch_size": 0,
    "loss_reduction": "mean", "mi_every": 100, "mi_log_points": 0, "bin_size": 0.07, "num_bins": 0,
    "init": "default",
}
PRESETS: dict[str, dict[str, Any]] = {
    "reimplemented": _PRESET_REIMPLEMENTED,
    "idnns": {
        "epochs": 8000, "optimizer": "adam", "learning_rate": 4e-4, "momentum": 0.0, "batch_size": 512,
        "loss_reduction": "mean", "mi_every": 100, "mi_log_points": 400, "bin_size": None, "num_bins": 29,
        "bin_range": "-1,1", "init": "truncated_normal",
    },
}

_IMAGE_NETWORK = {"hidden": "784,1024,1024,20,20,20,10", "mi_every": 20, "bin_size": 0.5, "kde_noise_variance": 0.1}
DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"epochs": 4000, "optimizer": "adam", "learning_rate": 1e-3, "loss_reduction": "sum",
              **_IMAGE_NETWORK},
    "tishby": {"output_dir": "runs/tishby", "hidden": "10,7,5,4,3", "kde_noise_variance": 1e-3,
               **_PRESET_REIMPLEMENTED},
    "memorization": {"output_dir": "runs/memorization", "epochs": 1000, "optimizer": "sgd", "learning_rate": 0.01,
                     "momentum": 0.9, "batch_size": 100, "loss_reduction": "mean", **_IMAGE_NETWORK},
    "compare": {},
}
# fmt: on


def mnist_output_dir(random_labels: bool) -> str:
    """The MNIST main's folder when --output_dir is not given."""
    return f"runs/mnist_{'random' if random_labels else 'true'}"


# Defaults a main derives from other flags, as the docs state them.
DERIVED = {("mnist", "output_dir"): f"{mnist_output_dir(False)} or {mnist_output_dir(True)}"}


def flags_of(main: str) -> list[Flag]:
    """The rows of `main`, each with that main's default."""
    if main not in MAINS:
        raise ValueError(f"unknown main {main!r}; choose from {', '.join(MAINS)}")
    own = DEFAULTS[main]
    return [dataclasses.replace(f, default=own.get(f.name, f.default)) for f in TABLE if main in f.mains]


def define(main: str, flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, flags.FlagHolder]:
    """Defines the flags of `main` (absl) in `flag_values`; returns their holders by name."""
    holders = {}
    for f in flags_of(main):
        define_fn = getattr(flags, f"DEFINE_{f.kind}")
        if f.kind == "enum":
            holders[f.name] = define_fn(f.name, f.default, list(f.choices), f.help, flag_values=flag_values)
        else:
            holders[f.name] = define_fn(f.name, f.default, f.help, flag_values=flag_values)
    return holders


def values(main: str, holders: Mapping[str, flags.FlagHolder]) -> dict[str, Any]:
    """The flags' values, with the 12-bit main's --preset, then the --model's own defaults
    (`ib_jax.models.ModelInfo.flag_defaults`), applied to those not given."""
    out = {name: holder.value for name, holder in holders.items()}
    if main == "tishby":
        for name, value in PRESETS[out["preset"]].items():
            if not holders[name].present:
                out[name] = value
    if "model" in out:
        for name, value in models.info(out["model"]).flag_defaults.items():
            if not holders[name].present:
                out[name] = value
    return out


def binning(vals: Mapping[str, Any], bin_size_given: bool) -> estimators.Binning:
    """The fixed binning that --bin_size, or --num_bins with --bin_range, describe."""
    if vals["num_bins"]:
        if bin_size_given:
            raise errors.ConfigError("give --bin_size or --num_bins, not both")
        try:
            lo, hi = (float(v) for v in vals["bin_range"].split(","))
        except ValueError:
            raise errors.ConfigError(f"--bin_range must be lo,hi, got {vals['bin_range']!r}") from None
        return estimators.Binning(num_bins=vals["num_bins"], value_range=(lo, hi))
    if vals["bin_size"] is None:
        raise errors.ConfigError("give --bin_size or --num_bins")
    return estimators.Binning(bin_size=vals["bin_size"])


def config(main: str, vals: Mapping[str, Any], bin_size_given: bool, **fixed) -> experiment.ExperimentConfig:
    """The ExperimentConfig the values of `main`'s flags describe (through each row's `field`),
    with `fixed` settings the main decides itself. ConfigError for any bad value."""
    top: dict[str, Any] = {}
    network: dict[str, Any] = {}
    try:
        for f in flags_of(main):
            if f.field is None:
                continue
            value = f.parse(vals[f.name]) if f.parse else vals[f.name]
            if f.field.startswith("train."):
                network[f.field[len("train.") :]] = value
            else:
                top[f.field] = value
        return experiment.ExperimentConfig(
            train=train.TrainConfig(**network), binning=binning(vals, bin_size_given), **top, **fixed
        )
    except ValueError as e:  # ConfigError and the Binning's ValueError
        raise errors.ConfigError(str(e)) from None


def _default_text(f: Flag, main: str) -> str:
    if f.default is None:
        return DERIVED.get((main, f.name), "—")
    if f.kind == "list":
        return f"`{','.join(f.default)}`" if f.default else "(empty)"
    if f.kind == "bool":
        return f"`{str(f.default).lower()}`"
    return f"`{f.default}`"


def markdown() -> str:
    """docs/flags.md: every main's flags, with their defaults and help texts."""
    lines = [
        "# Flags of the mains",
        "",
        "Generated from the flag table in `experiments/flags.py` (`python -m experiments.flags > docs/flags.md`);",
        "a test checks that this page and the table agree. `—` means no default (the main decides, or the flag is",
        "optional). See [running.md](running.md) for what the settings do together.",
    ]
    lines += ["", "## The training mains' defaults side by side", ""]
    lines += ["| flag | " + " | ".join(TRAINING) + " |", "| --- |" + " --- |" * len(TRAINING)]
    by_main = {main: {f.name: f for f in flags_of(main)} for main in TRAINING}
    for name in dict.fromkeys(f.name for f in TABLE if set(f.mains) & set(TRAINING)):
        cells = [_default_text(by_main[m][name], m) if name in by_main[m] else "(not a flag)" for m in TRAINING]
        lines.append(f"| `--{name}` | " + " | ".join(cells) + " |")
    for main in MAINS:
        lines += ["", f"## `python -m experiments.{main}`", ""]
        if main == "tishby":
            lines += [
                "`--preset` fills every flag of the preset that is not given: "
                + "; ".join(
                    f"`{name}`: " + ", ".join(f"{k}={v}" for k, v in preset.items()) for name, preset in PRESETS.items()
                )
                + ".",
                "",
            ]
        lines += ["| flag | default | meaning |", "| --- | --- | --- |"]
        for f in flags_of(main):
            choices = f" One of: {', '.join(f.choices)}." if f.choices else ""
            meaning = f.help.replace("|", "\\|")  # a pipe escaped, as GitHub's tables take it (not "/")
            lines.append(f"| `--{f.name}` | {_default_text(f, main)} | {meaning}{choices} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
