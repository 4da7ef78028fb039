"""The flag table: it defines each main's flags, maps them to the config as the mains did by
hand, applies presets without touching FLAGS, and docs/flags.md documents every flag."""

import ast
import os
import re
from unittest import mock

from absl import flags
from absl.testing import absltest, parameterized

from experiments import flags as flag_table
from ib_jax import estimators, experiment, train
from tests import testing


def _parsed(main: str, *argv: str) -> tuple[dict, dict]:
    """The holders and values of `main`'s flags, parsed from argv in a fresh FlagValues."""
    flag_values = flags.FlagValues()
    holders = flag_table.define(main, flag_values)
    flag_values(["prog", *argv])
    return holders, flag_table.values(main, holders)


def _documented(main: str) -> set[str]:
    text = flag_table.DOCS.read_text()
    section = text.split(f"## `python -m experiments.{main}`")[1].split("\n## ")[0]
    return set(re.findall(r"^\| `--(\w+)` \|", section, re.M))


class FlagTableTest(parameterized.TestCase):
    def test_docs_page_is_the_tables_output(self):
        self.assertEqual(flag_table.DOCS.read_text(), flag_table.markdown(), "rerun: python -m experiments.flags")
        self.assertIn("and \\|W\\|_F.", flag_table.DOCS.read_text())  # a pipe in a table cell, escaped (not "/W/")

    def test_every_defined_flag_is_documented(self):
        # Each main imported in its own child of one process (tests/fork_main.py).
        procs = testing.run_forked("tests.defined_flags", [[main] for main in flag_table.MAINS])
        for main, proc in zip(flag_table.MAINS, procs):
            with self.subTest(main):
                self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
                defined = set(proc.stdout.split())
                self.assertGreater(len(defined), 5)
                self.assertEqual(defined - _documented(main), set())
                self.assertEqual(defined, {f.name for f in flag_table.flags_of(main)})

    def test_tishby_defaults_give_the_reimplemented_config(self):
        holders, vals = _parsed("tishby")
        got = flag_table.config("tishby", vals, holders["bin_size"].present, dataset="tishby")
        want = experiment.ExperimentConfig(
            dataset="tishby",
            train=train.TrainConfig(
                hidden=(10, 7, 5, 4, 3), optimizer="sgd", learning_rate=0.01, momentum=0.9, loss_reduction="mean"
            ),
            epochs=10000,
            mi_every=100,
            binning=estimators.Binning(bin_size=0.07),
            kde_noise_variance=1e-3,
        )
        self.assertEqual(got, want)

    def test_preset_fills_only_the_flags_not_given(self):
        holders, vals = _parsed("tishby", "--preset=idnns", "--epochs=30")
        got = flag_table.config("tishby", vals, holders["bin_size"].present, dataset="tishby")
        self.assertEqual(
            (got.epochs, got.mi_log_points, got.train.batch_size, got.train.init), (30, 400, 512, "truncated_normal")
        )
        self.assertEqual(got.binning, estimators.Binning(num_bins=29, value_range=(-1.0, 1.0)))
        self.assertEqual((holders["epochs"].value, holders["batch_size"].value), (30, 0))  # the flags untouched

    def test_mnist_defaults_are_the_reimplemented_project(self):
        holders, vals = _parsed("mnist", "--estimators= binned , kde_upper")
        got = flag_table.config("mnist", vals, holders["bin_size"].present, dataset="mnist")
        self.assertEqual(got.train, train.TrainConfig())  # TrainConfig's defaults are the project's network
        self.assertEqual((got.epochs, got.mi_every, got.binning.bin_size), (4000, 20, 0.5))
        self.assertEqual(got.estimators, ("binned", "kde_upper"))

    @parameterized.parameters(
        (("--num_bins=10", "--bin_size=0.1"), "not both"),
        (("--num_bins=10", "--bin_range=1"), "lo,hi"),
        (("--hidden=3,x",), "comma-separated"),
        (("--epochs=0",), "epochs"),
    )
    def test_bad_values_are_config_errors(self, argv, message):
        holders, vals = _parsed("mnist", *argv)
        with self.assertRaisesRegex(experiment.errors.ConfigError, message):
            flag_table.config("mnist", vals, holders["bin_size"].present, dataset="mnist")

    def test_compilation_cache_folder(self):
        from experiments import common  # pylint: disable=g-import-not-at-top

        self.assertIsNone(common.compilation_cache_dir("off"))
        self.assertEqual(str(common.compilation_cache_dir("/tmp/cc")), "/tmp/cc")
        with mock.patch.dict(os.environ, {"JAX_COMPILATION_CACHE_DIR": "/tmp/env_cc"}):
            self.assertEqual(str(common.compilation_cache_dir("auto")), "/tmp/env_cc")
        with mock.patch.dict(os.environ, {"JAX_COMPILATION_CACHE_DIR": "", "XDG_CACHE_HOME": "/tmp/xdg"}):
            self.assertEqual(str(common.compilation_cache_dir("auto")), "/tmp/xdg/ib_jax/jax")

    def test_help_prints_each_docstring_verbatim_and_exits_0(self):
        """absl formats a main's docstring with %: a lone "%" garbled the help text (`80%` became
        the script's path), and a line-continuation backslash ran two example lines together."""
        mains = [f"experiments.{main}" for main in flag_table.MAINS] + ["examples.cnn_mnist"]
        cases = [{"module": module, "args": ["--helpfull"]} for module in mains]
        cases.append({"module": "experiments.tishby", "args": ["--help"]})
        done = testing.run_forked("experiments.tishby", cases)
        for module, proc in zip(mains + ["experiments.tishby --help"], done):
            with self.subTest(module):
                self.assertEqual(proc.returncode, 0, proc.stderr[-500:])
                self.assertIn("--helpfull", proc.stdout)
                self.assertIn("--output" if "compare" in module else "--output_dir", proc.stdout)
                path = testing.REPO / (module.split()[0].replace(".", "/") + ".py")
                doc = ast.parse(path.read_text()).body[0].value.value
                self.assertIn(doc, proc.stdout)  # nothing of it replaced
                for line in doc.splitlines():
                    self.assertNotRegex(line.rstrip(), r"\S {3,}\S", f"a stray run of spaces in {module}'s help")

    def test_unknown_main(self):
        with self.assertRaisesRegex(ValueError, "unknown main"):
            flag_table.flags_of("nope")


if __name__ == "__main__":
    absltest.main()
