"""Flags and the main routine shared by the experiment mains.

Every main: flags -> a frozen `ExperimentConfig` -> `experiment.run` -> figures. Errors in
flags, data or output folder print one line (`error: ...`) and exit 2; a run stopped by
SIGINT/SIGTERM prints one line and exits 130 after saving what it measured (a second signal
stops at once, keeping the last checkpoint); a non-finite loss prints one line and exits 3.
"""

import importlib
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from absl import app, flags, logging

from ib_jax import data, errors, experiment, models, outcome, results, workdir


def _plotting():
    """The figures' module, imported when first needed (it imports matplotlib: ~0.5 s)."""
    return importlib.import_module("ib_jax.plotting")


def _import_plotting_soon() -> None:
    """Imports the figures' module in a thread, while the run compiles and trains (its calls
    leave Python waiting on the device much of the time): done by the time the figures are drawn."""

    def load():
        try:
            _plotting()
        except Exception:  # pylint: disable=broad-except  (the import at the figures reports it)
            pass

    threading.Thread(target=load, name="import-plotting", daemon=True).start()


FLAGS = flags.FLAGS


def with_model(title: str, vals) -> str:
    """A run's title with its network where it is not the default MLP: "MNIST, CNN"."""
    model = models.info(vals["model"]).title
    return f"{title}, {model}" if model else title


def dataset_from_flag(value: str) -> tuple[str, str]:
    """The --dataset value of an image main checked, and its title for figures."""
    if value in data.IMAGE_DATASETS or (value.startswith(data.NPZ_PREFIX) and value[len(data.NPZ_PREFIX) :].strip()):
        return value, data.dataset_title(value)
    raise errors.ConfigError(f"unknown --dataset {value!r}; choose from {', '.join(data.IMAGE_DATASETS)} or npz:PATH")


INTERRUPTED = 130  # the exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, the shell's)


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
    line `error: ...` and exit status 2, like every other bad setting; for `app.run`. The help
    flags (--help, --helpfull, ...) print their text and exit 0 (absl exits 1)."""
    try:
        return FLAGS(argv)
    except SystemExit as e:
        asked = {"--help", "-?", "--helpshort", "--helpfull", "--helpxml"}
        if e.code == 1 and any(a.split("=")[0] in asked for a in argv[1:]):
            sys.exit(0)
        raise
    except flags.Error as e:
        fail(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", 2)


def start(main, doc: str) -> None:
    """Runs a main with absl (`app.run`, flags parsed by `parse_flags`), its help text the
    main's docstring `doc` also where a console script, whose own module has none, runs it."""
    sys.modules["__main__"].__doc__ = doc
    app.run(main, flags_parser=parse_flags)


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


def compilation_cache_dir(value: str) -> pathlib.Path | None:
    """The --compilation_cache folder: None for "off"; "auto" is $JAX_COMPILATION_CACHE_DIR, else
    ib_jax/jax under $XDG_CACHE_HOME (default ~/.cache)."""
    if value == "off":
        return None
    if value != "auto":
        return pathlib.Path(value).expanduser()
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return pathlib.Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "ib_jax" / "jax"


def init_distributed(vals: Mapping[str, Any]) -> None:
    """Quiets JAX's backend-probing logs, enables the persistent compilation cache
    (--compilation_cache: every compilation is kept, however short), then
    jax.distributed.initialize from the flags' values `vals`, when asked (before any other JAX
    call)."""
    quiet_jax_logs()
    import jax  # pylint: disable=g-import-not-at-top

    folder = compilation_cache_dir(vals["compilation_cache"])
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail(f"error: cannot make --compilation_cache {folder}: {e.strerror or e} (give another folder, or off)", 2)
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    else:
        jax.config.update("jax_enable_compilation_cache", False)
    if vals["coordinator_address"]:
        if vals["num_processes"] is None or vals["process_id"] is None:
            fail("error: --coordinator_address needs --num_processes and --process_id", 2)
        import jax  # pylint: disable=g-import-not-at-top

        jax.distributed.initialize(vals["coordinator_address"], vals["num_processes"], vals["process_id"])
    elif vals["distributed"]:
        import jax  # pylint: disable=g-import-not-at-top

        jax.distributed.initialize()
    start_backend()


