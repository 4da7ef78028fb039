"""Tests of the experiment runner and the experiment mains (tiny configurations)."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

import chex
import jax
import numpy as np
import PIL.Image
from absl.testing import absltest, parameterized

from ib_jax import errors, estimators, experiment, plotting, results, train
from tests import testing

# One tiny 12-bit configuration shared by the tests (one compilation per shape).
_TINY = experiment.ExperimentConfig(
    dataset="tishby",
    train=train.TrainConfig(hidden=(6, 4), optimizer="sgd", learning_rate=0.05, momentum=0.9, loss_reduction="mean"),
    epochs=40,
    mi_every=10,
    binning=estimators.Binning(bin_size=0.1),
    estimators=tuple(estimators.ESTIMATORS),  # all of them, the first (binned) the main one
    kde_noise_variance=1e-2,
    adaptive_bins=12,
    train_size=512,
    test_size=256,
)


# A main whose 5th atomic write fails half-way with ENOSPC (a full disk).
_DISK_FULL = """
import errno, sys
from absl import app
from ib_jax import results
from experiments import tishby
calls, real = [], results.atomic_write
def failing(path, write):
    calls.append(path)
    if len(calls) == 5:
        def partial(f):
            f.write(b"PK half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, partial)
    return real(path, write)
results.atomic_write = failing
sys.argv = ["tishby", *sys.argv[1:]]
app.run(tishby.main)
"""


def _run_main(module, *args, timeout=300):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=testing.REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class ScheduleTest(parameterized.TestCase):
    def test_every_k_includes_zero_and_end(self):
        np.testing.assert_array_equal(experiment.mi_epochs(_TINY), [0, 10, 20, 30, 40])
        config = experiment.ExperimentConfig(epochs=45, mi_every=20)
        np.testing.assert_array_equal(experiment.mi_epochs(config), [0, 20, 40, 45])

    def test_log_spaced_like_idnns(self):
        config = experiment.ExperimentConfig(epochs=8000, mi_log_points=400)
        epochs = experiment.mi_epochs(config)
        self.assertLen(epochs, 275)  # IDNNs' 274 distinct epochs (1 ... 8000) and 0
        self.assertEqual((epochs[0], epochs[-1]), (0, 8000))

    @parameterized.parameters(
        {"epochs": 0},
        {"mi_every": 0},
        {"num_seeds": 0},
        {"dataset": "cifar"},
        {"train_size": -1},
        {"mi_log_points": -2},
        {"estimators": ()},
        {"estimators": ("binned", "binned")},
        {"estimators": ("kde",)},
        {"kde_noise_variance": 0.0},
        {"adaptive_bins": 0},
        {"gradient_sub_batches": 1},
    )
    def test_bad_config(self, **kwargs):
        with self.assertRaises(errors.ConfigError):
            experiment.ExperimentConfig(**kwargs)


class RunTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dataset = experiment.load_dataset(_TINY)
        cls.tmp = tempfile.mkdtemp()
        cls.full = experiment.run(_TINY, cls.dataset, experiment.prepare_output_dir(f"{cls.tmp}/full", False))

    def test_outputs_follow_the_contract(self):
        res = results.load_results(f"{self.tmp}/full")
        chex.assert_shape([res[k] for k in ("i_xt_train", "i_ty_train", "i_xt_test", "i_ty_test")], (1, 5, 3))
        chex.assert_shape([res[k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")], (1, 40))
        np.testing.assert_array_equal(res["layer_widths"], [6, 4, 2])
        np.testing.assert_array_equal(res["mi_epochs"], [0, 10, 20, 30, 40])
        self.assertTrue(res["complete"])
        self.assertTrue(np.all(res["i_xt_train"] <= np.log2(512) + 1e-5))
        self.assertTrue(np.all(res["i_ty_test"] <= res["h_y_test"] + 1e-5))
        config = json.loads(open(f"{self.tmp}/full/config.json").read())
        self.assertEqual(config["config"]["epochs"], 40)
        self.assertIn("jax", config["versions"])
        self.assertFalse(os.path.exists(f"{self.tmp}/full/{results.CHECKPOINT}"))
        self.assertEqual(list(res["estimators"]), list(estimators.ESTIMATORS))
        for name in estimators.ESTIMATORS:
            chex.assert_shape([res[f"{name}.{k}"] for k in results.MI_KEYS], (1, 5, 3))
        for key in results.MI_KEYS:  # the unprefixed keys are the first estimator's
            np.testing.assert_array_equal(res[key], res[f"binned.{key}"])
        self.assertTrue(np.all(res["kde_upper.i_xt_train"] >= res["kde_lower.i_xt_train"] - 1e-6))
        for key in experiment.GRADIENT_KEYS:
            chex.assert_shape(res[key], (1, 5, 3))
        self.assertTrue(np.all(np.isnan(res["grad_mean_norm"][:, -1])))  # no epoch trained from the final network
        self.assertTrue(np.all(res["grad_std_norm"][:, :-1] > 0) and np.all(np.isfinite(res["weight_norm"])))
        self.assertEqual(
            config["estimators"],
            [
                {"name": "binned", "bin_size": 0.1, "num_bins": None, "value_range": None},
                {"name": "kde_upper", "noise_variance": 0.01, "bound": "upper"},
                {"name": "kde_lower", "noise_variance": 0.01, "bound": "lower"},
                {"name": "adaptive_entropy", "num_bins": 12, "strategy": "entropy"},
                {"name": "adaptive_range", "num_bins": 12, "strategy": "range"},
            ],
        )

    def test_old_folders_load_as_binned(self):
        """A results.npz from before the estimator suite (unprefixed keys only) loads, plots and
        reads as the estimator "binned"."""
        res = results.load_results(f"{self.tmp}/full")
        newer = {
            "estimators",
            "contract",
            "fit_threshold",
            "seed",
            "condition",
            "corruption",
            "epochs_to_fit",
            "h_y_train_rows",
            *experiment.GRADIENT_KEYS,
        }
        old = {k: v for k, v in res.items() if "." not in k and k not in newer}
        out = f"{self.tmp}/old"
        results.save_results(out, old)
        loaded = results.load_results(out)
        self.assertEqual(results.estimator_names(loaded), ["binned"])
        np.testing.assert_array_equal(results.estimator_view(loaded, "binned")["i_xt_test"], res["i_xt_test"])
        with self.assertRaisesRegex(errors.DataError, "not kde_upper"):
            results.estimator_view(loaded, "kde_upper")
        self.assertLen(plotting.save_run_figures(loaded, out), 3)
        self.assertLen(plotting.save_run_figures(res, out), 7)  # the new one: gradients and per-estimator figures

    def test_information_equals_a_direct_measurement(self):
        """Train-set MI at epoch 10 = the estimator on a forward pass of the network after 10
        epochs, trained separately with the train module."""
        init_key, shuffle_key = jax.random.split(jax.random.key(_TINY.seed))
        state = train.create_state(init_key, _TINY.train, 12, 2)
        x, y = self.dataset.x_train, self.dataset.y_train
        for epoch in range(10):
            state, _, _ = train.jit_train_epoch(state, jax.random.fold_in(shuffle_key, epoch), x, y, _TINY.train)
        _, acts = train.evaluate(state.apply_fn, state.params, x, y)
        for estimator in experiment.measured_estimators(_TINY):
            i_xt, i_ty = estimators.information_plane(acts, y, estimator=estimator)
            np.testing.assert_allclose(self.full[f"{estimator.name}.i_xt_train"][0, 1], i_xt, atol=1e-5)
            np.testing.assert_allclose(self.full[f"{estimator.name}.i_ty_train"][0, 1], i_ty, atol=1e-5)
        # The gradient statistics of epoch 10: the epoch trained from that network.
        _, metrics, _ = train.jit_train_epoch(
            state,
            jax.random.fold_in(shuffle_key, 10),
            x,
            y,
            _TINY.train,
            gradient_stats=True,
            sub_batches=_TINY.gradient_sub_batches,
        )
        for key in experiment.GRADIENT_KEYS:
            np.testing.assert_allclose(self.full[key][0, 1], metrics[key], rtol=1e-5, err_msg=key)

    def test_stop_and_resume_equal_an_uninterrupted_run(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/stopped", False)
        calls = []
        with self.assertRaises(experiment.RunStopped):
            experiment.run(_TINY, self.dataset, out, should_stop=lambda: calls.append(1) or len(calls) >= 3)
        partial = results.load_results(out)
        self.assertFalse(partial["complete"])
        self.assertTrue(os.path.exists(out / results.CHECKPOINT))
        resumed = experiment.run(_TINY, self.dataset, out)
        for key in (
            "i_xt_train",
            "i_ty_test",
            "kde_lower.i_xt_test",
            "adaptive_range.i_ty_train",
            "train_loss",
            "test_accuracy",
            "final_train_loss",
            "grad_std_norm",
            "weight_norm",
        ):
            np.testing.assert_array_equal(resumed[key], self.full[key], err_msg=key)

    def test_interrupt_during_the_final_write_leaves_the_old_files(self):
        """SIGTERM's second signal (KeyboardInterrupt) in the middle of writing the final
        results: the folder holds the previous complete files, never half of the new ones, and
        the rerun finishes as an uninterrupted run."""
        out = experiment.prepare_output_dir(f"{self.tmp}/final_write", False)
        real_save = results.save_results

        def interrupted(output_dir, arrays):
            if not arrays["complete"]:
                return real_save(output_dir, arrays)

            def half(f):
                f.write(b"PK half of the final results")
                raise KeyboardInterrupt

            results.atomic_write(pathlib.Path(output_dir) / results.RESULTS, half)

        with mock.patch.object(results, "save_results", interrupted), self.assertRaises(KeyboardInterrupt):
            experiment.run(_TINY, self.dataset, out, checkpoint_every_s=0)
        self.assertFalse(results.load_results(out)["complete"])  # the old file, whole
        self.assertFalse(json.loads(open(out / results.CONFIG).read())["complete"])
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".tmp")], [])
        resumed = experiment.run(_TINY, self.dataset, out)
        for key in ("i_xt_train", "kde_upper.i_ty_test", "train_loss", "final_test_accuracy", "weight_norm"):
            np.testing.assert_array_equal(resumed[key], self.full[key], err_msg=key)
        self.assertTrue(results.load_results(out)["complete"])

    def test_finished_run_is_not_overwritten(self):
        with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
            experiment.prepare_output_dir(f"{self.tmp}/full", False)

    def test_checkpoint_of_other_settings_is_refused(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/other", False)
        with self.assertRaises(experiment.RunStopped):
            experiment.run(_TINY, self.dataset, out, should_stop=lambda: True)
        other = experiment.ExperimentConfig(**{**_TINY.__dict__, "epochs": 50})
        with self.assertRaisesRegex(errors.ConfigError, "different settings"):
            experiment.run(other, self.dataset, out)

    def test_non_finite_loss_stops_and_keeps_results(self):
        diverging = train.TrainConfig(hidden=(6, 4), activation="linear", optimizer="sgd", learning_rate=1e10)
        config = experiment.ExperimentConfig(**{**_TINY.__dict__, "train": diverging})
        out = experiment.prepare_output_dir(f"{self.tmp}/nan", False)
        with self.assertRaisesRegex(experiment.RunStopped, "non-finite"):
            experiment.run(config, self.dataset, out)
        res = results.load_results(out)
        self.assertFalse(res["complete"])
        self.assertGreater(res["train_loss"].shape[1], 0)


def _run_forked(module, arg_lists, timeout=300):
    """`_run_main(module, *args)` for each argument list, each in a child forked from one process
    (tests/fork_main.py): the same exit status and output, one interpreter start for them all."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fork_main", module],
        input=json.dumps(arg_lists),
        cwd=testing.REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [
        subprocess.CompletedProcess(args, r["code"], r["stdout"], r["stderr"])
        for args, r in zip(arg_lists, json.loads(proc.stdout))
    ]


