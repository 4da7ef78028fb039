"""The ground-truth benchmark's smallest case (`python -m benchmarks.accuracy --quick`) as a smoke
test: every part runs, writes its JSON and figure, and its numbers hold what the docs say of them."""

import contextlib
import io
import json
import math
import pathlib
import tempfile

import chex
import numpy as np
from absl.testing import absltest

from benchmarks import accuracy, accuracy_finite


class AccuracySmokeTest(chex.TestCase):
    def test_quick_run(self):
        out = pathlib.Path(tempfile.mkdtemp())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = accuracy.main(["--quick", "--output_dir", str(out)])
        text = printed.getvalue()
        self.assertEqual(json.loads((out / "accuracy.json").read_text())["draws"], 2)
        self.assertGreater((out / "accuracy.png").stat().st_size, 10_000)
        for title in (
            "### I(T;Y) on class clusters",
            "### I(X;T+Z) of noisy layers",
            "### Plug-in bias",
            "### The probe's bias (bits) against D/N",
        ):
            self.assertIn(title, text)
        # Part 1: K = 2, dim 1, N = 1,000 at separations 0 and 50% of one bit.
        zero, half = result["label"]
        self.assertEqual((round(zero["truth"]["t"], 9), round(half["truth"]["t"], 9)), (0.0, 0.5))
        self.assertLess(half["truth"]["t+z"], half["truth"]["t"])  # the noise removes information
        self.assertEqual(set(half["estimates"]), set(accuracy.label_estimators(0.1)))
        for row in (zero, half):
            for name, e in row["estimates"].items():
                values = np.asarray(e["values"])
                chex.assert_shape(values, (2,))
                low = -0.05 if name in accuracy.WIDE else 0.0  # raw values: the probe and Ross's may dip below 0
                self.assertTrue(np.all((values >= low) & (values <= 1 + 1e-5)), name)
            truth = row["truth"]["t"]
            self.assertAlmostEqual(np.mean(row["estimates"]["binned_0.5"]["values"]), truth, delta=0.05)
            self.assertAlmostEqual(np.mean(row["estimates"]["kde_mc"]["values"]), row["truth"]["t+z"], delta=0.05)
            for name in accuracy.WIDE:
                self.assertAlmostEqual(np.mean(row["estimates"][name]["values"]), truth, delta=0.05)
        # Part 2: the KDE bounds bracket the Monte Carlo truth of the random clusters.
        clusters = result["noisy"][-1]
        self.assertLessEqual(clusters["estimates"]["kde_lower"][0], clusters["truth"])
        self.assertGreaterEqual(clusters["estimates"]["kde_upper"][0], clusters["truth"])
        self.assertLess(abs(np.mean(clusters["estimates"]["kde_mc"]) - clusters["truth"]), 0.05)
        # Part 3: the plug-in entropy is low at small N, and Miller-Madow lowers the bias.
        for row in result["bias"]:
            plug_in, corrected = np.mean(row["none"]["h"]), np.mean(row["miller_madow"]["h"])
            self.assertLess(plug_in, row["truth_h"])
            self.assertLess(abs(corrected - row["truth_h"]), abs(plug_in - row["truth_h"]))
            self.assertLessEqual(plug_in, math.log2(row["N"]) + 1e-5)


if __name__ == "__main__":
    absltest.main()


class FiniteAccuracySmokeTest(chex.TestCase):
    def test_quick_run(self):
        out = pathlib.Path(tempfile.mkdtemp())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = accuracy_finite.main(["--quick", "--output_dir", str(out)])
        text = printed.getvalue()
        for title in (
            "### Jointly Gaussian (X, T)",
            "### noise_mc against an independent Monte Carlo",
            "### Sliced SI(T;Y)",
        ):
            self.assertIn(title, text)
        self.assertEqual(json.loads((out / "accuracy_finite.json").read_text())["slices"], 20)
        one_dim = [r for r in result["gaussian"] if r["dim"] == 1]
        for r in one_dim:  # in one dimension SI is I, and every slice is the variables themselves
            self.assertAlmostEqual(r["si_truth"], r["truth"], places=6)
            self.assertAlmostEqual(r["knn"][0], r["truth"], delta=0.2)
            self.assertAlmostEqual(r["sliced"][0], r["knn"][0], delta=1e-5)
        wide = [r for r in result["gaussian"] if r["dim"] == 10]
        for r in wide:  # slices of 10-D variables hold far less than I(X;T)
            self.assertLess(r["si_truth"], 0.1 * r["truth"])
            self.assertAlmostEqual(r["sliced"][0], r["sliced_own_truth"][0], delta=0.05)
        for r in result["noise"]:
            z = (r["noise_mc"][0] - r["reference"][0]) / math.hypot(r["se"][0], r["reference_se"][0])
            self.assertLess(abs(z), 5.0, r["noise"])
        clusters = {r["dim"]: r for r in result["clusters"]}
        self.assertAlmostEqual(clusters[1]["sliced"][0], clusters[1]["truth_1d"], delta=0.15)
        self.assertLess(clusters[10]["si_truth"], clusters[10]["truth_1d"])
