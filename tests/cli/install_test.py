"""`pip install .` as a user runs it: the library and the mains' console scripts, run from
another folder (where the repository's `experiments` cannot be imported)."""

import os
import pathlib
import subprocess
import sys
import sysconfig
import tempfile
import tomllib

import chex
from absl.testing import absltest

from ib_jax import results
from tests import testing


class InstallTest(chex.TestCase):
    def test_packages_listed_in_pyproject_are_every_package(self):
        """setuptools is given the packages by name (the mains' folder is mapped to
        ib_jax.experiments): a new subpackage must be listed, or `pip install .` would leave it out."""
        listed = tomllib.loads((testing.REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
        found = ["ib_jax.experiments"] + [
            ".".join(p.parent.relative_to(testing.REPO).parts) for p in (testing.REPO / "ib_jax").rglob("__init__.py")
        ]
        self.assertCountEqual(listed, found)

    def test_pip_install_runs_the_mains_from_another_folder(self):
        """A fresh venv that takes the pinned dependencies from this one (a .pth file: pip fetches only
        its build backend),
        `pip install --no-deps .`, then the console scripts and `python -m ib_jax.experiments.*`
        in an empty folder."""
        tmp = pathlib.Path(tempfile.mkdtemp())
        venv, elsewhere = tmp / "venv", tmp / "elsewhere"
        elsewhere.mkdir()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        python = venv / "bin" / "python"
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        pathlib.Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", str(testing.REPO)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=elsewhere,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        self.assertEqual(install.returncode, 0, install.stderr[-2000:])
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ""}
        run = lambda *command: subprocess.run(  # noqa: E731
            [str(c) for c in command], capture_output=True, text=True, timeout=300, cwd=elsewhere, env=env
        )
        args = [
            "--epochs=4",
            "--mi_every=2",
            "--hidden=5,3",
            "--plot=false",
            f"--compilation_cache={testing.CACHE_DIR}",
        ]
        for i, script in enumerate(("ib-jax-tishby", "ib-jax-tishby")):
            proc = run(venv / "bin" / script, *args, f"--output_dir=run_{i}", "--seed", str(i))
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            self.assertTrue(bool(results.load_results(elsewhere / f"run_{i}")["complete"]))
        compared = run(python, "-m", "ib_jax.experiments.compare", "run_0", "run_1", "--csv", "planes.csv")
        self.assertEqual(compared.returncode, 0, compared.stderr[-2000:])
        self.assertTrue((elsewhere / "compare.png").exists() and (elsewhere / "planes.csv").exists())
        helped = run(venv / "bin" / "ib-jax-memorization", "--help")
        self.assertEqual(helped.returncode, 0, helped.stderr[-2000:])
        self.assertIn("Zhang et al.'s corruptions as one program", helped.stdout)  # the main's docstring
        self.assertEqual(run(venv / "bin" / "ib-jax-mnist", "--helpfull").returncode, 0)
        self.assertNotEqual(run(python, "-c", "import experiments").returncode, 0)  # nothing named so is installed


if __name__ == "__main__":
    absltest.main()
