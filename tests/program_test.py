"""Tests of the compiled program: its functions' shapes, the padded metric buffer, and the final
network measured without an update."""

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import experiment, program, rows, sharding
from tests import testing


class ProgramTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        config = experiment.ExperimentConfig(**{**testing.TINY.__dict__, "estimators": ("binned",), "num_seeds": 3})
        dataset = experiment.load_dataset(config)
        cls.lay = sharding.layout(3, seeds_per_device=2)  # groups of 2: 3 rows padded to 4
        cls.rows = rows.build(config, dataset, cls.lay.order)
        cls.program = program.Program(
            config, dataset, cls.rows, cls.lay, experiment.measured_estimators(config), experiment.mi_epochs(config)
        )
        cls.per_row = sharding.put(cls.rows.per_row, cls.lay.sharding)
        cls.compiles = []
        cls.program.on_compile = cls.compiles.append

    def test_layout_and_rows(self):
        self.assertEqual((self.lay.group, self.lay.padded), (2, 4))
        np.testing.assert_array_equal(self.rows.per_row["seed"], [0, 1, 2, 0])  # padding repeats row 0
        self.assertEqual(self.program.max_gap, 9)  # 10 epochs between measurements, one of them measured

    def test_epochs_measured_epoch_and_final(self):
        states = self.program.init(self.per_row)
        states, buffer = self.program.epochs(states, self.per_row, 0, 3)
        chex.assert_shape(buffer, (4, 9, 4))
        self.assertTrue(np.all(np.asarray(buffer)[:, 3:] == 0))  # valid up to count
        self.assertTrue(np.all(np.asarray(buffer)[:, :3, 0] > 0))  # losses
        states, metrics, information, grads = self.program.measured_epoch(states, self.per_row, 3)
        chex.assert_shape([metrics, information, grads], [(4, 4), (4, 1, 4, 3), (4, 3, 3)])
        np.testing.assert_array_equal(np.asarray(information)[0], np.asarray(information)[3])  # padding = row 0
        weights = jax.tree.map(np.asarray, states.params)
        final_metrics, final_information, final_grads = self.program.final(states, self.per_row)
        chex.assert_shape([final_metrics, final_information], [(4, 4), (4, 1, 4, 3)])
        self.assertTrue(np.all(np.isnan(np.asarray(final_grads)[:, :2])))  # no epoch trained from it
        chex.assert_trees_all_equal(jax.tree.map(np.asarray, states.params), weights)  # no update

    def test_each_function_is_compiled_once(self):
        """An epoch number as a Python int or a numpy integer is one program (a weakly typed
        scalar would need another, which the compiled program, taking only the types it was
        compiled for, would refuse); each function is compiled once, reported to `on_compile`
        first, and timed."""
        prog = self.program  # shared: the other test's calls (Python ints) must find the same programs
        states = prog.init(self.per_row)
        states, _ = prog.epochs(states, self.per_row, 0, 1)
        states, _ = prog.epochs(states, self.per_row, np.int64(1), np.int32(2))
        states, *_ = prog.measured_epoch(states, self.per_row, 3)
        states, *_ = prog.measured_epoch(states, self.per_row, np.int64(4))
        for kind in ("init", "train", "measure"):
            self.assertEqual(self.compiles.count(kind), 1, kind)
            self.assertTrue(prog.compiled(kind))
            self.assertGreater(prog.compile_seconds[kind], 0.0)


if __name__ == "__main__":
    absltest.main()
