"""Tests of the figures: every figure of a run, of a sweep and of the dynamics is written as a
readable PNG (or GIF) of the expected size, from results built by the one writer."""

import io
import pathlib
import tempfile
from unittest import mock

import chex
import matplotlib.cm
import matplotlib.figure
import numpy as np
import PIL.Image
from absl.testing import absltest, parameterized

from ib_jax import plotting, results
from ib_jax.plotting import sweep
from tests import testing


def _results(rows=2, epochs=4, layers=3, estimators=("binned", "kde_upper"), conditions=None):
    grads = np.random.default_rng(1).uniform(0.1, 2.0, (3, rows, epochs, layers)).astype(np.float32)
    grads[:2, :, -1] = np.nan  # no epoch is trained from the final network
    return testing.synthetic_results(
        rows=rows,
        epochs=epochs,
        layers=layers,
        steps=10,
        estimators=estimators,
        conditions=conditions,
        fit_threshold=0.99 if conditions else None,
        gradients=grads,
        final_metrics=np.ones((4, rows), np.float32),
    )


class RunFiguresTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(tempfile.mkdtemp())

    def _assert_images(self, paths, min_size=(400, 300)):
        self.assertNotEmpty(paths)
        for path in paths:
            with PIL.Image.open(path) as image:
                self.assertGreaterEqual(image.size, min_size, path.name)

    def test_every_run_figure(self):
        paths = plotting.save_run_figures(_results(), self.tmp, "a run")
        names = [p.name for p in paths]
        self.assertEqual(
            names,
            [
                "information_plane.png",
                "information_per_layer.png",
                "training.png",
                "gradients.png",
                "information_plane_estimators_train.png",
                "information_plane_estimators_test.png",
                "information_per_layer_estimators.png",
            ],
        )
        self._assert_images(paths)

    def test_one_estimator_and_no_gradients(self):
        res = {k: v for k, v in _results(estimators=("binned",)).items() if k not in results.GRADIENT_KEYS}
        self.assertEqual([p.name for p in plotting.save_run_figures(res, self.tmp)][-1], "training.png")

    def test_short_runs_draw_every_figure_or_say_why_not(self):
        """1, 2 and 3 measured epochs (a run of --epochs 100 measures 0 and 100 only, and the
        final network has no gradient statistics): every figure draws, or is skipped with a reason."""
        for epochs in (1, 2, 3):
            res = _results(epochs=epochs)
            paths = plotting.save_run_figures(res, self.tmp, "short")
            self._assert_images(paths)
            drawn = "gradients.png" in [p.name for p in paths]
            self.assertEqual(drawn, epochs >= 3, epochs)  # epoch 0 and the final one cannot be shown
            self.assertEqual(not drawn, "gradients.png" in plotting.skipped_figures(res))

    def test_animation_has_a_frame_per_epoch(self):
        paths = plotting.save_animations(_results(epochs=5), self.tmp)
        with PIL.Image.open(paths[0]) as gif:
            self.assertEqual(gif.n_frames, 5)

    def test_compare_and_grid(self):
        runs = [_results(), _results(rows=1)]
        plotting.compare_figure(runs, ["a", "b"], self.tmp / "compare.png")
        plotting.estimators_grid_figure(runs, ["a", "b"], ["binned", "kde_upper"], "test", self.tmp / "grid.png")
        plotting.headline_figure(runs, ["true", "random"], self.tmp / "headline.png")
        self._assert_images([self.tmp / n for n in ("compare.png", "grid.png", "headline.png")])

    def test_layer_labels(self):
        res = _results()
        self.assertEqual(plotting.layer_label(res, 1), "layer 2 (4)")
        self.assertEqual(plotting.layer_label({**res, "layer_names": np.array(["a", "conv", "c"])}, 1), "conv (4)")


class SweepFiguresTest(chex.TestCase):
    def test_every_sweep_figure(self):
        conditions = [("true", 0.0)] * 2 + [("labels", 0.5)] * 2 + [("permuted", 0.0)] * 2
        paths = plotting.save_sweep_figures(_results(rows=6, conditions=conditions), tempfile.mkdtemp(), "sweep")
        self.assertEqual(
            [p.name for p in paths],
            [
                "zhang.png",
                "information_plane_conditions_train.png",
                "information_plane_conditions_test.png",
                "headline.png",
            ],
        )
        for path in paths:
            with PIL.Image.open(path) as image:
                self.assertGreaterEqual(image.size, (400, 300))

    def test_condition_planes_have_the_layer_key(self):
        conditions = [("true", 0.0), ("permuted", 0.0)]
        with mock.patch.object(sweep, "layer_key", wraps=sweep.layer_key) as key:
            sweep.conditions_plane_figure(_results(conditions=conditions), pathlib.Path(tempfile.mkdtemp()) / "c.png")
        key.assert_called_once()

    def test_zhang_right_axis_maps_the_true_labels_epochs_to_one(self):
        """Panel (b)'s right axis reads 1.0 at the true labels' mean epochs-to-fit, also when a
        later dashed line (permuted labels, fitted much later) stretches the left axis."""
        conditions = [("true", 0.0)] * 2 + [("labels", 0.5)] * 2 + [("permuted", 0.0)] * 2
        res = _results(rows=6, conditions=conditions)
        res["epochs_to_fit"] = np.array([40, 42, 60, 70, 400, 420], res["epochs_to_fit"].dtype)
        fig = matplotlib.figure.Figure()
        ax = fig.subplots()
        rel = sweep._fit_panel(ax, sweep._condition_views(res), matplotlib.cm.tab10(np.arange(10)), 0.99)
        fig.savefig(io.BytesIO(), format="png")  # draw: limits settle
        self.assertGreater(ax.get_ylim()[1], 400)  # stretched by the permuted line
        np.testing.assert_allclose(rel.get_ylim(), np.array(ax.get_ylim()) / 41.0, rtol=1e-6)


if __name__ == "__main__":
    absltest.main()
