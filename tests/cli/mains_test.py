"""The experiment mains as a user runs them (subprocesses): smoke runs, long-run reliability, bad input."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import chex
import numpy as np
import PIL.Image
from absl.testing import absltest

from ib_jax import experiment, results
from tests import testing


class _MainsBase(chex.TestCase):
    """A temporary folder per class and the one-line-error checks (no tests of its own)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.tmp = tempfile.mkdtemp()


class MainsTest(_MainsBase):
    """The mains as a user runs them (subprocesses): runs, resumes, signals."""

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
        # The mains run in children forked from one process that imported JAX once (fork_main):
        # the same exit codes and output as their own processes, without 14 interpreter starts.
        outs = [f"{self.tmp}/true", f"{self.tmp}/random"]
        procs = testing.run_forked(
            "experiments.mnist",
            [[*common, "--output_dir", outs[0]], [*common, "--random_labels", "--output_dir", outs[1]]],
        )
        for out, proc in zip(outs, procs):
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
                self.assertTrue(os.path.exists(f"{out}/{name}"), name)
            res = results.load_results(out)
            chex.assert_shape(res["i_xt_test"], (1, 3, 3))
            chex.assert_shape(res["kde_upper.i_xt_test"], (1, 3, 3))
            self.assertEqual(int(res["n_train"]), 200)
            self.assertEqual(results.load_config(out)["config"]["kde_noise_variance"], 0.1)
        self.assertEqual(list(results.load_results(outs[1])["condition"]), ["permuted"])
        runs = outs
        drawn = [
            [],
            ["--estimator", "kde_upper"],
            ["--layout", "headline"],
            ["--layout", "estimators", "--split", "test"],
        ]
        # Without --output: compare.png beside the first run; --output into missing folders makes them.
        placed = [([], f"{self.tmp}/compare.png"), (["--output", f"{self.tmp}/new/deeper/c.png"], None)]
        placed.append((["--csv", f"{self.tmp}/planes.csv", "--output", f"{self.tmp}/with_table.png"], None))
        refused = [
            (
                ["--estimator", "kde_lower"],
                f"{outs[0]}: this run measured binned, kde_upper, adaptive_range, not kde_lower",
            ),
            (["--layout", "estimators", "--estimators", "kde_lower"], "not every run measured"),
            (["--names", "a"], "--names"),
            (["--layout", "grid"], "layout"),
            (["--layout", "headline", runs[0]], "two runs"),
        ]
        arg_lists = [[*runs, *extra, "--output", f"{self.tmp}/drawn_{i}.png"] for i, extra in enumerate(drawn)]
        arg_lists += [[*runs, *extra] for extra, _ in placed]
        arg_lists += [[*runs, *extra, "--output", f"{self.tmp}/refused.png"] for extra, _ in refused]
        # Last, --plot_only redraws a finished run's figures from its results, without training.
        os.unlink(f"{self.tmp}/true/training.png")
        redraw = ["--plot_only", "--animate", "--output_dir", f"{self.tmp}/true"]  # --animate applies too
        arg_lists.append({"module": "experiments.mnist", "args": redraw})
        *procs, redrawn = testing.run_forked("experiments.compare", arg_lists)
        for i, proc in enumerate(procs[: len(drawn)]):
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            self.assertTrue(os.path.exists(f"{self.tmp}/drawn_{i}.png"))
        self.assertIn("| adaptive_range | layer 2 (8) |", procs[len(drawn) - 1].stdout)  # --layout estimators' table
        for (extra, where), proc in zip(placed, procs[len(drawn) :]):
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            written = where or extra[-1]
            self.assertIn(f"figure: {written}", proc.stdout)
            self.assertTrue(os.path.exists(written), written)
        for (_, message), proc in zip(refused, procs[len(drawn) + len(placed) :]):
            self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
            self.assertNotIn("Traceback", proc.stderr)
            self.assertIn(message, proc.stderr)
        self.assertFalse(os.path.exists(f"{self.tmp}/refused.png"))
        table = results.to_records(outs[0])  # the CSV holds both runs' tidy tables
        with open(f"{self.tmp}/planes.csv") as f:
            self.assertLen(f.read().splitlines(), 1 + 2 * len(table))
        self.assertLen(table, 3 * 2 * 3 * 3)  # estimators x splits x epochs x layers
        self.assertEqual(redrawn.returncode, 0, redrawn.stderr[-2000:])
        self.assertIn(f"figure: {self.tmp}/true/training.png", redrawn.stdout)
        self.assertTrue(os.path.exists(f"{self.tmp}/true/training.png"))
        self.assertIn(f"figure: {self.tmp}/true/information_plane_test.gif", redrawn.stdout)

    def test_memorization_smoke(self):
        """Conditions x seeds in one run (a quantized network, measured exactly too): the row keys,
        summary.json, the sweep's figures."""
        out = f"{self.tmp}/memorization"
        args = (
            f"--data_dir {testing.DATA_DIR} --train_size 200 --test_size 100 --epochs 6 --mi_every 3 --hidden 32,8 "
            "--label_corruption_levels 0.5,1 --input_corruptions shuffled_pixels,gaussian --num_seeds 2 "
            "--fit_threshold 0.3 --quantize_bits 4 --estimators binned,exact --convergence none"
        )
        proc = testing.run_main("experiments.memorization", *args.split(), "--output_dir", out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(out)
        conditions = ["true", "labels", "labels", "permuted", "shuffled_pixels", "gaussian"]
        np.testing.assert_array_equal(res["condition"], np.repeat(conditions, 2))
        np.testing.assert_array_equal(res["corruption"], np.repeat([0, 0.5, 1.0, 0, 0, 0], 2))
        np.testing.assert_array_equal(res["seed"], np.tile([0, 1], 6))
        chex.assert_shape([res["i_xt_train"], res["i_ty_test"], res["exact.i_xt_train"]], (12, 3, 3))
        self.assertTrue(np.all(res["exact.i_xt_train"] <= np.log2(200) + 1e-5))  # quantized rows, counted exactly
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
        self.assertFalse(os.path.exists(f"{out}/.lock"))  # a finished run leaves no lock file
        # Another main's --plot_only draws the sweep's own figures; --condition one condition's
        # run figures; compare refuses a sweep without --condition, and draws the one it names.
        os.unlink(f"{out}/zhang.png")
        compared = f"{self.tmp}/sweep_compare.png"
        cases = [
            ["--plot_only", f"--output_dir={out}"],
            ["--plot_only", f"--output_dir={out}", "--condition=labels:0.5"],
            ["--plot_only", f"--output_dir={out}", "--condition=blurred"],
            {"module": "experiments.compare", "args": [out, out, f"--output={compared}"]},
            {"module": "experiments.compare", "args": [out, out, "--condition=true,permuted", f"--output={compared}"]},
        ]
        redrawn, one, unknown, refused, picked = testing.run_forked("experiments.mnist", cases)
        self.assertEqual(redrawn.returncode, 0, redrawn.stderr[-2000:])
        self.assertIn(f"figure: {out}/zhang.png", redrawn.stdout)
        self.assertFalse(os.path.exists(f"{out}/information_plane.png"))  # no run figure pooling the conditions
        self.assertEqual(one.returncode, 0, one.stderr[-2000:])
        self.assertIn(f"figure: {out}/information_plane-labels_0.5.png", one.stdout)
        self.assertEqual((unknown.returncode, unknown.stderr.count("\n")), (2, 1), unknown.stderr)
        self.assertIn("has no condition 'blurred'; it has true, labels:0.5, labels:1, permuted", unknown.stderr)
        self.assertEqual(refused.returncode, 2, refused.stderr[-2000:])
        self.assertIn(
            "is a sweep of 6 conditions (true, labels:0.5, labels:1, permuted, shuffled_pixels", refused.stderr
        )
        self.assertEqual(picked.returncode, 0, picked.stderr[-2000:])
        self.assertTrue(os.path.exists(compared))

    def test_tishby_idnns_preset_smoke(self):
        """Minibatches, log-spaced epochs, num_bins, truncated-normal init, the 'all' split."""
        out = f"{self.tmp}/idnns"
        proc = testing.run_main(
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
        self.assertEqual(
            config["binning"], {"bin_size": None, "num_bins": 29, "value_range": [-1.0, 1.0], "bias_correction": "none"}
        )
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
        args += ["--convergence=none"]
        proc = testing.run_main("experiments.tishby", *args, "--output_dir", f"{self.tmp}/whole")
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
        compared = testing.run_main("experiments.compare", f"{self.tmp}/whole", out, "--output", f"{self.tmp}/k.png")
        self.assertEqual(compared.returncode, 0, compared.stderr[-2000:])
        self.assertRegex(compared.stdout, f"note: {out}: unfinished: \\d+ of 3000 epochs")
        proc = testing.run_main("experiments.tishby", *args, "--output_dir", out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        whole, resumed = results.load_results(f"{self.tmp}/whole"), results.load_results(out)
        self.assertEqual(sorted(whole), sorted(resumed))
        for key in whole:
            np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)

    def test_sigint_saves_and_exits_130_with_one_line(self):
        out = f"{self.tmp}/interrupted"
        cache = f"{self.tmp}/compilation_cache"  # its own, new folder: it must fill
        args = ["--epochs", "100000", "--hidden", "8,5", "--checkpoint_every_s", "0", "--output_dir", out]
        args += ["--compilation_cache", cache]
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        run = subprocess.Popen(
            [sys.executable, "-m", "experiments.tishby", *args],
            cwd=testing.REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not os.path.exists(f"{out}/{results.CHECKPOINT}") and run.poll() is None:
            self.assertLess(time.monotonic(), deadline, "no checkpoint appeared")
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
        self.assertEqual(run.returncode, 130, stderr[-2000:])
        self.assertNotIn("Traceback", stderr)
        last = stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"^interrupted: epoch \d+ of 100000 saved in .*; rerun the same command to resume$")
        self.assertFalse(results.load_results(out)["complete"])
        self.assertNotEmpty(os.listdir(cache))

    def test_matplotlib_is_imported_only_to_draw(self):
        """`import ib_jax` and a main's imports leave out the figures' module and
        matplotlib (half a second of every start): a run imports them in a thread as it starts."""
        code = (
            "import sys, ib_jax, experiments.tishby\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or m == 'ib_jax.plotting'))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=testing.REPO, capture_output=True, text=True, timeout=120
        )
        self.assertEqual((proc.returncode, proc.stdout.strip()), (0, "[]"), proc.stderr[-2000:])


class OneLineErrorsTest(_MainsBase):
    """Bad inputs and unusable folders: one line, a non-zero exit, nothing left behind (a class
    of its own, so the two test workers share the subprocess-heavy mains tests)."""

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
        for (args, message), proc in zip(cases, testing.run_forked("experiments.tishby", [a for a, _ in cases])):
            with self.subTest(str(args)):
                self._assert_one_error_line(proc, message)
        self.assertFalse(os.path.exists("/proc/ib_jax_forbidden"))
        self.assertFalse(os.path.exists(out))
        (proc,) = testing.run_forked("experiments.mnist", [["--data_dir=/nonexistent/ib_jax", f"--output_dir={out}"]])
        self._assert_one_error_line(proc, "MNIST files missing")  # the data, before the folder
        self.assertFalse(os.path.exists(out))

    def test_jax_backend_logs_quiet_unless_verbose(self):
        args = ["--epochs=2", "--mi_every=1", "--plot=false", "--overwrite", f"--output_dir={self.tmp}/quiet"]
        args += ["--convergence=none"]
        args.append("--mi_subset=5000")  # not below either split's size: measured on all, and said so
        args.append("--estimators=binned,exact")  # exact on a float network: warned, and saturated
        quiet, verbose = testing.run_forked("experiments.tishby", [args, [*args, "--verbosity=1"]])
        self.assertEqual(quiet.returncode, 0, quiet.stderr[-2000:])
        self.assertIn("--mi_subset 5000 is not below the 3277 samples of the training split", quiet.stderr)
        for said in ("compiling the measured epoch (an epoch with gradient statistics, then binned", "compiled in"):
            self.assertIn(said, quiet.stderr)
        self.assertIn("measuring the final network (binned, exact on 6 layers x 2 splits of 1 row(s))", quiet.stderr)
        self.assertIn("the final network (after epoch 2): train accuracy", quiet.stdout)
        self.assertIn("--estimators exact counts distinct rows: without --quantize_bits", quiet.stderr)
        self.assertIn("saturated (within 0.05 bits of the ceiling in most measured epochs", quiet.stdout)
        self.assertRegex(quiet.stdout, r"exact: I\(X;T\) at log2 N .*: train layers 1, 2, 3, 4, 5, 6; test layers 1")
        self.assertNotIn("xla_bridge.py", quiet.stderr)  # JAX's backend probing ("Unable to initialize ...")
        self.assertIn("xla_bridge.py", verbose.stderr)

    def test_second_run_on_a_busy_folder_is_refused(self):
        out = f"{self.tmp}/busy"
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        # The first process takes the folder as the mains do (prepare_output_dir), then waits
        # without training, so it leaves the cores to the runs below.
        hold = "import sys, time; from ib_jax import workdir; "
        hold += "workdir.prepare_output_dir(sys.argv[1], False); time.sleep(600)"
        command = [sys.executable, "-c", hold, out]
        first = subprocess.Popen(
            command, cwd=testing.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            while not os.path.exists(f"{out}/.lock") or not open(f"{out}/.lock").read().strip():
                self.assertLess(time.monotonic(), deadline, "the first run never locked its folder")
                time.sleep(0.1)
            second = testing.run_main("experiments.tishby", "--epochs=2", f"--output_dir={out}")
            self._assert_one_error_line(second, f"process {first.pid}")
            self.assertIn(out, second.stderr)
        finally:
            first.kill()
            first.wait()
        # The OS released the lock with the killed process: the folder can be used again.
        proc = testing.run_main(
            "experiments.tishby", "--epochs=2", "--mi_every=1", "--plot=false", "--overwrite", f"--output_dir={out}"
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])

    def test_failed_write_keeps_the_last_good_files_and_the_rerun_resumes(self):
        """Disk full in the middle of the 5th atomic write (a checkpoint): one error line, exit
        1, the previous results and checkpoint intact, no temporary file; the rerun resumes and
        ends as an uninterrupted run."""
        args = ["--epochs=300", "--mi_every=50", "--hidden=8,5", "--plot=false", "--convergence=none"]
        out = f"{self.tmp}/full_disk"
        # The uninterrupted run, then the failing one (tests/disk_full_main.py): children of one process.
        whole, proc = testing.run_forked(
            "experiments.tishby",
            [
                [*args, f"--output_dir={self.tmp}/full_disk_whole"],
                {"module": "tests.disk_full_main", "args": [*args, "--checkpoint_every_s=0", f"--output_dir={out}"]},
            ],
        )
        self.assertEqual(whole.returncode, 0, whole.stderr[-2000:])
        self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
        self.assertNotIn("Traceback", proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("error:") and "No space left on device" in last, last)
        self.assertFalse(results.load_results(out)["complete"])  # the previous results, readable
        self.assertTrue(os.path.exists(f"{out}/{results.CHECKPOINT}"))
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".tmp")], [])
        rerun = testing.run_main("experiments.tishby", *args, f"--output_dir={out}")
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
        want, got = results.load_results(f"{self.tmp}/full_disk_whole"), results.load_results(out)
        for key in ("i_xt_train", "i_ty_test", "train_loss", "test_accuracy", "grad_std_norm", "final_train_loss"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)

    def test_corrupt_checkpoint_is_one_line_never_a_silent_restart(self):
        out = f"{self.tmp}/corrupt_checkpoint"
        args = ["--epochs=2", "--mi_every=1", "--plot=false", "--convergence=none", f"--output_dir={out}"]
        self.assertEqual(testing.run_main("experiments.tishby", *args).returncode, 0)
        before = open(f"{out}/results.npz", "rb").read()
        open(f"{out}/{results.CHECKPOINT}", "wb").write(b"\x00garbage")
        proc = testing.run_main("experiments.tishby", *args)
        self._assert_one_error_line(proc, "--overwrite")
        self.assertIn("corrupt", proc.stderr)
        self.assertEqual(open(f"{out}/results.npz", "rb").read(), before)

    def test_compare_refuses_bad_folders_in_one_line(self):
        good = f"{self.tmp}/compare_good"
        os.makedirs(good)
        results.save_results(good, testing.synthetic_results())
        empty, truncated, newer = (f"{self.tmp}/compare_{n}" for n in ("empty", "truncated", "newer"))
        os.makedirs(empty)
        os.makedirs(truncated)
        data = open(f"{good}/results.npz", "rb").read()
        open(f"{truncated}/results.npz", "wb").write(data[: len(data) // 2])
        res = results.load_results(good)
        results.save_results(newer, {**res, "contract": results.CONTRACT + 1})
        cases = ((empty, "no results.npz"), (truncated, "unreadable"), (newer, "newer"))
        arg_lists = [[good, folder, "--output", f"{self.tmp}/c.png"] for folder, _ in cases]
        procs = testing.run_forked("experiments.compare", arg_lists)
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
        procs = testing.run_forked(module, [[*args, f"--output_dir={out}"] for (_, args, _), out in zip(cases, outs)])
        for (name, args, message), out, proc in zip(cases, outs, procs):
            with self.subTest(name):
                self._assert_one_error_line(proc, message)
                self.assertFalse(os.path.exists(out), f"{module} {args} created its output folder")

    def test_a_diverged_run_is_drawn_never_resumed(self):
        """A NaN loss stops the run (exit 3); its rerun is refused in one line (exit 2); --plot_only
        and compare draw what it measured, saying it diverged."""
        out = f"{self.tmp}/diverged"
        args = [
            "--epochs=300",
            "--learning_rate=1e30",
            "--activation=relu",
            "--convergence=none",
            f"--output_dir={out}",
        ]
        first, again, drawn, compared = testing.run_forked(
            "experiments.tishby",
            [
                args,
                args,
                ["--plot_only", f"--output_dir={out}"],
                {"module": "experiments.compare", "args": [out, out, f"--output={self.tmp}/d.png"]},
            ],
        )
        self.assertEqual(first.returncode, 3, first.stderr[-2000:])
        self.assertIn("stopped: training loss became non-finite at epoch 1", first.stderr)
        self._assert_one_error_line(again, f"{out} holds a run that diverged at epoch 1: it cannot be resumed")
        self.assertIn("--overwrite", again.stderr)
        self.assertEqual(drawn.returncode, 0, drawn.stderr[-2000:])
        self.assertIn(f"note: {out}: diverged at epoch 1", drawn.stdout)
        self.assertEqual(compared.returncode, 0, compared.stderr[-2000:])
        self.assertIn(f"note: {out}: diverged at epoch 1", compared.stdout)

    def test_a_backend_that_cannot_start_is_one_line(self):
        """JAX_PLATFORMS=cuda on a machine without JAX's CUDA build or a GPU: JAX fails with a bare
        AssertionError deep inside; the main says it in one line, pointing to docs/gpu.md."""
        out = f"{self.tmp}/no_gpu"
        proc = testing.run_main(
            "experiments.tishby", "--epochs=2", f"--output_dir={out}", env={"JAX_PLATFORMS": "cuda"}
        )
        self._assert_one_error_line(proc, "JAX could not start its backend (JAX_PLATFORMS=cuda)")
        self.assertIn("docs/gpu.md", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_forked_cases_equal_their_own_processes(self):
        """The forked harness reports what separate `python -m` processes do."""
        cases = [["--epochs=0", "--output_dir=/nonexistent/never"], ["--no_such_flag"], ["--plot=false", "extra"]]
        forked = testing.run_forked("experiments.tishby", cases)
        for args, got in zip(cases, forked):
            want = testing.run_main("experiments.tishby", *args)
            self.assertEqual((got.returncode, got.stderr, got.stdout), (want.returncode, want.stderr, want.stdout))

    _TISHBY_BAD = (
        ("preset", ["--preset=bogus"], "preset"),
        ("model_without_images", ["--model=cnn"], "needs images"),
        ("quantize_bits_one", ["--quantize_bits=1"], "quantize_bits"),
        ("quantize_bits_high", ["--quantize_bits=17"], "quantize_bits"),
        ("quantize_bits_negative", ["--quantize_bits=-8"], "quantize_bits"),
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
        ("checkpoint_every_s", ["--checkpoint_every_s=-1"], "checkpoint_every_s"),
        ("labels_contradict", ["--random_labels", "--label_corruption=0.5"], "not both"),
        ("sub_batches_over_data", ["--gradient_sub_batches=5000"], "exceeds the 3277 training samples"),
        ("batch_over_data", ["--batch_size=5000"], "exceeds the 3277 training samples"),
        ("test_size_below_classes", ["--test_size=1"], "--test_size 1 cannot hold each of the 2 classes"),
        ("train_size_below_classes", ["--train_size=1"], "--train_size 1 cannot hold each of the 2 classes"),
        ("mi_subset_below_classes", ["--mi_subset=1"], "--mi_subset 1 cannot hold each of the 2 classes"),
        ("train_size_above_split", ["--train_size=4000"], "--train_size 4000 exceeds the 3277 samples"),
        ("renyi_alpha", ["--renyi_alpha=1"], "alpha"),
        ("renyi_batch", ["--renyi_batch=1"], "batch_size"),
        ("condition_without_plot_only", ["--condition=true"], "--condition picks a condition of a sweep to draw"),
        ("layer_noise_kind", ["--layer_noise=dropout:0.2"], "unknown layer noise 'dropout'"),
        ("layer_noise_form", ["--layer_noise=additive"], "--layer_noise must be none, additive:SIGMA"),
        ("layer_noise_rate", ["--layer_noise=gaussian_dropout:1"], "gaussian_dropout needs a rate in (0, 1)"),
        ("layer_noise_sigma", ["--layer_noise=additive:-0.1"], "additive noise needs a standard deviation > 0"),
        ("noisy_layers_text", ["--layer_noise=additive:0.1", "--noisy_layers=first"], "--noisy_layers"),
        ("noisy_layers_over", ["--layer_noise=additive:0.1", "--noisy_layers=7"], "has 5 hidden layers"),
        ("noisy_layers_alone", ["--noisy_layers=1"], "--noisy_layers needs --layer_noise"),
        ("noise_mc_without_noise", ["--estimators=noise_mc"], "noise_mc estimator needs a network with noise"),
        ("noise_and_quantized", ["--layer_noise=additive:0.1", "--quantize_bits=4"], "do not go together"),
        ("noise_samples", ["--noise_samples=1"], "noise_samples"),
        ("sliced_slices", ["--sliced_slices=1"], "slices"),
        ("sliced_dim", ["--sliced_dim=0"], "dim"),
        ("bootstrap_one", ["--bootstrap=1"], "bootstrap must be 0 (off) or an integer >= 2"),
        ("null_negative", ["--null_permutations=-2"], "null_permutations must be 0 (off) or an integer >= 2"),
        ("bootstrap_probe", ["--estimators=probe", "--bootstrap=5"], "--bootstrap does not apply to the probe"),
        ("convergence", ["--convergence=sometimes"], "convergence"),
        ("bias_correction", ["--bias_correction=jackknife"], "bias_correction"),
    )

    def test_tishby_bad_input(self):
        self._assert_bad_inputs("experiments.tishby", self._TISHBY_BAD)

    _COMPARE_BAD = (
        ("one_run", [], "at least two"),
        ("no_results", ["/nonexistent/a", "/nonexistent/b"], "no results.npz"),
        ("layout", ["a", "b", "--layout=grid"], "layout"),
        ("split", ["a", "b", "--split=valid"], "split"),
        ("condition_count", ["a", "b", "c", "--condition=true,permuted"], "--condition has 2 names for 3 runs"),
    )

    def test_compare_bad_input(self):
        procs = testing.run_forked(
            "experiments.compare", [[*a, f"--output={self.tmp}/never.png"] for _, a, _ in self._COMPARE_BAD]
        )
        for (name, _, message), proc in zip(self._COMPARE_BAD, procs):
            with self.subTest(name):
                self._assert_one_error_line(proc, message)
        self.assertFalse(os.path.exists(f"{self.tmp}/never.png"))

    _MNIST_BAD = (
        ("hidden", ["--hidden=abc"], "--hidden"),
        ("model", ["--model=vgg"], "model"),
        ("channels_of_the_mlp", ["--channels=4"], "channels applies to the image models"),
        ("channels_text", ["--model=cnn", "--channels=a"], "--channels"),
        ("cnn_too_deep", ["--model=cnn", "--channels=2,2,2,2,2", f"--data_dir={testing.DATA_DIR}"], "halves the image"),
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
