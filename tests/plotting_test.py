"""Tests of the figures: every figure of a run, of a sweep and of the dynamics is written as a
readable PNG (or GIF) of the expected size, from results built by the one writer."""

import io
import pathlib
import tempfile
import warnings
from unittest import mock

import chex
import matplotlib.cm
import matplotlib.figure
import numpy as np
import PIL.Image
from absl.testing import absltest, parameterized

from ib_jax import outcome, plotting, results
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
        for epochs in (1, 2, 3, 4):
            res = _results(epochs=epochs)
            paths = plotting.save_run_figures(res, self.tmp, "short")
            self._assert_images(paths)
            drawn = "gradients.png" in [p.name for p in paths]
            self.assertEqual(drawn, epochs >= 4, epochs)  # not epoch 0 nor the final one, and two are needed
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


def _drawn(draw, *args, **kwargs) -> matplotlib.figure.Figure:
    """The figure `draw(*args, path)` saves, caught at `savefig` (nothing is written)."""
    with mock.patch.object(matplotlib.figure.Figure, "savefig", autospec=True) as save:
        draw(*args, pathlib.Path(tempfile.mkdtemp()) / "f.png", **kwargs)
    return save.call_args[0][0]


def _legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


class FigureContentTest(chex.TestCase):
    """What a reader sees: keys, titles, layouts, and no warning from numpy or matplotlib."""

    def test_runs_with_other_layers_each_get_their_own_key(self):
        small, wide = _results(layers=2), _results(layers=3)
        wide["layer_names"] = np.array(["conv1", "conv2", "logits"])
        fig = _drawn(plotting.compare_figure, [small, wide], ["mlp", "cnn"])
        keys = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        self.assertLen(keys, 2)
        self.assertEqual(_legend_texts(keys[1])[0][:11], "conv1 (8)")  # the second run's own names and widths
        self.assertLen(_legend_texts(keys[0]), 2)
        same = _drawn(plotting.compare_figure, [small, small], ["a", "b"])  # the same layers: one key below
        self.assertEqual([ax.get_legend() for ax in same.axes if ax.get_legend() is not None], [])
        self.assertLen(same.legends, 1)
        grid = _drawn(plotting.estimators_grid_figure, [small, wide], ["mlp", "cnn"], ["binned"], "train")
        self.assertLen([ax for ax in grid.axes if ax.get_legend() is not None], 2)

    def test_a_layer_at_log2_n_says_so_in_the_key(self):
        res = _results(rows=1, layers=2)
        res["i_xt_train"][:, :, 0] = res["binned.i_xt_train"][:, :, 0] = np.log2(16)
        res.pop("binned.saturated")  # computed from the values
        texts = _legend_texts(_drawn(plotting.plane_figure, res).legends[0])
        self.assertEqual(texts, ["layer 1 (8), at log2 N: train", "layer 2 (4)"])

    def test_titles_name_the_run_and_what_is_not_whole(self):
        res = _results()
        self.assertEqual(plotting.plane.plane_title(res, "", "train"), "train (N = 16, mean of 2 seeds)")
        partial = {**res, "complete": False, "epochs": 300}
        self.assertEqual(plotting.plane.run_title(partial, "mine"), "mine [unfinished: 10 of 300 epochs]")

    def test_per_estimator_curves_a_column_per_estimator(self):
        res = _results(estimators=("binned", "kde_upper", "kde_lower"))
        fig = _drawn(plotting.estimators_layers_figure, res)
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
        self.assertEqual(len(visible), 6)
        columns = {ax.get_title(): round(ax.get_position().x0, 2) for ax in visible}
        for estimator in ("binned", "kde_upper", "kde_lower"):  # train above test, in one column
            self.assertEqual(columns[f"{estimator}, train"], columns[f"{estimator}, test"])
        self.assertLen(set(columns.values()), 3)
        self.assertLen(fig.legends, 1)  # one key below, not in one panel

    def test_a_sweep_is_never_drawn_as_one_run(self):
        res = _results(rows=4, conditions=[("true", 0.0)] * 2 + [("permuted", 0.0)] * 2)
        with self.assertRaisesRegex(results.errors.DataError, "sweep of 2 conditions"):
            plotting.save_run_figures(res, tempfile.mkdtemp())
        with self.assertRaisesRegex(results.errors.DataError, "never averaged"):
            plotting.compare_figure([res, _results()], ["sweep", "run"], pathlib.Path(tempfile.mkdtemp()) / "c.png")
        one = outcome.select_condition(res, "permuted")
        self.assertEqual(
            [p.name for p in plotting.save_run_figures(one, tempfile.mkdtemp(), suffix="-permuted")][0],
            "information_plane-permuted.png",
        )

    def test_no_warning_from_any_figure_of_odd_runs(self):
        """Diverged (NaN from an epoch on), unfinished, one measured epoch, a sweep where no row
        fitted: every figure draws without a numpy or matplotlib warning."""
        diverged = _results(rows=2, epochs=4)
        for key in (*results.MI_KEYS, "binned.i_xt_train", "train_loss", *results.GRADIENT_KEYS):
            diverged[key] = diverged[key].copy()
            diverged[key][1, 2:] = np.nan
        runs = [diverged, {**_results(epochs=1), "complete": False, "epochs": 100}, _results(epochs=2)]
        sweep_res = _results(rows=4, conditions=[("true", 0.0)] * 2 + [("labels", 1.0)] * 2)
        sweep_res["epochs_to_fit"] = np.full(4, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for res in runs:
                plotting.save_run_figures(res, tempfile.mkdtemp(), "odd")
                plotting.save_animations(res, tempfile.mkdtemp(), "odd")
            plotting.compare_figure(runs, ["a", "b", "c"], pathlib.Path(tempfile.mkdtemp()) / "c.png")
            plotting.save_sweep_figures(sweep_res, tempfile.mkdtemp(), "nothing fitted")
        panel = _drawn(plotting.zhang_figure, sweep_res).axes[1]
        self.assertIn("no row reached 99% train accuracy\n(4 rows)", [t.get_text() for t in panel.texts])
        self.assertEqual(panel.get_xlim(), (-0.05, 1.05))


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