def start_backend() -> None:
    """Starts JAX's backend now, so that one that cannot start (JAX_PLATFORMS=cuda without a GPU
    or without JAX's CUDA build, a missing libtpu) is one line and exit 2, not a traceback from
    deep inside JAX."""
    import jax  # pylint: disable=g-import-not-at-top

    try:
        jax.devices()
    except Exception as e:  # pylint: disable=broad-except  # RuntimeError, or a bare AssertionError in JAX
        asked = os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms or ""
        reason = str(e).splitlines()[0] if str(e) else "no backend could start (is JAX's build for it installed?)"
        which = f" (JAX_PLATFORMS={asked})" if asked else ""
        fail(
            f"error: JAX could not start its backend{which}: {reason}; see docs/gpu.md, or unset JAX_PLATFORMS to "
            "run on the CPU",
            2,
        )


def run_experiment(
    config: experiment.ExperimentConfig, name: str, vals: Mapping[str, Any], main: str, sweep: bool = False
) -> None:
    """Loads the data, runs or resumes, draws the figures, prints a summary (process 0).
    `vals`: the main's flag values (output folder, figures, checkpoints, data_dir); `main`: the
    main's name, kept in config.json (`--plot_only` draws the figures of the main that wrote a
    folder). `sweep`: a memorization sweep (conditions x seeds): its own figures and
    `summary.json`."""
    if vals["plot_only"]:
        redraw(vals["output_dir"], name, vals.get("condition"), vals["plot_seeds"], vals["animate"])
        return
    if vals.get("condition"):
        fail("error: --condition picks a condition of a sweep to draw: give it with --plot_only", 2)
    data_dir = vals.get("data_dir")
    import jax  # pylint: disable=g-import-not-at-top

    try:
        if vals["seeds_per_device"] < 0:
            raise errors.ConfigError(f"--seeds_per_device must be >= 0, got {vals['seeds_per_device']}")
        if not vals["checkpoint_every_s"] >= 0:
            raise errors.ConfigError(f"--checkpoint_every_s must be >= 0, got {vals['checkpoint_every_s']}")
        experiment.check_output_dir(vals["output_dir"])  # every check before anything is created
        dataset = experiment.load_dataset(config, data_dir)
        experiment.check_against_data(config, dataset)
        writer = jax.process_index() == 0
        out = experiment.prepare_run_dir(vals["output_dir"], config, vals["overwrite"], lock=writer)
        if vals["plot"] and writer:
            _import_plotting_soon()
        res = experiment.run(
            config,
            dataset,
            out,
            checkpoint_every_s=vals["checkpoint_every_s"],
            should_stop=_StopFlag(),
            seeds_per_device=vals["seeds_per_device"],
            extra_config={"name": name, "data_dir": data_dir, "main": main},
            keep_final_state=vals["keep_final_state"],
        )
    except (errors.ConfigError, errors.DataError) as e:
        fail(f"error: {e}", 2)
    except experiment.RunStopped as e:
        fail(f"interrupted: {e}", INTERRUPTED) if e.interrupted else fail(f"stopped: {e}", 3)
    except KeyboardInterrupt:  # a second signal while stopping
        fail("interrupted at once: the last checkpoint is kept; rerun the same command to resume", INTERRUPTED)
    except OSError as e:  # a failed write (disk full, ...): the previous files are intact (atomic writes)
        fail(
            f"error: writing to {vals['output_dir']} failed ({e.strerror or e}); the last complete results and "
            "checkpoint are kept: free the space and rerun the same command to resume",
            1,
        )
    if jax.process_index() != 0:
        return
    try:
        paths = _finish(res, out, config, name, vals, sweep)
    except OSError as e:
        fail(f"error: writing the figures to {out} failed ({e.strerror or e}); results.npz is complete", 1)
    workdir.release(out)  # finished: no lock file is left behind
    print(f"results: {out / results.RESULTS}")
    for p in paths:
        print(f"figure: {p}")


