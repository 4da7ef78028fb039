"""Tests of the results contract: the one writer (`build_results`) the runner and Recorder share,
reading with its checks, views of estimators and rows, and the sweep summary."""

import json
import pathlib
import tempfile

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import errors, estimators, outcome, recorder, results, tidy
from tests import testing

# Keys only a run of the mains writes: its rows' conditions and the gradient statistics.
_RUNNER_ONLY = {"condition", "corruption", "epochs_to_fit", "fit_threshold", "epochs", *results.GRADIENT_KEYS}


def _synthetic(**changes):
    return testing.synthetic_results(**changes)


class BuildResultsTest(chex.TestCase):
    def test_keys_shapes_and_the_main_estimator(self):
        information = np.random.default_rng(1).uniform(0, 3, (2, 4, 2, 3, 2)).astype(np.float32)
        res = _synthetic(information=information)
        chex.assert_shape([res[k] for k in results.MI_KEYS], (2, 3, 2))
        chex.assert_shape([res[k] for k in results.METRICS], (2, 5))
        for key in results.MI_KEYS:
            np.testing.assert_array_equal(res[key], res[f"binned.{key}"])
        np.testing.assert_array_equal(res["kde_upper.i_ty_test"], information[1, 3])  # [M, 4, R, E, L] order
        np.testing.assert_array_equal(res["i_xt_test"], information[0, 2])
        self.assertEqual(res["contract"], results.CONTRACT)
        self.assertEqual(set(res) & _RUNNER_ONLY, set())  # optional parts absent unless given
        self.assertNotIn("final_train_loss", res)

    def test_epochs_to_fit_from_the_curves_and_the_final_network(self):
        metrics = np.zeros((4, 3, 4), np.float32)
        metrics[1] = [[0.1, 0.5, 0.99, 1.0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]]
        final = np.zeros((4, 3), np.float32)
        final[1] = [1.0, 0.995, 0.5]
        res = _synthetic(
            rows=3,
            metrics=metrics,
            final_metrics=final,
            seeds=np.arange(3),
            h_y_train_rows=np.ones(3),
            information=np.zeros((2, 4, 3, 3, 2), np.float32),
            conditions=[("true", 0.0), ("labels", 0.5), ("permuted", 0.0)],
            fit_threshold=0.99,
        )
        np.testing.assert_array_equal(res["epochs_to_fit"], [2, 4, -1])  # 4: the final network
        np.testing.assert_array_equal(res["corruption"], [0.0, 0.5, 0.0])
        np.testing.assert_array_equal(res["final_train_accuracy"], final[1])

    def test_a_run_and_a_recorder_agree_on_names_dtypes_and_shapes(self):
        """The runner and Recorder write one contract: a Recorder of the same rows, epochs,
        layers and estimators gives every key of a tiny run but the runner-only ones, with the
        same dtype kinds and shapes."""
        _, run = testing.tiny_run()
        rng = np.random.default_rng(0)
        rec = recorder.Recorder(
            pathlib.Path(tempfile.mkdtemp()) / "rec",
            num_classes=2,
            estimators=testing.TINY.estimators,
            binning=testing.TINY.binning,
            kde_noise_variance=testing.TINY.kde_noise_variance,
            adaptive_bins=testing.TINY.adaptive_bins,
        )
        y_train, y_test = rng.integers(0, 2, 512), rng.integers(0, 2, 256)
        steps = run["train_loss"].shape[1]
        for epoch in np.minimum(run["mi_epochs"], steps - 1):  # the Recorder's curves end at its last epoch
            acts = [rng.normal(size=(n, w)).astype(np.float32) for n in (512, 256) for w in run["layer_widths"]]
            x_train, x_test = rng.normal(size=(512, 12)), rng.normal(size=(256, 12))
            rec.record(int(epoch), (acts[:3], y_train, x_train), (acts[3:], y_test, x_test))
        for epoch in range(steps):
            rec.log(epoch, **{k: 0.5 for k in results.METRICS})
        own = jax.tree.map(np.asarray, rec.results(complete=True))
        self.assertEqual(set(run) - set(own), _RUNNER_ONLY)
        self.assertEqual(set(own) - set(run), set())  # both write layer_names
        for key in set(run) & set(own):
            a, b = np.asarray(run[key]), np.asarray(own[key])
            self.assertEqual((a.dtype.kind, a.shape), (b.dtype.kind, b.shape), key)


class LoadTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(tempfile.mkdtemp())

    def test_round_trip_and_views(self):
        results.save_results(self.tmp, _synthetic())
        res = results.load_results(self.tmp)
        self.assertEqual(results.estimator_names(res), ["binned", "kde_upper"])
        view = results.estimator_view(res, "kde_upper")
        np.testing.assert_array_equal(view["i_xt_train"], res["kde_upper.i_xt_train"])
        one = results.row_view(res, np.array([False, True]))
        chex.assert_shape(
            [one["i_xt_train"], one["train_loss"], one["binned.i_ty_test"]], [(1, 3, 2), (1, 5), (1, 3, 2)]
        )

    def test_bad_folders_are_one_line_errors(self):
        with self.assertRaisesRegex(errors.DataError, "no results.npz"):
            results.load_results(self.tmp)
        (self.tmp / results.RESULTS).write_bytes(b"PK not a zip")
        with self.assertRaisesRegex(errors.DataError, "unreadable"):
            results.load_results(self.tmp)
        results.save_results(self.tmp, {**_synthetic(), "contract": results.CONTRACT + 1})
        with self.assertRaisesRegex(errors.DataError, "newer"):
            results.load_results(self.tmp)
        results.save_results(self.tmp, {k: v for k, v in _synthetic().items() if k != "layer_widths"})
        with self.assertRaisesRegex(errors.DataError, "lacks layer_widths"):
            results.load_results(self.tmp)
        results.save_results(self.tmp, {**_synthetic(), "mi_epochs": np.arange(7)})
        with self.assertRaisesRegex(errors.DataError, "inconsistent"):
            results.load_results(self.tmp)

    def test_config_json_one_shape(self):
        listed = results.build_config(
            name="n", settings={"a": 1}, estimators=[estimators.KDE(0.1, "lower")], complete=True, extra=2
        )
        self.assertEqual(
            listed["estimators"],
            [{"name": "kde_lower", "type": "KDE", "noise_variance": 0.1, "bound": "lower", "mc_samples": 4, "seed": 0}],
        )
        self.assertEqual(
            (listed["config"], listed["name"], listed["complete"], listed["extra"]), ({"a": 1}, "n", True, 2)
        )
        self.assertIn("jax", listed["versions"])
        json.dumps(listed)  # serialisable


class StateAndSaturationTest(chex.TestCase):
    """What a run is (finished, unfinished, diverged) and which values sit at their ceiling,
    checked against values computed here."""

    def test_saturation_is_most_epochs_within_005_bits_of_the_ceiling(self):
        n_train, n_test, h_y = 16, 8, 1.0  # ceilings: log2 16 = 4, log2 8 = 3, H(Y) = 1
        info = np.zeros((4, 1, 4, 3))  # [MI_KEYS, R, E, L]
        info[0, 0, :, 0] = [4.0, 3.96, 3.99, 2.0]  # 3 of 4 epochs within 0.05 of 4: saturated
        info[0, 0, :, 1] = [4.0, 4.0, 3.0, 3.0]  # 2 of 4: not most
        info[3, 0, :, 2] = [1.0, 0.999, np.nan, np.nan]  # every finite epoch at H(Y) (a NaN is no epoch)
        info[2, 0, :, 2] = [2.94, 2.96, 2.97, 3.1]  # test I(X;T): 3 of 4 within 0.05 of 3
        flags = outcome.saturation(info, n_train, n_test, np.array([h_y]), h_y)
        chex.assert_shape(flags, (1, 4, 3))
        want = np.zeros((1, 4, 3), bool)
        want[0, 0, 0] = want[0, 3, 2] = want[0, 2, 2] = True
        np.testing.assert_array_equal(flags, want)
        res = _synthetic()
        np.testing.assert_array_equal(res["binned.saturated"], outcome.saturated(res, "binned"))
        older = {k: v for k, v in res.items() if not k.endswith(".saturated")}  # computed when not written
        np.testing.assert_array_equal(outcome.saturated(older, "kde_upper"), res["kde_upper.saturated"])

    def test_run_status(self):
        res = _synthetic(rows=3)
        self.assertEqual(outcome.run_status(res), "")
        self.assertEqual(outcome.run_status({**res, "complete": False, "epochs": 300}), "unfinished: 5 of 300 epochs")
        self.assertEqual(outcome.run_status({**res, "complete": False}), "unfinished: 5 epochs")
        loss = res["train_loss"].copy()
        loss[1:, 2:] = np.inf
        diverged = _synthetic(rows=3, metrics=np.stack([loss, *res["train_loss"][None].repeat(3, 0)]), complete=False)
        np.testing.assert_array_equal(diverged["diverged_epoch"], [-1, 2, 2])
        self.assertEqual(outcome.run_status(diverged), "diverged at epoch 2 (2 of 3 rows)")

    def test_conditions_are_picked_never_pooled(self):
        conditions = [("true", 0.0), ("true", 0.0), ("labels", 0.4), ("labels", 0.4)]
        res = _synthetic(rows=4, conditions=conditions)
        res["probe.accuracy_train"] = np.arange(4.0)[:, None, None] * np.ones((4, 3, 2))  # a diagnostic, per row
        with self.assertRaisesRegex(errors.DataError, r"sweep of 2 conditions \(true, labels:0.4\).*--condition"):
            outcome.single_condition(res, "runs/sweep")
        for name in ("labels:0.4", "labels p=0.4", "labels:0.40"):
            picked = outcome.select_condition(res, name)
            np.testing.assert_array_equal(picked["i_xt_train"], res["i_xt_train"][2:])
            chex.assert_shape(picked["kde_upper.saturated"], (2, 4, 2))
            np.testing.assert_array_equal(picked["probe.accuracy_train"][:, 0, 0], [2.0, 3.0])
        with self.assertRaisesRegex(errors.DataError, "has no condition 'gaussian'; it has true, labels:0.4"):
            outcome.select_condition(res, "gaussian")
        outcome.single_condition(outcome.select_condition(res, "true"))


