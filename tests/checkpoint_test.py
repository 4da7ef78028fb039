"""Tests of the checkpoint: states and the record round-trip exactly; a corrupt file or one of
other settings is refused in one line."""

import dataclasses
import json
import pathlib
import tempfile

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from ib_jax import checkpoint, errors, sharding


class CheckpointTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.msgpack"
        self.states = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.array([3, 4])}
        self.sharding = sharding.layout(2).sharding
        rng = np.random.default_rng(0)
        self.record = checkpoint.Record(
            epoch=7,
            metrics=[rng.normal(size=(4, 2)).astype(np.float32) for _ in range(7)],
            mi=[rng.normal(size=(3, 4, 2, 5)).astype(np.float32) for _ in range(2)],
            grads=[rng.normal(size=(3, 2, 5)).astype(np.float32) for _ in range(2)],
        )

    def test_round_trip(self):
        checkpoint.save(self.path, "{settings}", self.states, self.record)
        template = {"w": jnp.zeros((2, 3)), "step": jnp.zeros(2, jnp.int32)}
        seen = []
        states, record = checkpoint.load(self.path, lambda *saved: seen.append(saved), template, self.sharding)
        self.assertEqual(seen, [("{settings}", 7)])  # the check sees the saved settings and epoch
        chex.assert_trees_all_equal(states, self.states)
        self.assertEqual(record.epoch, 7)
        for got, want in (
            (record.metrics, self.record.metrics),
            (record.mi, self.record.mi),
            (record.grads, self.record.grads),
        ):
            np.testing.assert_array_equal(np.stack(got), np.stack(want))
        np.testing.assert_array_equal(record.information(3, 2, 5), np.stack(self.record.mi, axis=3))
        chex.assert_shape(record.metric_curves(2), (4, 2, 7))

    def test_empty_record_has_empty_arrays(self):
        empty = checkpoint.Record()
        chex.assert_shape(
            [empty.information(3, 2, 5), empty.metric_curves(2), empty.gradients(2, 5)],
            [(3, 4, 2, 0, 5), (4, 2, 0), (3, 2, 0, 5)],
        )

    def test_refusing_check_and_corrupt_files(self):
        checkpoint.save(self.path, "{settings}", self.states, self.record)

        def refuse(saved, epoch):
            raise errors.ConfigError(f"other settings than {saved} at epoch {epoch}")

        with self.assertRaisesRegex(errors.ConfigError, "other settings than {settings} at epoch 7"):
            checkpoint.load(self.path, refuse, self.states, self.sharding)
        self.path.write_bytes(self.path.read_bytes()[:40])
        with self.assertRaisesRegex(errors.DataError, "is corrupt"):
            checkpoint.load(self.path, lambda *_: None, self.states, self.sharding)


if __name__ == "__main__":
    absltest.main()


class RecordChannelsTest(chex.TestCase):
    def test_epochs_measured_before_channels_were_added_read_nan_there(self):
        """A checkpoint of an older ib_jax holds fewer channels per measured epoch (say, before
        the convergence channels): resumed, those epochs read NaN in the channels added since."""
        old, new = np.ones((3, 4, 2, 5), np.float32), np.full((6, 4, 2, 5), 2.0, np.float32)
        information = checkpoint.Record(mi=[old, new]).information(6, 2, 5)
        chex.assert_shape(information, (6, 4, 2, 2, 5))
        np.testing.assert_array_equal(information[:3, :, :, 0], old)
        self.assertTrue(np.isnan(information[3:, :, :, 0]).all())
        np.testing.assert_array_equal(information[:, :, :, 1], new)


class ContinuationTest(chex.TestCase):
    def test_a_folder_written_before_a_setting_existed_continues_at_its_default(self):
        from ib_jax import config as config_lib  # pylint: disable=g-import-not-at-top

        config = config_lib.ExperimentConfig(epochs=10)
        saved = json.loads(json.dumps(config.to_dict()))  # as config.json keeps it
        del saved["train"]["layer_noise"], saved["sliced_slices"]  # an older version's config.json
        checkpoint.check_continuation(saved, config, 5, "old")
        noisy = dataclasses.replace(config, train=dataclasses.replace(config.train, layer_noise="additive:0.1"))
        with self.assertRaisesRegex(errors.ConfigError, r"train.layer_noise: none in the folder, additive:0.1 now"):
            checkpoint.check_continuation(saved, noisy, 5, "old")
