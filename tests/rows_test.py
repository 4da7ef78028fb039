"""Rows (conditions x seeds) in one program: rows equal single-seed and single-condition runs,
group and padding change nothing, per-seed labels, epochs to fit, bad conditions."""

import tempfile

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import estimators, experiment, results, train

_BASE = experiment.ExperimentConfig(
    dataset="tishby",
    train=train.TrainConfig(hidden=(6, 4), optimizer="sgd", learning_rate=0.05, momentum=0.9, loss_reduction="mean"),
    epochs=20,
    mi_every=10,
    binning=estimators.Binning(bin_size=0.1),
    test_fraction=0.5,
)
_KEYS = (*results.MI_KEYS, *results.METRICS, "final_train_loss")


def _config(**changes):
    return experiment.ExperimentConfig(**{**_BASE.__dict__, **changes})


def _run(config, seeds_per_device=0):
    out = experiment.prepare_output_dir(tempfile.mkdtemp(), False)
    return experiment.run(config, experiment.load_dataset(config), out, seeds_per_device=seeds_per_device)


def assert_runs_close(test, got, want, rows=slice(None)):
    """Equal up to float reassociation: metrics to 1e-5; information to 1/N per sample moved
    across a bin edge by a last-bit difference (none expected here, but allowed)."""
    for key in _KEYS:
        tol = 0.01 if key.startswith("i_") else 1e-5
        np.testing.assert_allclose(got[key][rows], want[key], atol=tol, rtol=0, err_msg=key)


class SeedsTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.three = _run(_config(seed=3, num_seeds=3))

    def test_row_s_equals_the_run_of_seed_k_plus_s(self):
        chex.assert_shape(self.three["i_xt_train"], (3, 3, 3))
        np.testing.assert_array_equal(self.three["seeds"], [3, 4, 5])
        for s in range(3):
            single = _run(_config(seed=3 + s, num_seeds=1))
            assert_runs_close(self, self.three, {k: v[0] for k, v in single.items() if k in _KEYS}, rows=s)
        self.assertFalse(np.allclose(self.three["train_loss"][0], self.three["train_loss"][1]))

    def test_groups_and_padding_change_nothing(self):
        grouped = _run(_config(seed=3, num_seeds=3), seeds_per_device=2)  # 2 groups of 2, one seed padded
        chex.assert_shape(grouped["train_loss"], (3, 20))
        assert_runs_close(self, grouped, self.three)

    def test_per_seed_labels(self):
        config = _config(num_seeds=2, random_labels=True, per_seed_labels=True)
        dataset = experiment.load_dataset(config)
        y0, y1 = (experiment.seed_labels(config, dataset, s) for s in (0, 1))
        self.assertGreater(np.mean(y0 != y1), 0.3)
        np.testing.assert_array_equal(np.bincount(y0), np.bincount(dataset.y_train))  # a permutation
        both = _run(config)
        single = _run(_config(seed=1, num_seeds=1, random_labels=True, per_seed_labels=True))
        assert_runs_close(self, both, {k: v[0] for k, v in single.items() if k in _KEYS}, rows=1)

    def test_rows_of_a_sweep_equal_single_condition_runs(self):
        """Conditions x seeds as one program: row r equals the run of its condition and seed
        alone (labels and inputs drawn the same way)."""
        conditions = ("true", "labels:0.5", "permuted", "shuffled_pixels", "gaussian")
        sweep = _run(_config(conditions=conditions, seed=3, num_seeds=2), seeds_per_device=4)
        np.testing.assert_array_equal(
            sweep["condition"], np.repeat(["true", "labels", "permuted", "shuffled_pixels", "gaussian"], 2)
        )
        np.testing.assert_array_equal(sweep["corruption"], np.repeat([0.0, 0.5, 0.0, 0.0, 0.0], 2))
        np.testing.assert_array_equal(sweep["seed"], np.tile([3, 4], 5))
        chex.assert_shape([sweep["i_xt_train"], sweep["i_ty_test"]], (10, 3, 3))
        chex.assert_shape(sweep["epochs_to_fit"], (10,))
        singles = {
            1: _config(seed=4, num_seeds=1),
            2: _config(seed=3, num_seeds=1, label_corruption=0.5),
            5: _config(seed=4, num_seeds=1, random_labels=True),
            6: _config(seed=3, num_seeds=1, conditions=("shuffled_pixels",)),
            9: _config(seed=4, num_seeds=1, conditions=("gaussian",)),
        }
        for row, config in singles.items():
            single = _run(config)
            assert_runs_close(self, sweep, {k: v[0] for k, v in single.items() if k in _KEYS}, rows=row)
        self.assertGreater(np.abs(sweep["train_loss"][0] - sweep["train_loss"][2]).max(), 1e-3)  # labels differ

    def test_epochs_to_fit(self):
        acc = np.array([[0.5, 0.99, 1.0], [0.5, 0.6, 0.7], [0.2, 0.3, 0.98]])
        np.testing.assert_array_equal(experiment.epochs_to_fit(acc, np.array([1.0, 0.8, 0.995]), 0.99), [1, -1, 3])

    def test_bad_conditions(self):
        for conditions, message in (
            (("true", "true"), "twice"),
            (("labels",), "probability"),
            (("labels:1.5",), "in \\(0, 1\\]"),
            (("noise",), "unknown condition"),
            (("gaussian:0.5",), "no level"),
        ):
            with self.assertRaisesRegex(experiment.errors.ConfigError, message):
                _config(conditions=conditions)
        with self.assertRaisesRegex(experiment.errors.ConfigError, "not both"):
            _config(conditions=("true",), random_labels=True)
        with self.assertRaisesRegex(experiment.errors.ConfigError, "fit_threshold"):
            _config(fit_threshold=0.0)

    def test_per_seed_labels_need_random_labels(self):
        with self.assertRaisesRegex(experiment.errors.ConfigError, "per_seed_labels"):
            _config(per_seed_labels=True)


if __name__ == "__main__":
    absltest.main()
