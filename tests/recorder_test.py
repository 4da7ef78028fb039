"""Tests of Recorder: one's own training loop into the results contract."""

import dataclasses
import os
import tempfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from ib_jax import capture, errors, estimators, outcome, plotting, recorder, results
from tests.capture_test import LAYERS, _setup


@dataclasses.dataclass(frozen=True)
class _Decoder(estimators.Estimator):
    """An I(T;Y)-only estimator with a diagnostic, as the probe is, but cheap: I(T;Y) is the mean
    activation, the diagnostic its maximum."""

    extras = ("peak",)
    measures_xt = False

    @property
    def name(self) -> str:
        return "decoder"

    def layer_information(self, acts_BxNxD, labels, num_classes, exact):
        mean, peak = jnp.mean(acts_BxNxD, axis=(1, 2)), jnp.max(acts_BxNxD, axis=(1, 2))
        return jnp.full_like(mean, jnp.nan), mean.astype(jnp.float32), {"peak": peak.astype(jnp.float32)}


class RecorderTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model, cls.variables, cls.x, cls.y = _setup()

    def _acts(self, scale):
        v = jax.tree.map(lambda a: a * scale, self.variables)
        return capture.apply(self.model, v, self.x, layers=LAYERS)[1]

    def test_results_load_plot_and_equal_a_direct_measurement(self):
        out = tempfile.mkdtemp()
        rec = recorder.Recorder(
            out, num_classes=4, layer_names=LAYERS, estimators=("binned", "kde_upper"), name="cnn", config={"lr": 0.1}
        )
        test_y = (self.y + 1) % 4
        for epoch, scale in ((0, 1.0), (5, 2.0), (10, 3.0)):
            acts = self._acts(scale)
            rec.record(epoch, (acts, self.y), (acts, test_y))
            rec.log(epoch, train_loss=1.0 / (epoch + 1), train_accuracy=0.5)
        paths = rec.save(complete=True, figures=True)
        res = results.load_results(out)
        np.testing.assert_array_equal(res["mi_epochs"], [0, 5, 10])
        self.assertEqual([str(e) for e in res["estimators"]], ["binned", "kde_upper"])
        self.assertEqual([str(n) for n in res["layer_names"]], list(LAYERS))
        np.testing.assert_array_equal(res["layer_widths"], [48, 5, 4, 4])
        chex.assert_shape([res["i_xt_train"], res["kde_upper.i_ty_test"]], (1, 3, 4))
        chex.assert_shape(res["train_loss"], (1, 11))
        self.assertTrue(np.isnan(res["test_loss"]).all())
        np.testing.assert_allclose(res["final_train_loss"], [1.0 / 11], rtol=1e-6)  # the last logged
        self.assertEqual((int(res["n_train"]), float(res["h_y_train"]), bool(res["complete"])), (32, 2.0, True))
        acts = self._acts(2.0)
        for name, key, labels in (("binned", "i_xt_train", self.y), ("kde_upper", "i_ty_test", test_y)):
            estimator = estimators.by_name(name, binning=recorder.DEFAULT_BINNING, noise_variance=0.1, num_bins=30)
            i_xt, i_ty = estimators.information_plane(acts, labels, estimator=estimator)
            np.testing.assert_allclose(res[f"{name}.{key}"][0, 1], i_xt if key.startswith("i_xt") else i_ty, rtol=1e-6)
        np.testing.assert_array_equal(res["i_xt_train"], res["binned.i_xt_train"])
        config = results.load_config(out)
        self.assertEqual(
            (config["config"]["lr"], config["name"], config["estimators"][1]["noise_variance"]), (0.1, "cnn", 0.1)
        )
        for name in (
            "information_plane.png",
            "information_per_layer.png",
            "training.png",
            "information_plane_estimators_train.png",
        ):
            self.assertIn(out + "/" + name, [str(p) for p in paths])
            self.assertGreater(os.path.getsize(f"{out}/{name}"), 10_000)
        plotting.headline_figure([res, res], ["a", "b"], f"{out}/headline.png")

    def test_an_estimator_of_i_ty_only_with_diagnostics(self):
        out = tempfile.mkdtemp()
        rec = recorder.Recorder(out, num_classes=4, layer_names=LAYERS, estimators=(_Decoder(), "binned"))
        for epoch, scale in ((0, 1.0), (5, 2.0)):
            acts = self._acts(scale)
            rec.record(epoch, (acts, self.y), ([2.0 * a for a in acts], self.y))
            rec.log(epoch, train_loss=1.0)
        rec.save(complete=True)
        res = results.load_results(out)
        self.assertTrue(np.isnan(res["decoder.i_xt_train"]).all())
        self.assertEqual(str(res["plane_x"]), "binned")
        for split, factor in (("train", 1.0), ("test", 2.0)):
            for e, scale in enumerate((1.0, 2.0)):
                for layer, acts in enumerate(self._acts(scale)):
                    want = (float(jnp.mean(acts)) * factor, float(jnp.max(acts)) * factor)
                    got = (res[f"decoder.i_ty_{split}"][0, e, layer], res[f"decoder.peak_{split}"][0, e, layer])
                    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        view = results.estimator_view(res, "decoder")
        np.testing.assert_array_equal(view["i_xt_test"], res["binned.i_xt_test"])
        self.assertEqual(view["i_xt_by"], "binned")

    def test_bootstrap_and_null_are_written_as_the_mains_write_them(self):
        out = tempfile.mkdtemp()
        rec = recorder.Recorder(
            out, num_classes=4, layer_names=LAYERS, estimators=(_Decoder(), "binned"), bootstrap=3, null_permutations=3
        )
        acts = self._acts(1.0)
        rec.record(0, (acts, self.y), (acts, self.y))
        rec.log(0, train_loss=1.0)
        rec.save(complete=True)
        res = results.load_results(out)
        self.assertTrue(np.isnan(res["decoder.i_xt_train_se"]).all())  # it measures I(T;Y) only
        for key in ("decoder.i_ty_train_se", "binned.i_xt_test_se", "binned.i_ty_train_null_p95"):
            chex.assert_shape(res[key], (1, 1, 4))
            self.assertTrue(np.isfinite(res[key]).all(), msg=key)
        view = results.estimator_view(res, "decoder")  # its planes take binned's I(X;T) and its errors
        np.testing.assert_array_equal(view["i_xt_train_se"], res["binned.i_xt_train_se"])
        with self.assertRaisesRegex(errors.ConfigError, "bootstrap must be 0"):
            recorder.Recorder(tempfile.mkdtemp(), num_classes=4, bootstrap=1)

    def test_a_logged_non_finite_loss_is_divergence_an_unlogged_epoch_is_not(self):
        """A Recorder's curves hold NaN where nothing was logged: only a logged NaN or infinite
        training loss marks a row diverged. A complete save removes the lock file; a run without a
        name titles its figures by the split alone."""
        out = tempfile.mkdtemp()
        rec = recorder.Recorder(out, num_classes=4, layer_names=LAYERS)
        acts = self._acts(1.0)
        rec.record(0, (acts, self.y), (acts, self.y))
        rec.log(2, train_loss=1.0)  # epochs 0, 1 and 3 unlogged
        res = rec.results()
        np.testing.assert_array_equal(res["diverged_epoch"], [-1])
        self.assertEqual(outcome.run_status({**res, "complete": True}), "")
        self.assertTrue(plotting.plane.plane_title(res, "", "train").startswith("[unfinished: 3 epochs] — train"))
        rec.log(4, train_loss=float("inf"))
        rec.record(5, (acts, self.y), (acts, self.y))
        rec.save(complete=True)
        res = results.load_results(out)
        np.testing.assert_array_equal(res["diverged_epoch"], [4])
        self.assertEqual(outcome.run_status(res), "diverged at epoch 4")
        self.assertFalse(os.path.exists(os.path.join(out, ".lock")))
        with self.assertRaisesRegex(
            errors.ConfigError, "diverged at epoch 4: it cannot be resumed; pass overwrite=True"
        ):
            recorder.Recorder(out, num_classes=4)

    def test_measure_inside_jit_equals_record(self):
        """The pure `measure` inside the user's jitted function, then `add`, writes the same as
        `record`; rows: activations [S, N, D] with per-row labels."""
        folders = [tempfile.mkdtemp(), tempfile.mkdtemp()]
        recs = [recorder.Recorder(f, num_classes=4, estimators=("binned",)) for f in folders]
        rows = [jnp.stack([a, 2 * a]) for a in self._acts(1.0)]  # two rows
        labels = jnp.stack([self.y, (self.y * 3) % 4])

        @jax.jit
        def step(rows, labels):
            return recs[0].measure((rows, labels), (rows, labels))

        recs[0].add(3, step(rows, labels))
        recs[1].record(3, (rows, labels), (rows, labels))
        got, want = (results.load_results(r.out) for r in recs if r.save())
        chex.assert_trees_all_close(got["i_xt_train"], want["i_xt_train"])
        chex.assert_shape(got["i_xt_train"], (2, 1, 4))
        np.testing.assert_array_equal(got["seed"], [0, 1])
        self.assertFalse(np.allclose(got["i_xt_train"][0], got["i_xt_train"][1]))

    def test_bad_use_is_a_clear_error(self):
        out = tempfile.mkdtemp()
        rec = recorder.Recorder(out, num_classes=4, layer_names=LAYERS)
        acts = self._acts(1.0)
        with self.assertRaisesRegex(ValueError, "nothing recorded"):
            rec.save()
        with self.assertRaisesRegex(ValueError, "train: .*>= num_classes"):
            rec.record(0, (acts, self.y + 4), (acts, self.y))
        with self.assertRaisesRegex(ValueError, "2 layer_names|4 layer_names"):
            rec.record(0, (acts[:2], self.y), (acts[:2], self.y))
        rec.record(1, (acts, self.y), (acts, self.y))
        with self.assertRaisesRegex(ValueError, "not after"):
            rec.record(1, (acts, self.y), (acts, self.y))
        with self.assertRaisesRegex(ValueError, "unknown metrics"):
            rec.log(0, loss=1.0)
        for kwargs, message in (
            ({"estimators": ("kde",)}, "unknown estimator"),
            ({"num_classes": 0}, "num_classes"),
            ({"estimators": ("binned", "binned")}, "distinct"),
        ):
            with self.assertRaisesRegex(errors.ConfigError, message):
                recorder.Recorder(tempfile.mkdtemp(), **{"num_classes": 4, **kwargs})
        rec.save(complete=True)
        with self.assertRaisesRegex(errors.ConfigError, "finished run; pass overwrite=True to replace it$"):
            recorder.Recorder(out, num_classes=4)  # the keyword, not the mains' --overwrite


if __name__ == "__main__":
    absltest.main()