def writer_is_sweep(out: pathlib.Path, res: Mapping[str, Any]) -> bool:
    """Whether the folder was written by the memorization main (config.json's "main"; folders
    from before it was kept: a summary.json, or rows of several conditions)."""
    main = results.load_config(out).get("main")
    if main is not None:
        return main == "memorization"
    return (out / results.SUMMARY).is_file() or len(results.conditions(res)) > 1


def _slug(condition: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in condition)


def redraw(
    output_dir: str, name: str, condition: str | None = None, seeds_faint: bool = False, animate: bool = False
) -> None:
    """--plot_only: the figures of the run in `output_dir`, drawn again from its results.npz
    (nothing is trained; the run's own title is kept), whichever main is asked: a memorization
    sweep's figures for a folder the memorization main wrote, a run's figures otherwise. With
    `condition`, the run figures of that one condition of a sweep, named <figure>-<condition>.png.
    `seeds_faint` and `animate` are --plot_seeds and --animate, as a run draws them.
    A finished run draws, and so does a diverged one (marked: its title says where); an
    unfinished one is resumed, not drawn."""
    out = pathlib.Path(output_dir)
    try:
        res = results.load_results(out)
        status = outcome.run_status(res)
        if status.startswith("unfinished"):
            raise errors.DataError(
                f"{out} holds an unfinished run ({status}): rerun its command without --plot_only to resume it"
            )
        saved = results.load_config(out)
        title = saved.get("name") or name
        plotting = _plotting()
        sweep = writer_is_sweep(out, res)
        if condition:
            res = outcome.select_condition(res, condition, str(out))
            title = f"{title}: {condition}"
            paths = plotting.save_run_figures(res, out, title, seeds_faint, suffix=f"-{_slug(condition)}")
        elif sweep:
            paths = plotting.save_sweep_figures(res, out, title)
        else:
            outcome.single_condition(res, str(out))
            paths = plotting.save_run_figures(res, out, title, seeds_faint)
        if animate and (condition or not sweep):
            paths += plotting.save_animations(res, out, title)
    except (errors.ConfigError, errors.DataError) as e:
        fail(f"error: {e}", 2)
    except OSError as e:
        fail(f"error: writing the figures to {out} failed ({e.strerror or e})", 1)
    if condition or not sweep:
        for figure, why in _plotting().skipped_figures(res).items():
            print(f"figure skipped: {figure}: {why}")
    if status:
        print(f"note: {out}: {status}")
    for p in paths:
        print(f"figure: {p}")


# What a value at its ceiling means (I(X;T) at log2 N, I(T;Y) at H(Y)), by estimator ("": every
# estimator but those that integrate the network's own noise, whose ceiling is the value itself).
_CEILINGS = {
    "": (
        "I(X;T) at log2 N (each sample a cell of its own: the estimator cannot resolve the layer)",
        "I(T;Y) at H(Y) (as for any labels where I(X;T) is at log2 N)",
    ),
    "noise_mc": (
        "I(X;T) at log2 N (the samples' noisy copies barely overlap: the network's own noise hides almost "
        "nothing of X at this N; the value itself, not a limit of the estimator)",
        "I(T;Y) at H(Y) (the classes' noisy copies barely overlap: the value itself)",
    ),
}


