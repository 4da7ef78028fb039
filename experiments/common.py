"""Flags and the main routine shared by the experiment mains.

Every main: flags -> a frozen `ExperimentConfig` -> `experiment.run` -> figures. Errors in
flags, data or output folder print one line (`error: ...`) and exit 2; a run stopped by
SIGINT/SIGTERM or a non-finite loss prints one line and exits 3 after saving what it measured.
"""

import pathlib
import signal
import sys
from typing import Any

from absl import flags, logging

from ib_jax import data, errors, estimators, experiment, plotting, results, train

FLAGS = flags.FLAGS


def define_flags(defaults: dict[str, Any]) -> None:
    """Defines the flags every main takes, with that main's defaults."""
    d = defaults
    flags.DEFINE_string("output_dir", d["output_dir"], "Folder for results, figures and checkpoints.")
    flags.DEFINE_bool("overwrite", False, "Replace a finished run in --output_dir.")
    flags.DEFINE_integer("epochs", d["epochs"], "Epochs to train.")
    flags.DEFINE_string("hidden", d["hidden"], "Hidden widths, comma-separated (the logits layer is added).")
    flags.DEFINE_enum("activation", "tanh", list(train.model.ACTIVATIONS), "Hidden activation.")
    flags.DEFINE_enum(
        "init",
        d.get("init", "default"),
        list(train.model.INITS),
        "Initialiser: default (Flax), truncated_normal (IDNNs), pytorch (nn.Linear).",
    )
    flags.DEFINE_enum("optimizer", d["optimizer"], list(train.OPTIMIZERS), "Optimiser.")
    flags.DEFINE_float("learning_rate", d["learning_rate"], "Learning rate.")
    flags.DEFINE_float("momentum", d.get("momentum", 0.0), "SGD momentum (0 = none).")
    flags.DEFINE_integer("batch_size", d.get("batch_size", 0), "Minibatch size; 0 = full batch.")
    flags.DEFINE_enum("loss_reduction", d["loss_reduction"], list(train.REDUCTIONS), "Cross-entropy over a batch.")
    flags.DEFINE_integer("mi_every", d["mi_every"], "Measure information every k epochs (and at the end).")
    flags.DEFINE_integer("mi_log_points", d.get("mi_log_points", 0),
                         "If > 0, measure at this many log-spaced epochs instead of --mi_every.")  # fmt: skip
    flags.DEFINE_float("bin_size", d.get("bin_size"), "Bin size b: code = floor(a / b).")
    flags.DEFINE_integer("num_bins", d.get("num_bins", 0), "If > 0, this many equal bins on --bin_range instead.")
    flags.DEFINE_string("bin_range", d.get("bin_range", "-1,1"), "lo,hi of the --num_bins bins.")
    flags.DEFINE_list("estimators", ["binned"], "Estimators measured at every scheduled epoch, comma-separated, "
                      f"from {', '.join(estimators.ESTIMATORS)}; the first is the main one.")  # fmt: skip
    flags.DEFINE_float("kde_noise_variance", d["kde_noise_variance"], "Noise variance of the KDE bounds.")
    flags.DEFINE_integer("adaptive_bins", 30, "Bins per item of the adaptive binnings.")
    flags.DEFINE_bool("random_labels", False, "Train on a random permutation of the training labels.")
    flags.DEFINE_float("label_corruption", 0.0, "Replace each training label, with this probability, by a "
                       "uniform random class (Zhang et al.).")  # fmt: skip
    flags.DEFINE_integer("train_size", d.get("train_size", 0), "Stratified training subset size; 0 = all.")
    flags.DEFINE_integer("test_size", d.get("test_size", 0), "Stratified test subset size; 0 = all.")
    flags.DEFINE_integer("seed", 0, "First seed (initialisation and batch order).")
    flags.DEFINE_integer("num_seeds", 1, "Seeds seed..seed+num_seeds-1, trained together as one program.")
    flags.DEFINE_integer("data_seed", 0, "Seed of the subsets, the split and the random labels.")
    flags.DEFINE_bool("per_seed_labels", False, "With --random_labels or --label_corruption: each seed draws its "
                      "own random labels (default: one draw shared by all seeds).")  # fmt: skip
    flags.DEFINE_integer("seeds_per_device", 0, "Seeds each device runs at once (0 = all); more run in turns, "
                         "bounding memory.")  # fmt: skip
    flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0, for "
                        "jax.distributed.initialize (with --num_processes and --process_id).")  # fmt: skip
    flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
    flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
    flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize() and let it read the "
                      "cluster from the environment (Cloud TPU, SLURM, ...).")  # fmt: skip
    flags.DEFINE_bool("plot_seeds", False, "Also draw each seed's trajectories, thin, in the information plane.")
    flags.DEFINE_float("checkpoint_every_s", 120.0, "Seconds between checkpoints (and on SIGINT/SIGTERM).")
    flags.DEFINE_bool("plot", True, "Draw the figures at the end.")
    flags.DEFINE_bool("gradient_stats", True, "At every measured epoch, per layer, the norms of the mean and std of "
                      "the kernel gradients over the epoch's batches, and |W|_F.")  # fmt: skip
    flags.DEFINE_integer("gradient_sub_batches", 16, "Full batch: parts of the batch whose gradients give the "
                         "statistics (at measured epochs; the update is unchanged).")  # fmt: skip
    flags.DEFINE_bool("animate", False, "Also write the information plane of each split as a GIF.")


DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def define_dataset_flag() -> flags.FlagHolder:
    """`--dataset` of the image mains: a known data set, or one's own file as npz:PATH."""
    return flags.DEFINE_string(
        "dataset", "mnist", "Data set: mnist, fashion_mnist, cifar10 (flattened to 3,072 inputs), or npz:PATH, a "
        ".npz with x_train, y_train, x_test, y_test (inputs of any shape, flattened as they are; integer labels "
        "0..K-1)."
    )  # fmt: skip


def dataset_from_flag(value: str) -> tuple[str, str]:
    """The --dataset value checked, and its title for figures."""
    if value in DATASET_TITLES:
        return value, DATASET_TITLES[value]
    if value.startswith(data.NPZ_PREFIX) and value[len(data.NPZ_PREFIX) :].strip():
        return value, pathlib.Path(value[len(data.NPZ_PREFIX) :]).name
    raise errors.ConfigError(f"unknown --dataset {value!r}; choose from {', '.join(DATASET_TITLES)} or npz:PATH")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise errors.ConfigError(f"--hidden must be comma-separated positive integers, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise errors.ConfigError(f"--hidden must be comma-separated positive integers, got {text!r}")
    return widths


def binning_from_flags() -> estimators.Binning:
    if FLAGS.num_bins:
        if FLAGS["bin_size"].present:
            raise errors.ConfigError("give --bin_size or --num_bins, not both")
        try:
            lo, hi = (float(v) for v in FLAGS.bin_range.split(","))
        except ValueError:
            raise errors.ConfigError(f"--bin_range must be lo,hi, got {FLAGS.bin_range!r}") from None
        return estimators.Binning(num_bins=FLAGS.num_bins, value_range=(lo, hi))
    if FLAGS.bin_size is None:
        raise errors.ConfigError("give --bin_size or --num_bins")
    return estimators.Binning(bin_size=FLAGS.bin_size)


def config_from_flags(dataset: str, **overrides) -> experiment.ExperimentConfig:
    """The config the flags describe; `overrides` are settings a main fixes (a preset)."""
    try:
        train_config = train.TrainConfig(
            hidden=_hidden(FLAGS.hidden),
            activation=FLAGS.activation,
            init=FLAGS.init,
            optimizer=FLAGS.optimizer,
            learning_rate=FLAGS.learning_rate,
            momentum=FLAGS.momentum,
            batch_size=FLAGS.batch_size,
            loss_reduction=FLAGS.loss_reduction,
        )
        return experiment.ExperimentConfig(
            dataset=dataset,
            train=train_config,
            epochs=FLAGS.epochs,
            mi_every=FLAGS.mi_every,
            mi_log_points=FLAGS.mi_log_points,
            binning=binning_from_flags(),
            estimators=tuple(e.strip() for e in FLAGS.estimators),
            kde_noise_variance=FLAGS.kde_noise_variance,
            adaptive_bins=FLAGS.adaptive_bins,
            gradient_stats=FLAGS.gradient_stats,
            gradient_sub_batches=FLAGS.gradient_sub_batches,
            train_size=FLAGS.train_size,
            test_size=FLAGS.test_size,
            random_labels=FLAGS.random_labels,
            label_corruption=FLAGS.label_corruption,
            seed=FLAGS.seed,
            num_seeds=FLAGS.num_seeds,
            per_seed_labels=FLAGS.per_seed_labels,
            data_seed=FLAGS.data_seed,
            **overrides,
        )
    except ValueError as e:  # ConfigError and the Binning's ValueError
        raise errors.ConfigError(str(e)) from None


class _StopFlag:
    """Turns SIGINT/SIGTERM into a request to checkpoint and stop at the next boundary."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):  # pylint: disable=unused-argument
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = True
        logging.warning("signal %d: checkpointing and stopping (send again to stop at once)", signum)

    def __call__(self) -> bool:
        return self.requested


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag (wrong type, unknown enum value, unknown flag) as one
    line `error: ...` and exit status 2, like every other bad setting; for `app.run`."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", 2)


def fail(message: str, code: int) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(code)


def quiet_jax_logs() -> None:
    """JAX's backend probing ("Unable to initialize backend 'tpu'", ...) logs at INFO; at the
    default verbosity those lines are hidden, `--verbosity 1` shows them."""
    if FLAGS.verbosity < 1:
        import logging as std_logging  # pylint: disable=g-import-not-at-top

        for name in ("jax._src.xla_bridge", "jax._src.compiler", "jax._src.dispatch"):
            std_logging.getLogger(name).setLevel(std_logging.WARNING)


def init_distributed() -> None:
    """Quiets JAX's backend-probing logs, then jax.distributed.initialize from the flags, when
    asked (before any other JAX call)."""
    quiet_jax_logs()
    if FLAGS.coordinator_address:
        if FLAGS.num_processes is None or FLAGS.process_id is None:
            fail("error: --coordinator_address needs --num_processes and --process_id", 2)
        import jax  # pylint: disable=g-import-not-at-top

        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    elif FLAGS.distributed:
        import jax  # pylint: disable=g-import-not-at-top

        jax.distributed.initialize()


def run_experiment(
    config: experiment.ExperimentConfig, name: str, data_dir: str | None = None, sweep: bool = False
) -> None:
    """Loads the data, runs or resumes, draws the figures, prints a summary (process 0).
    `sweep`: a memorization sweep (conditions x seeds): its own figures and `summary.json`."""
    import jax  # pylint: disable=g-import-not-at-top

    try:
        if FLAGS.seeds_per_device < 0:
            raise errors.ConfigError(f"--seeds_per_device must be >= 0, got {FLAGS.seeds_per_device}")
        experiment.check_output_dir(FLAGS.output_dir)  # every check before anything is created
        dataset = experiment.load_dataset(config, data_dir)
        out = experiment.prepare_output_dir(FLAGS.output_dir, FLAGS.overwrite, lock=jax.process_index() == 0)
        res = experiment.run(
            config,
            dataset,
            out,
            checkpoint_every_s=FLAGS.checkpoint_every_s,
            should_stop=_StopFlag(),
            seeds_per_device=FLAGS.seeds_per_device,
            extra_config={"name": name, "data_dir": data_dir},
        )
    except (errors.ConfigError, errors.DataError) as e:
        fail(f"error: {e}", 2)
    except experiment.RunStopped as e:
        fail(f"stopped: {e}", 3)
    except OSError as e:  # a failed write (disk full, ...): the previous files are intact (atomic writes)
        fail(f"error: writing to {FLAGS.output_dir} failed ({e.strerror or e}); the last complete results and "
             "checkpoint are kept: free the space and rerun the same command to resume", 1)  # fmt: skip
    if jax.process_index() != 0:
        return
    try:
        paths = _finish(res, out, config, name, sweep)
    except OSError as e:
        fail(f"error: writing the figures to {out} failed ({e.strerror or e}); results.npz is complete", 1)
    print(f"results: {out / results.RESULTS}")
    for p in paths:
        print(f"figure: {p}")


def _finish(res, out, config, name: str, sweep: bool) -> list:
    """The summary and figures of a finished run (process 0); returns the figures' paths."""
    if sweep:
        summary = results.sweep_summary(res, config.to_dict())
        results.save_json(out / results.SUMMARY, summary)
        paths = plotting.save_sweep_figures(res, out, name) if FLAGS.plot else []
        print(f"{name}: {config.epochs} epochs, {len(res['seed'])} rows")
        print(results.summary_table(summary["rows"]))
        print(f"summary: {out / results.SUMMARY}")
    else:
        paths = plotting.save_run_figures(res, out, name, seeds_faint=FLAGS.plot_seeds) if FLAGS.plot else []
        if FLAGS.animate:
            paths += plotting.save_animations(res, out, name)
        final = {k: res[f"final_{k}"].mean() for k in ("train_accuracy", "test_accuracy")}
        print(f"{name}: {config.epochs} epochs, {config.num_seeds} seed(s): final train accuracy "
              f"{final['train_accuracy']:.4f}, {res['test_name']} accuracy {final['test_accuracy']:.4f}")  # fmt: skip
    return paths