class MainsTest(chex.TestCase):
    """The mains as a user runs them (subprocesses)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.tmp = tempfile.mkdtemp()

    def test_mnist_and_compare_smoke(self):
        common = [
            "--data_dir",
            str(testing.DATA_DIR),
            "--train_size",
            "200",
            "--test_size",
            "100",
            "--epochs",
            "4",
            "--hidden",
            "32,8",
            "--mi_every",
            "2",
            "--estimators",
            "binned,kde_upper,adaptive_range",
        ]
        for labels in ("true", "random"):
            flags = ["--random_labels"] if labels == "random" else []
            proc = _run_main("experiments.mnist", *common, *flags, "--output_dir", f"{self.tmp}/{labels}")
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            for name in (
                "results.npz",
                "config.json",
                "information_plane.png",
                "information_per_layer.png",
                "training.png",
                "information_plane_estimators_train.png",
                "information_plane_estimators_test.png",
                "information_per_layer_estimators.png",
            ):
                self.assertTrue(os.path.exists(f"{self.tmp}/{labels}/{name}"), name)
            res = results.load_results(f"{self.tmp}/{labels}")
            chex.assert_shape(res["i_xt_test"], (1, 3, 3))
            chex.assert_shape(res["kde_upper.i_xt_test"], (1, 3, 3))
            self.assertEqual(int(res["n_train"]), 200)
            self.assertEqual(results.load_config(f"{self.tmp}/{labels}")["config"]["kde_noise_variance"], 0.1)
        runs = [f"{self.tmp}/true", f"{self.tmp}/random"]
        for extra in (
            [],
            ["--estimator", "kde_upper"],
            ["--layout", "headline"],
            ["--layout", "estimators", "--split", "test"],
        ):
            proc = _run_main("experiments.compare", *runs, *extra, "--output", f"{self.tmp}/compare.png")
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            self.assertTrue(os.path.exists(f"{self.tmp}/compare.png"))
            os.unlink(f"{self.tmp}/compare.png")
        self.assertIn("| adaptive_range | layer 2 (8) |", proc.stdout)  # the table of --layout estimators
        for extra, message in (
            (["--estimator", "kde_lower"], "not kde_lower"),
            (["--layout", "estimators", "--estimators", "kde_lower"], "not every run measured"),
            (["--names", "a"], "--names"),
            (["--layout", "grid"], "layout"),
            (["--layout", "headline", runs[0]], "two runs"),
        ):
            proc = _run_main("experiments.compare", *runs, *extra, "--output", f"{self.tmp}/compare.png")
            self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
            self.assertNotIn("Traceback", proc.stderr)
            self.assertIn(message, proc.stderr)

    def test_memorization_smoke(self):
        """Conditions x seeds in one run: the row keys, summary.json, the sweep's figures."""
        out = f"{self.tmp}/memorization"
        proc = _run_main(
            "experiments.memorization",
            "--data_dir",
            str(testing.DATA_DIR),
            "--train_size",
            "200",
            "--test_size",
            "100",
            "--epochs",
            "6",
            "--mi_every",
            "3",
            "--hidden",
            "32,8",
            "--label_corruption_levels",
            "0.5,1",
            "--input_corruptions",
            "shuffled_pixels,gaussian",
            "--num_seeds",
            "2",
            "--fit_threshold",
            "0.3",
            "--output_dir",
            out,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(out)
        conditions = ["true", "labels", "labels", "permuted", "shuffled_pixels", "gaussian"]
        np.testing.assert_array_equal(res["condition"], np.repeat(conditions, 2))
        np.testing.assert_array_equal(res["corruption"], np.repeat([0, 0.5, 1.0, 0, 0, 0], 2))
        np.testing.assert_array_equal(res["seed"], np.tile([0, 1], 6))
        chex.assert_shape([res["i_xt_train"], res["i_ty_test"]], (12, 3, 3))
        summary = json.loads(open(f"{out}/summary.json").read())
        self.assertLen(summary["rows"], 12)
        self.assertEqual(
            sorted(summary["rows"][2]),
            ["condition", "corruption", "epochs_to_fit", "seed", "test_accuracy", "train_accuracy"],
        )
        self.assertEqual((summary["rows"][2]["condition"], summary["rows"][2]["corruption"]), ("labels", 0.5))
        self.assertEqual(summary["settings"]["fit_threshold"], 0.3)
        for r, row in enumerate(summary["rows"]):
            want = int(res["epochs_to_fit"][r])
            self.assertEqual(row["epochs_to_fit"], want if want >= 0 else None)
            fitted = np.flatnonzero(np.append(res["train_accuracy"][r], res["final_train_accuracy"][r]) >= 0.3)
            self.assertEqual(want, fitted[0] if fitted.size else -1)
        for name in (
            "zhang.png",
            "information_plane_conditions_train.png",
            "information_plane_conditions_test.png",
            "headline.png",
            "config.json",
        ):
            self.assertTrue(os.path.exists(f"{out}/{name}"), name)
        self.assertIn("| labels p=0.5 |", proc.stdout)

    def test_tishby_idnns_preset_smoke(self):
        """Minibatches, log-spaced epochs, num_bins, truncated-normal init, the 'all' split."""
        out = f"{self.tmp}/idnns"
        proc = _run_main(
            "experiments.tishby",
            "--preset",
            "idnns",
            "--epochs",
            "30",
            "--mi_log_points",
            "10",
            "--animate",
            "--output_dir",
            out,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(out)
        self.assertEqual(str(res["test_name"]), "all")
        self.assertEqual((int(res["n_train"]), int(res["n_test"])), (3277, 4096))
        np.testing.assert_array_equal(res["mi_epochs"], [0, 1, 2, 3, 4, 6, 9, 14, 20, 29, 30])
        config = results.load_config(out)["config"]
        self.assertEqual(config["binning"], {"bin_size": None, "num_bins": 29, "value_range": [-1.0, 1.0]})
        self.assertEqual((config["train"]["batch_size"], config["train"]["init"]), (512, "truncated_normal"))
        self.assertTrue(os.path.exists(f"{out}/information_plane.png"))
        for name in ("gradients.png", "information_plane_train.gif", "information_plane_test.gif"):
            self.assertTrue(os.path.exists(f"{out}/{name}"), name)
        with PIL.Image.open(f"{out}/information_plane_test.gif") as gif:
            self.assertEqual(gif.n_frames, len(res["mi_epochs"]))  # one frame per measured epoch
        chex.assert_shape([res[k] for k in experiment.GRADIENT_KEYS], (1, 11, 6))
        self.assertTrue(np.all(res["grad_std_norm"][:, :-1] > 0))

    def test_tishby_killed_and_rerun_equals_uninterrupted(self):
        args = ["--epochs", "3000", "--mi_every", "50", "--hidden", "8,5", "--checkpoint_every_s", "0", "--plot=false"]
        proc = _run_main("experiments.tishby", *args, "--output_dir", f"{self.tmp}/whole")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        out = f"{self.tmp}/killed"
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        command = [sys.executable, "-m", "experiments.tishby", *args, "--output_dir", out]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        victim = subprocess.Popen(command, cwd=testing.REPO, env=env, **quiet)
        deadline = time.monotonic() + 120
        while not os.path.exists(f"{out}/{results.CHECKPOINT}") and victim.poll() is None:
            self.assertLess(time.monotonic(), deadline, "no checkpoint appeared")
            time.sleep(0.05)
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.assertEqual(victim.returncode, -signal.SIGKILL, "the run ended before it could be killed")
        partial = results.load_results(out)  # readable: written atomically
        self.assertFalse(partial["complete"])
        proc = _run_main("experiments.tishby", *args, "--output_dir", out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        whole, resumed = results.load_results(f"{self.tmp}/whole"), results.load_results(out)
        self.assertEqual(sorted(whole), sorted(resumed))
        for key in whole:
            np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)

    def _assert_one_error_line(self, proc, message):
        self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
        self.assertNotIn("Traceback", proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        self.assertLen(lines, 1, proc.stderr[-2000:])
        self.assertTrue(lines[0].startswith("error:") and message in lines[0], lines[0])

    def test_impossible_output_dirs_are_one_line_and_create_nothing(self):
        a_file = f"{self.tmp}/a_file"
        open(a_file, "w").close()
        out = f"{self.tmp}/never_made"
        places = (
            (a_file, "not a folder"),
            (f"{a_file}/sub", "which is a file"),
            ("/proc/ib_jax_forbidden", "cannot be created"),
            ("", "empty"),
        )
        cases = [(["--epochs=2", f"--output_dir={where}"], message) for where, message in places]
        for args in (["--label_corruption=1.5"], ["--estimators=mine"], ["--epochs=0"]):  # settings checked first
            cases.append(([*args, f"--output_dir={out}"], ""))
        for (args, message), proc in zip(cases, _run_forked("experiments.tishby", [a for a, _ in cases])):
            with self.subTest(str(args)):
                self._assert_one_error_line(proc, message)
        self.assertFalse(os.path.exists("/proc/ib_jax_forbidden"))
        self.assertFalse(os.path.exists(out))
        (proc,) = _run_forked("experiments.mnist", [["--data_dir=/nonexistent/ib_jax", f"--output_dir={out}"]])
        self._assert_one_error_line(proc, "MNIST files missing")  # the data, before the folder
        self.assertFalse(os.path.exists(out))

    def test_jax_backend_logs_quiet_unless_verbose(self):
        args = ["--epochs=2", "--mi_every=1", "--plot=false", "--overwrite", f"--output_dir={self.tmp}/quiet"]
        quiet = _run_main("experiments.tishby", *args)
        self.assertEqual(quiet.returncode, 0, quiet.stderr[-2000:])
        self.assertNotIn("xla_bridge.py", quiet.stderr)  # JAX's backend probing ("Unable to initialize ...")
        verbose = _run_main("experiments.tishby", *args, "--verbosity=1")
        self.assertIn("xla_bridge.py", verbose.stderr)

    def test_second_run_on_a_busy_folder_is_refused(self):
        out = f"{self.tmp}/busy"
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        command = [
            sys.executable,
            "-m",
            "experiments.tishby",
            "--epochs=100000",
            "--mi_every=50000",
            "--plot=false",
            f"--output_dir={out}",
        ]
        first = subprocess.Popen(
            command, cwd=testing.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            while not os.path.exists(f"{out}/.lock") or not open(f"{out}/.lock").read().strip():
                self.assertLess(time.monotonic(), deadline, "the first run never locked its folder")
                time.sleep(0.1)
            second = _run_main("experiments.tishby", "--epochs=2", f"--output_dir={out}")
            self._assert_one_error_line(second, f"process {first.pid}")
            self.assertIn(out, second.stderr)
        finally:
            first.kill()
            first.wait()
        # The OS released the lock with the killed process: the folder can be used again.
        proc = _run_main(
            "experiments.tishby", "--epochs=2", "--mi_every=1", "--plot=false", "--overwrite", f"--output_dir={out}"
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])

    def test_failed_write_keeps_the_last_good_files_and_the_rerun_resumes(self):
        """Disk full in the middle of the 5th atomic write (a checkpoint): one error line, exit
        1, the previous results and checkpoint intact, no temporary file; the rerun resumes and
        ends as an uninterrupted run."""
        args = ["--epochs=300", "--mi_every=50", "--hidden=8,5", "--plot=false"]
        whole = _run_main("experiments.tishby", *args, f"--output_dir={self.tmp}/full_disk_whole")
        self.assertEqual(whole.returncode, 0, whole.stderr[-2000:])
        out = f"{self.tmp}/full_disk"
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        command = [sys.executable, "-c", _DISK_FULL, *args, "--checkpoint_every_s=0", f"--output_dir={out}"]
        proc = subprocess.run(command, cwd=testing.REPO, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
        self.assertNotIn("Traceback", proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("error:") and "No space left on device" in last, last)
        self.assertFalse(results.load_results(out)["complete"])  # the previous results, readable
        self.assertTrue(os.path.exists(f"{out}/{results.CHECKPOINT}"))
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".tmp")], [])
        rerun = _run_main("experiments.tishby", *args, f"--output_dir={out}")
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
        want, got = results.load_results(f"{self.tmp}/full_disk_whole"), results.load_results(out)
        for key in ("i_xt_train", "i_ty_test", "train_loss", "test_accuracy", "grad_std_norm", "final_train_loss"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)

    def test_corrupt_checkpoint_is_one_line_never_a_silent_restart(self):
        out = f"{self.tmp}/corrupt_checkpoint"
        args = ["--epochs=2", "--mi_every=1", "--plot=false", f"--output_dir={out}"]
        self.assertEqual(_run_main("experiments.tishby", *args).returncode, 0)
        before = open(f"{out}/results.npz", "rb").read()
        open(f"{out}/{results.CHECKPOINT}", "wb").write(b"\x00garbage")
        proc = _run_main("experiments.tishby", *args)
        self._assert_one_error_line(proc, "--overwrite")
        self.assertIn("corrupt", proc.stderr)
        self.assertEqual(open(f"{out}/results.npz", "rb").read(), before)

    def test_compare_refuses_bad_folders_in_one_line(self):
        good = f"{self.tmp}/compare_good"
        proc = _run_main("experiments.tishby", "--epochs=2", "--mi_every=1", "--plot=false", f"--output_dir={good}")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        empty, truncated, newer = (f"{self.tmp}/compare_{n}" for n in ("empty", "truncated", "newer"))
        os.makedirs(empty)
        os.makedirs(truncated)
        data = open(f"{good}/results.npz", "rb").read()
        open(f"{truncated}/results.npz", "wb").write(data[: len(data) // 2])
        res = results.load_results(good)
        results.save_results(newer, {**res, "contract": results.CONTRACT + 1})
        cases = ((empty, "no results.npz"), (truncated, "unreadable"), (newer, "newer"))
        arg_lists = [[good, folder, "--output", f"{self.tmp}/c.png"] for folder, _ in cases]
        procs = _run_forked("experiments.compare", arg_lists)
        for (_, message), proc in zip(cases, procs):
            self._assert_one_error_line(proc, message)

    _MEMORIZATION_BAD = (
        ("levels_text", ["--label_corruption_levels=0.2,abc"], "numbers"),
        ("levels_range", ["--label_corruption_levels=1.5"], "(0, 1]"),
        ("levels_zero", ["--label_corruption_levels=0"], "(0, 1]"),
        ("levels_twice", ["--label_corruption_levels=0.5,0.5"], "twice"),
        ("input_unknown", ["--input_corruptions=blurred"], "unknown condition"),
        ("fit_threshold", ["--fit_threshold=0"], "fit_threshold"),
        ("permuted_labels", ["--permuted_labels=perhaps"], "permuted_labels"),
        ("inputs_twice", ["--input_corruptions=gaussian,gaussian"], "twice"),
        ("fit_threshold_big", ["--fit_threshold=1.5"], "fit_threshold"),
        ("single_condition_flag", ["--random_labels"], "single-condition"),
        ("corruption_flag", ["--label_corruption=0.3"], "single-condition"),
        ("dataset", ["--dataset=svhn"], "dataset"),
        ("missing_data", ["--data_dir=/nonexistent/ib_jax"], "MNIST files missing"),
        ("missing_cifar", ["--dataset=cifar10", "--data_dir=/nonexistent/ib_jax"], "CIFAR-10 files missing"),
    )

    def test_memorization_bad_input(self):
        self._assert_bad_inputs(
            "experiments.memorization", [(n, [*a, "--epochs=1"], m) for n, a, m in self._MEMORIZATION_BAD]
        )

    def _assert_bad_inputs(self, module, cases):
        """For each (name, args, message): exit 2, exactly one stderr line `error: ...` naming
        the problem, no traceback, and no output folder created."""
        outs = [tempfile.mkdtemp(dir=self.tmp) + "/never" for _ in cases]
        procs = _run_forked(module, [[*args, f"--output_dir={out}"] for (_, args, _), out in zip(cases, outs)])
        for (name, args, message), out, proc in zip(cases, outs, procs):
            with self.subTest(name):
                self._assert_one_error_line(proc, message)
                self.assertFalse(os.path.exists(out), f"{module} {args} created its output folder")

    def test_forked_cases_equal_their_own_processes(self):
        """The forked harness reports what separate `python -m` processes do."""
        cases = [["--epochs=0", "--output_dir=/nonexistent/never"], ["--no_such_flag"], ["--plot=false", "extra"]]
        forked = _run_forked("experiments.tishby", cases)
        for args, got in zip(cases, forked):
            want = _run_main("experiments.tishby", *args)
            self.assertEqual((got.returncode, got.stderr, got.stdout), (want.returncode, want.stderr, want.stdout))

    _TISHBY_BAD = (
        ("preset", ["--preset=bogus"], "preset"),
        ("test_fraction", ["--test_fraction=1.5"], "test_fraction"),
        ("mi_log_points", ["--mi_log_points=-1"], "mi_log_points"),
        ("num_seeds", ["--num_seeds=0"], "num_seeds"),
        ("seeds_per_device", ["--seeds_per_device=-1"], "seeds_per_device"),
        ("num_bins_range", ["--num_bins=10", "--bin_range=abc"], "--bin_range"),
        ("empty_range", ["--num_bins=10", "--bin_range=1,1"], "lo < hi"),
        ("momentum", ["--momentum=1.5"], "momentum"),
        ("learning_rate", ["--learning_rate=0"], "learning_rate"),
        ("batch_size", ["--batch_size=-1"], "batch_size"),
        ("hidden_zero", ["--hidden=4,0"], "--hidden"),
        ("hidden_empty", ["--hidden="], "--hidden"),
        ("epochs_negative", ["--epochs=-5"], "epochs"),
        ("epochs_text", ["--epochs=many"], "epochs"),
        ("data_seed", ["--data_seed=-1"], "seeds"),
        ("estimators", ["--estimators=binned,kde"], "unknown estimator"),
        ("kde_noise_variance", ["--kde_noise_variance=-1"], "noise_variance"),
        ("unknown_flag", ["--no_such_flag=1"], "no_such_flag"),
        ("optimizer", ["--optimizer=lbfgs"], "optimizer"),
    )

    def test_tishby_bad_input(self):
        self._assert_bad_inputs("experiments.tishby", self._TISHBY_BAD)

    _COMPARE_BAD = (
        ("one_run", [], "at least two"),
        ("no_results", ["/nonexistent/a", "/nonexistent/b"], "no results.npz"),
        ("layout", ["a", "b", "--layout=grid"], "layout"),
        ("split", ["a", "b", "--split=valid"], "split"),
    )

    def test_compare_bad_input(self):
        procs = _run_forked(
            "experiments.compare", [[*a, f"--output={self.tmp}/never.png"] for _, a, _ in self._COMPARE_BAD]
        )
        for (name, _, message), proc in zip(self._COMPARE_BAD, procs):
            with self.subTest(name):
                self._assert_one_error_line(proc, message)
        self.assertFalse(os.path.exists(f"{self.tmp}/never.png"))

    _MNIST_BAD = (
        ("hidden", ["--hidden=abc"], "--hidden"),
        ("epochs", ["--epochs=0"], "epochs"),
        ("activation", ["--activation=swish"], "activation"),
        ("binning", ["--bin_size=0.5", "--num_bins=10"], "not both"),
        ("bin_size", ["--bin_size=-1"], "bin_size"),
        ("missing_data", ["--data_dir=/nonexistent/ib_jax"], "MNIST files missing"),
        ("stray_argument", ["oops"], "unexpected"),
        ("estimators_unknown", ["--estimators=binned,mine"], "unknown estimator"),
        ("estimators_empty", ["--estimators="], "at least one estimator"),
        ("estimators_twice", ["--estimators=kde_upper,kde_upper"], "twice"),
        ("kde_noise_variance", ["--kde_noise_variance=0"], "noise_variance"),
        ("kde_noise_variance_text", ["--kde_noise_variance=big"], "kde_noise_variance"),
        ("adaptive_bins", ["--adaptive_bins=-3"], "num_bins"),
        ("dataset", ["--dataset=imagenet"], "dataset"),
        ("gradient_sub_batches", ["--gradient_sub_batches=1"], "gradient_sub_batches"),
        ("gradient_stats", ["--gradient_stats=maybe"], "gradient_stats"),
        ("animate", ["--animate=often"], "animate"),
    )

    def test_bad_input_is_one_line_and_nonzero(self):
        cases = [(n, [*a, "--epochs=1" if "epochs" not in a[0] else "--seed=0"], m) for n, a, m in self._MNIST_BAD]
        self._assert_bad_inputs("experiments.mnist", cases)


if __name__ == "__main__":
    absltest.main()