def saturation_lines(res: Mapping[str, Any]) -> list[str]:
    """The layers and estimators at the ceiling of their estimator in most measured epochs
    (`outcome.saturation`), one line per estimator and quantity; none when no layer is."""
    lines = []
    for estimator in results.estimator_names(res):
        flags_RxKxL = outcome.saturated(res, estimator)
        ceiling_xt, ceiling_ty = _CEILINGS.get(estimator, _CEILINGS[""])
        for what, ks in ((ceiling_xt, (0, 2)), (ceiling_ty, (1, 3))):
            parts = []
            for k, split in zip(ks, ("train", "test")):
                layers = np.flatnonzero(flags_RxKxL[:, k].mean(axis=0) > 0.5) + 1  # in most rows
                if layers.size:
                    parts.append(f"{split} layers {', '.join(str(int(i)) for i in layers)}")
            if parts:
                lines.append(f"  {estimator}: {what}: {'; '.join(parts)}")
    if lines:
        lines.insert(0, "saturated (within 0.05 bits of the ceiling in most measured epochs; see docs/accuracy.md):")
    return lines


_QUANTITY = {
    "i_xt_train": "I(X;T) train",
    "i_ty_train": "I(T;Y) train",
    "i_xt_test": "I(X;T) test",
    "i_ty_test": "I(T;Y) test",
}


def _layers(values) -> str:
    return ", ".join(str(int(i)) for i in values)


def confidence_lines(res: Mapping[str, Any]) -> list[str]:
    """The layers whose I(T;Y) is not above the permutation null at the end of training, and those
    whose estimate has not converged in N (`outcome.null_layers`, `outcome.unconverged`)."""
    lines = []
    epochs = res["mi_epochs"]
    for estimator in results.estimator_names(res):
        found = outcome.null_layers(res, estimator)
        if found is not None:
            parts = [f"{split} layers {_layers(layers)}" for split, layers in found.items() if layers.size]
            what = "; ".join(parts) if parts else "none (every layer's I(T;Y) is above it)"
            lines.append(
                f"not above the permutation null at epoch {int(epochs[-1])} (I(T;Y) at most "
                f"{results.NULL_TOLERANCE_BITS:g} bits above the 95th percentile of shuffled labels'): "
                f"{estimator}: {what}"
            )
        moved = outcome.unconverged(res, estimator)
        if moved is not None:
            e, flags = moved
            parts = [
                f"{_QUANTITY[key]} layers {_layers(np.flatnonzero(row) + 1)}"
                for key, row in zip(results.MI_KEYS, flags)
                if row.any()
            ]
            what = "; ".join(parts) if parts else "none"
            lines.append(
                f"not converged in N at epoch {int(epochs[e])} (moves more than {outcome.CONVERGENCE_BITS} bits from "
                f"N/2 to N samples; see convergence.png): {estimator}: {what}"
            )
    return lines


def _finish(res, out, config, name: str, vals: Mapping[str, Any], sweep: bool) -> list:
    """The summary and figures of a finished run (process 0); returns the figures' paths."""
    if sweep:
        summary = outcome.sweep_summary(res, config.to_dict())
        results.save_json(out / results.SUMMARY, summary)
        paths = _plotting().save_sweep_figures(res, out, name) if vals["plot"] else []
        print(f"{name}: {config.epochs} epochs, {len(res['seed'])} rows")
        print(outcome.summary_table(summary["rows"]))
        print(f"summary: {out / results.SUMMARY}")
    else:
        paths = _plotting().save_run_figures(res, out, name, seeds_faint=vals["plot_seeds"]) if vals["plot"] else []
        if vals["plot"] and config.gradient_stats:
            for figure, why in _plotting().skipped_figures(res).items():
                print(f"figure skipped: {figure}: {why}")
        if vals["animate"]:
            paths += _plotting().save_animations(res, out, name)
        final = {k: res[f"final_{k}"].mean() for k in ("train_accuracy", "test_accuracy")}
        print(
            f"{name}: {config.epochs} epochs, {config.num_seeds} seed(s); the final network (after epoch "
            f"{config.epochs}): train accuracy {final['train_accuracy']:.4f}, {res['test_name']} accuracy "
            f"{final['test_accuracy']:.4f}"
        )
    for line in saturation_lines(res) + confidence_lines(res):
        print(line)
    return paths
