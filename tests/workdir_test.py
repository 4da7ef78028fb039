"""Tests of the output folder: checks that create nothing, the lock (one run per folder), and a
finished run replaced only on request."""

import pathlib
import subprocess
import sys
import tempfile

import chex
from absl.testing import absltest

from ib_jax import errors, results, workdir
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
        for name in (results.RESULTS, results.CONFIG, "information_plane.png", "plane.gif"):
            (out / name).write_text("x")
        with self.assertRaisesRegex(errors.ConfigError, "finished run"):
            workdir.prepare_output_dir(out, False)
        (out / results.CHECKPOINT).write_text("x")  # a checkpoint: an unfinished run, resumed
        workdir.prepare_output_dir(out, False)
        workdir.prepare_output_dir(out, True)
        self.assertEqual(sorted(p.name for p in out.iterdir()), [workdir.LOCK])

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