class TidyTableTest(chex.TestCase):
    def test_records_against_the_arrays(self):
        res = _synthetic(rows=2, epochs=3, layers=2, steps=5, final_metrics=np.full((4, 2), 0.25, np.float32))
        res["layer_names"] = np.array(["conv", "logits"])
        table = tidy.records(res, "runs/a")
        self.assertLen(table, 2 * 2 * 2 * 3 * 2)  # estimators x rows x splits x epochs x layers
        self.assertEqual(table.dtype.names, tuple(name for name, _ in tidy.RECORD_FIELDS))
        one = table[
            (table["estimator"] == "kde_upper")
            & (table["row"] == 1)
            & (table["split"] == "test")
            & (table["epoch"] == res["mi_epochs"][1])
            & (table["layer"] == 2)
        ]
        self.assertLen(one, 1)
        one = one[0]
        self.assertEqual((one["run"], one["layer_name"], one["width"], one["n"]), ("runs/a", "logits", 4, 8))
        self.assertAlmostEqual(one["i_xt"], float(res["kde_upper.i_xt_test"][1, 1, 1]), places=6)
        self.assertAlmostEqual(one["i_ty"], float(res["kde_upper.i_ty_test"][1, 1, 1]), places=6)
        epoch = int(res["mi_epochs"][1])  # the network entering that epoch
        self.assertAlmostEqual(one["accuracy"], float(res["test_accuracy"][1, epoch]), places=6)
        last = table[(table["epoch"] == 5) & (table["split"] == "train")]  # the final network's metrics
        np.testing.assert_allclose(last["loss"], 0.25)

    def test_csv_and_dataframe(self):
        tmp = pathlib.Path(tempfile.mkdtemp())
        for name, rows in (("a", 1), ("b", 2)):
            results.save_results(tmp / name, _synthetic(rows=rows))
        tables = [results.to_records(tmp / name) for name in ("a", "b")]
        tidy.write_csv(tmp / "t.csv", tables)
        lines = (tmp / "t.csv").read_text().splitlines()
        self.assertEqual(lines[0].split(","), [name for name, _ in tidy.RECORD_FIELDS])
        self.assertLen(lines, 1 + len(tables[0]) + len(tables[1]))
        frame = results.to_dataframe(tmp / "b")  # pandas: a test dependency, optional for users
        self.assertEqual(len(frame), len(tables[1]))
        self.assertAlmostEqual(frame["i_xt"].sum(), tables[1]["i_xt"].sum(), places=6)


class SummaryTest(chex.TestCase):
    def test_table_per_condition(self):
        keys = ("condition", "corruption", "seed", "epochs_to_fit", "train_accuracy", "test_accuracy")
        values = (("true", 0.0, 0, 10, 1.0, 0.8), ("true", 0.0, 1, 20, 1.0, 0.9), ("labels", 0.5, 0, None, 0.5, 0.1))
        rows = [dict(zip(keys, v)) for v in values]
        table = outcome.summary_table(rows)
        self.assertIn("| true | 2/2 | 15 ± 5 | 1.000 ± 0.000 | 0.850 ± 0.050 |", table)
        self.assertIn("| labels p=0.5 | 0/1 | — | 0.500 | 0.100 |", table)  # one seed: no "± 0.000"


if __name__ == "__main__":
    absltest.main()
