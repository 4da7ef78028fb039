"""Tests of the embedded 12-bit task and its split."""

import chex
import numpy as np
import scipy.io
from absl.testing import absltest

from ib_jax import data, errors, tishby
from tests import testing


def _entropy_bits(labels):
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


class TishbyTest(chex.TestCase):
    def test_embedded_data_equals_var_u_mat(self):
        testing.require_data()
        mat = scipy.io.loadmat(testing.VAR_U_MAT)
        patterns, labels = tishby.patterns_and_labels()
        np.testing.assert_array_equal(patterns, mat["F"])
        np.testing.assert_array_equal(labels, mat["y"][0])

    def test_known_statistics(self):
        _, labels = tishby.patterns_and_labels()
        self.assertEqual(labels.sum(), 2118)
        self.assertAlmostEqual(_entropy_bits(labels), 0.999157, places=5)

    def test_split_is_shuffled_seeded_and_complete(self):
        ds = data.load_tishby(test_fraction=0.2, seed=0)
        chex.assert_shape(ds.x_train, (3277, 12))
        chex.assert_shape(ds.x_test, (819, 12))
        both = np.concatenate([ds.x_train, ds.x_test]).astype(int)
        codes = both @ (1 << np.arange(11, -1, -1))
        np.testing.assert_array_equal(np.sort(codes), np.arange(4096))
        # Shuffled: both splits near the overall p(y=1) = 0.517 (unshuffled: 0.437 vs 0.836).
        self.assertAlmostEqual(ds.y_train.mean(), 0.517, delta=0.03)
        self.assertAlmostEqual(ds.y_test.mean(), 0.517, delta=0.05)
        np.testing.assert_array_equal(ds.y_train, data.load_tishby(0.2, seed=0).y_train)
        self.assertFalse(np.array_equal(ds.y_train, data.load_tishby(0.2, seed=1).y_train))

    def test_no_split_uses_all_patterns_twice(self):
        ds = data.load_tishby(test_fraction=0.0)
        chex.assert_shape(ds.x_train, (4096, 12))
        np.testing.assert_array_equal(ds.y_train, ds.y_test)

    def test_bad_fraction(self):
        with self.assertRaisesRegex(errors.ConfigError, "test_fraction"):
            data.load_tishby(test_fraction=1.0)


if __name__ == "__main__":
    absltest.main()
