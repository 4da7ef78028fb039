"""Shared test helpers: where the offline data lives, and tiny configurations."""

import functools
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
# One persistent compilation cache for a test session, shared by this process, the mains it
# starts and the other test workers: a program compiled once is loaded after that, not compiled
# again (most subprocess tests run the same tiny configurations). It only saves time.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))  # one id for all workers of a run
CACHE_DIR = pathlib.Path(tempfile.gettempdir()) / f"ib_jax_tests_{_RUN}"
_CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": str(CACHE_DIR),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
os.environ.update(_CACHE_ENV)  # read by jax when it is first imported (below), and by subprocesses

import jax  # noqa: E402

from ib_jax import estimators, experiment, results, train  # noqa: E402

jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))  # also when jax was imported before this module
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The offline copies beside the repository (CI clones the repo next to shared/).
DATA_DIR = pathlib.Path(os.environ.get("IB_JAX_TEST_DATA", REPO.parent / "shared" / "data"))
VAR_U_MAT = DATA_DIR / "tishby" / "var_u.mat"


def require_data() -> None:
    """Fails (never skips) when the offline data is missing: the tests must run on it."""
    missing = [p for p in (DATA_DIR / "MNIST" / "raw", VAR_U_MAT) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"test data missing: {missing}; set IB_JAX_TEST_DATA to the shared data folder")


INPUT_ESTIMATORS = ("renyi", "edge")  # the estimators that need the inputs X (and knn)
# The estimators whose compilation takes longest (kde_mc's noise draws; renyi's eigenvalues and
# edge's hashing need X too): measured in a smaller run of their own (experiment_test).
SLOW_COMPILING = ("kde_mc", *INPUT_ESTIMATORS)
# The decodable-information estimators (the probe's fits, knn's blocks): a run of their own too.
DECODABLE = ("probe", "knn")
# The estimators of networks with noise of their own and of slices: a run of their own (noise_mc
# needs --layer_noise).
NOISY = ("noise_mc", "sliced")

# One tiny 12-bit configuration shared by the tests (one compilation per shape).
TINY = experiment.ExperimentConfig(
    dataset="tishby",
    train=train.TrainConfig(hidden=(6, 4), optimizer="sgd", learning_rate=0.05, momentum=0.9, loss_reduction="mean"),
    epochs=40,
    mi_every=10,
    binning=estimators.Binning(bin_size=0.1),
    # Every estimator but the three slowest to compile (45 s of compilation more in every process
    # that compiles this program, and in each rerun's tracing) and the decodable ones, the first
    # (binned) the main one.
    estimators=tuple(n for n in estimators.ESTIMATORS if n not in SLOW_COMPILING + DECODABLE + NOISY),
    kde_noise_variance=1e-2,
    adaptive_bins=12,
    train_size=256,  # the size of the test split: one compiled measurement serves both
    test_size=256,
    convergence="none",  # the final measurement of six estimators at four sizes: ConfidenceRunTest checks it
)


def _main_env(**changes) -> dict:
    """A main's environment in the tests: CPU only, output unbuffered, and `changes`."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1", **changes}


def run_main(module, *args, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Runs `python -m module *args` in the repository, as a user would (CPU only, unless `env`
    changes the environment)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_main_env(**(env or {})),
    )


def run_forked(module, arg_lists, timeout=300, env=None) -> list[subprocess.CompletedProcess]:
    """`run_main(module, *args)` for each argument list, each in a child forked from one process
    (tests/fork_main.py): the same exit status and output, one interpreter start for them all.
    A case may also be {"module": other, "args": [...]}, run in its own child the same way, or
    {"path": script, "cwd": folder}; `env` changes the environment of them all."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fork_main", module],
        input=json.dumps(arg_lists),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_main_env(**(env or {})),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [
        subprocess.CompletedProcess(args, r["code"], r["stdout"], r["stderr"])
        for args, r in zip(arg_lists, json.loads(proc.stdout))
    ]


def write_npz(path, **arrays):
    """Saves `arrays` as a .npz file at `path` and returns the path."""
    np.savez(path, **arrays)
    return path


@functools.cache
def tiny_run() -> tuple[pathlib.Path, dict]:
    """The finished run of `TINY` (every estimator), once per test process: (folder, results)."""
    out = experiment.prepare_output_dir(pathlib.Path(tempfile.mkdtemp()) / "full", False)
    return out, experiment.run(TINY, experiment.load_dataset(TINY), out)


def synthetic_results(rows=2, epochs=3, layers=2, steps=5, estimators=("binned", "kde_upper"), **changes) -> dict:
    """results.npz arrays from `results.build_results` with random values: I(X;T) rising in bits,
    metrics in (0, 1); `changes` replace or add any of its arguments."""
    rng = np.random.default_rng(0)
    args = dict(
        mi_epochs=np.linspace(0, steps, epochs).astype(np.int64),
        information=np.sort(rng.uniform(0.5, 3.0, (len(estimators), 4, rows, epochs, layers)), axis=3).astype(
            np.float32
        ),
        estimators=estimators,
        metrics=rng.uniform(0.1, 1.0, (4, rows, steps)).astype(np.float32),
        layer_widths=(8, 4, 2)[:layers],
        seeds=np.arange(rows),
        h_y_train_rows=np.ones(rows),
        h_y_test=1.0,
        n_train=16,
        n_test=8,
        test_name="test",
        complete=True,
    )
    return results.build_results(**{**args, **changes})
