"""Tests of the output folder: checks that create nothing, the lock (one run per folder), and a
finished run replaced only on request."""

import pathlib
import subprocess
import sys
import tempfile

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import errors, outcome, results, workdir
from tests import testing

# Holds the lock of a folder until its standard input closes.
_HOLD = """
import sys
from ib_jax import workdir
workdir.prepare_output_dir(sys.argv[1], False)
print("locked", flush=True)
sys.stdin.read()
"""


class CheckTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(tempfile.mkdtemp())

    def test_impossible_folders_are_refused_and_nothing_is_created(self):
        (self.tmp / "file").write_text("x")
        for folder, message in (("", "empty"), (self.tmp / "file", "not a folder"), (self.tmp / "file/a/b", "file")):
            with self.assertRaisesRegex(errors.ConfigError, message):
                workdir.check_output_dir(folder)
        self.assertEqual(workdir.check_output_dir(self.tmp / "new/run"), self.tmp / "new/run")
        self.assertFalse((self.tmp / "new").exists())

    def test_finished_run_needs_overwrite_which_removes_its_outputs(self):
        out = workdir.prepare_output_dir(self.tmp / "run", False)
        results.save_results(out, testing.synthetic_results())
        for name in (results.CONFIG, results.FINAL_STATE, "information_plane.png", "plane.gif"):
            (out / name).write_text("x")
        with self.assertRaisesRegex(errors.ConfigError, "finished run; pass --overwrite to replace it, or a larger"):
            workdir.prepare_output_dir(out, False)
        with self.assertRaisesRegex(errors.ConfigError, "finished run; pass overwrite=True to replace it"):
            workdir.prepare_output_dir(out, False, overwrite_hint="pass overwrite=True")
        self.assertEqual(workdir.prepare_output_dir(out, False, continues=lambda folder: folder == out), out)
        (out / results.CHECKPOINT).write_text("x")  # a checkpoint: an unfinished run, resumed
        workdir.prepare_output_dir(out, False)
        workdir.prepare_output_dir(out, True)
        self.assertEqual(sorted(p.name for p in out.iterdir()), [workdir.LOCK])

    def test_a_diverged_run_is_refused_even_with_a_checkpoint(self):
        """A run whose training loss went NaN is finished business (older versions kept its
        checkpoint): refused in one line naming --overwrite."""
        out = workdir.prepare_output_dir(self.tmp / "diverged", False)
        res = testing.synthetic_results(rows=2, complete=False)
        res["train_loss"][1, 3:] = np.nan
        results.save_results(out, {**res, "diverged_epoch": outcome.diverged_epochs(res["train_loss"])})
        (out / results.CHECKPOINT).write_text("x")
        with self.assertRaisesRegex(errors.ConfigError, "diverged at epoch 3 \\(1 of 2 rows\\).*--overwrite"):
            workdir.prepare_output_dir(out, False)

    def test_release_removes_the_lock_file(self):
        out = workdir.prepare_output_dir(self.tmp / "done", False)
        self.assertTrue((out / workdir.LOCK).is_file())
        workdir.release(out)
        self.assertFalse((out / workdir.LOCK).exists())
        workdir.prepare_output_dir(out, False)  # taken again: a new lock file
        self.assertTrue((out / workdir.LOCK).is_file())

    def test_a_second_process_is_refused_naming_the_holder(self):
        out = self.tmp / "busy"
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(out)],
            cwd=testing.REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            with self.assertRaisesRegex(errors.ConfigError, f"in use by another run \\(process {holder.pid}\\)"):
                workdir.prepare_output_dir(out, False)
        finally:
            holder.communicate("", timeout=60)
        workdir.prepare_output_dir(out, False)  # released when the holder ended


if __name__ == "__main__":
    absltest.main()
