"""Tests of measuring one's own model and data: `capture`, `recorder`, `--dataset npz:PATH`
and the example."""

import os
import tempfile

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import capture, data, errors, estimators, experiment, plotting, recorder, results
from tests import testing
from tests.experiment_test import _run_main

LAYERS = ("conv", "hidden", "logits", "output")


class _CNN(nn.Module):
    """A small CNN with a residual dense block: a sown value, a nested module, a named one."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(3, (3, 3), strides=2, name="conv_layer")(x))
        self.sow("intermediates", "conv", x)
        h = x.reshape(x.shape[0], -1)
        h = nn.tanh(_Block(name="block")(h))
        self.sow("intermediates", "hidden", h)
        return nn.Dense(4, name="logits")(h)


class _Block(nn.Module):
    @nn.compact
    def __call__(self, h):
        return nn.Dense(5)(h) + nn.Dense(5, use_bias=False)(h)


def _setup():
    x = jax.random.normal(jax.random.key(0), (32, 8, 8, 1))
    y = jnp.arange(32) % 4
    model = _CNN()
    return model, model.init(jax.random.key(1), x), x, y


class CaptureTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.model, self.variables, self.x, self.y = _setup()

    def _manual(self):
        """The forward pass by hand, from the parameters, layer by layer."""
        p = self.variables["params"]
        conv = nn.relu(nn.Conv(3, (3, 3), strides=2).apply({"params": p["conv_layer"]}, self.x))
        flat = conv.reshape(32, -1)
        dense = lambda q, h: h @ q["kernel"] + q.get("bias", 0.0)  # noqa: E731
        hidden = jnp.tanh(dense(p["block"]["Dense_0"], flat) + dense(p["block"]["Dense_1"], flat))
        logits = dense(p["logits"], hidden)
        return {"conv": flat, "hidden": hidden, "logits": logits, "output": logits, "block": hidden}

    @chex.variants(with_jit=True, without_jit=True)
    def test_captured_activations_equal_a_manual_forward_pass(self):
        apply = self.variant(lambda v, x: capture.apply(self.model, v, x, layers=LAYERS))
        out, acts = apply(self.variables, self.x)
        manual = self._manual()
        chex.assert_trees_all_close(out, self.model.apply(self.variables, self.x), atol=1e-6)
        chex.assert_shape(list(acts), [(32, 3 * 4 * 4), (32, 5), (32, 4), (32, 4)])
        for name, got in zip(LAYERS, acts):
            np.testing.assert_allclose(got, manual[name], atol=1e-5, err_msg=name)
            self.assertEqual(got.dtype, jnp.float32)

    def test_nested_module_path_is_its_pre_nonlinearity_output(self):
        _, (block,) = capture.apply(self.model, self.variables, self.x, layers=["block"])
        np.testing.assert_allclose(jnp.tanh(block), self._manual()["hidden"], atol=1e-5)

    def test_layer_names_and_errors(self):
        names = capture.layer_names(self.model, self.variables, self.x)
        for name in ("conv_layer", "conv", "block", "block/Dense_0", "hidden", "logits", "output"):
            self.assertIn(name, names)
        with self.assertRaisesRegex(ValueError, "no layer 'conv2'.*it has: .*conv_layer"):
            capture.apply(self.model, self.variables, self.x, layers=["conv2"])
        for bad, message in (([], "at least one"), ("conv", "sequence"), (["conv", "conv"], "twice"), ([""], "empty")):
            with self.assertRaisesRegex(ValueError, message):
                capture.apply(self.model, self.variables, self.x, layers=bad)

        class Twice(nn.Module):
            @nn.compact
            def __call__(self, x):
                dense = nn.Dense(3, name="shared")
                return dense(nn.relu(dense(x)))

        v = Twice().init(jax.random.key(0), jnp.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, "produced 2 times"):
            capture.apply(Twice(), v, jnp.ones((2, 3)), layers=["shared"])

    def test_mutable_collections_pass_through(self):
        class WithBatchNorm(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(2, name="out")(nn.BatchNorm(use_running_average=False, name="bn")(x))

        model, x = WithBatchNorm(), jax.random.normal(jax.random.key(0), (8, 3))
        v = model.init(jax.random.key(1), x)
        (out, updates), (bn,) = capture.apply(model, v, x, layers=["bn"], mutable=["batch_stats"])
        want, want_updates = model.apply(v, x, mutable=["batch_stats"])
        chex.assert_trees_all_close((out, updates), (want, want_updates))
        self.assertNotIn("intermediates", updates)
        np.testing.assert_allclose(bn.mean(0), 0.0, atol=1e-5)


class MeasureInJitTest(chex.TestCase):
    def test_inside_and_outside_jit_are_equal(self):
        """Capture and measure (every estimator) inside one jitted function = outside jit."""
        model, variables, x, y = _setup()
        ests = [
            estimators.by_name(n, binning=estimators.Binning(bin_size=0.3), noise_variance=0.1, num_bins=8)
            for n in estimators.ESTIMATORS
        ]

        def plane(v, x, y):
            _, acts = capture.apply(model, v, x, layers=LAYERS)
            return [estimators.information_plane(acts, y, estimator=e, num_classes=4) for e in ests]

        outside = plane(variables, x, y)
        inside = jax.jit(plane)(variables, x, y)
        chex.assert_trees_all_close(inside, outside, atol=1e-5)
        self.assertGreater(float(outside[0][0][0]), 0.0)


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
            (config["lr"], config["name"], config["estimators"]["kde_upper"]["noise_variance"]), (0.1, "cnn", 0.1)
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
        with self.assertRaisesRegex(errors.ConfigError, "finished run"):
            recorder.Recorder(out, num_classes=4)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


class NpzDatasetTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        cls.good = {
            "x_train": rng.normal(size=(60, 2, 3)).astype(np.float64),
            "y_train": np.arange(60) % 3,
            "x_test": rng.normal(size=(30, 2, 3)),
            "y_test": (np.arange(30) % 3).astype(np.float32),
        }

    def test_round_trip(self):
        ds = data.load_npz(_npz(f"{self.tmp}/good.npz", **self.good))
        np.testing.assert_array_equal(ds.x_train, self.good["x_train"].reshape(60, 6).astype(np.float32))
        np.testing.assert_array_equal(ds.y_test, self.good["y_test"].astype(np.int32))
        self.assertEqual((ds.num_classes, ds.x_train.dtype, ds.y_train.dtype), (3, np.float32, np.int32))
        config = experiment.ExperimentConfig(dataset=f"npz:{self.tmp}/good.npz", train_size=30, test_size=15)
        sub = experiment.load_dataset(config)
        self.assertEqual((sub.x_train.shape, sub.x_test.shape), ((30, 6), (15, 6)))
        np.testing.assert_array_equal(np.bincount(sub.y_train), [10, 10, 10])  # stratified, as for MNIST

    @parameterized.named_parameters(
        ("missing_key", {"y_test": None}, "lacks y_test"),
        ("lengths", {"y_train": np.arange(59) % 3}, r"y_train must be \[60\]"),
        ("item_shapes", {"x_test": np.zeros((30, 6))}, "items differ"),
        ("float_labels", {"y_train": np.full(60, 0.5)}, "not a whole number"),
        ("negative_labels", {"y_test": np.arange(30) - 1}, "negative label"),
        ("nan_inputs", {"x_train": np.full((60, 2, 3), np.nan)}, "NaN or infinite values"),
        ("text_labels", {"y_train": np.array(["a"] * 60)}, "integer class labels"),
        ("text_inputs", {"x_test": np.array([["a"]] * 30)}, "real numbers"),
        ("object_inputs", {"x_train": np.array([None] * 60, dtype=object)}, "object arrays"),
        ("empty", {"x_train": np.zeros((0, 6)), "y_train": np.zeros(0, int)}, "x_train is empty"),
    )
    def test_bad_files_are_refused(self, changes, message):
        arrays = {k: v for k, v in {**self.good, **changes}.items() if v is not None}
        path = _npz(f"{self.tmp}/bad.npz", **arrays)
        with self.assertRaisesRegex(errors.DataError, message):
            data.load_npz(path)

    def test_unreadable_and_missing_files(self):
        with open(f"{self.tmp}/broken.npz", "wb") as f:
            f.write(b"PK not a zip")
        with self.assertRaisesRegex(errors.DataError, "not a readable .npz"):
            data.load_npz(f"{self.tmp}/broken.npz")
        with self.assertRaisesRegex(errors.DataError, "no file"):
            data.load_npz(f"{self.tmp}/none.npz")
        with self.assertRaisesRegex(errors.ConfigError, "npz:PATH"):
            experiment.ExperimentConfig(dataset="npz:")


class ExamplesTest(chex.TestCase):
    """The example and a main on one's own data, as a user runs them (subprocesses)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.tmp = tempfile.mkdtemp()

    def test_cnn_example_and_compare(self):
        args = [
            "--data_dir",
            str(testing.DATA_DIR),
            "--train_size",
            "100",
            "--test_size",
            "50",
            "--epochs",
            "2",
            "--mi_every",
            "1",
            "--batch_size",
            "50",
            "--estimators",
            "binned,kde_upper",
        ]
        proc = _run_main("examples.cnn_mnist", *args, "--random_labels", "--output_dir", f"{self.tmp}/cnn")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(f"{self.tmp}/cnn")
        np.testing.assert_array_equal(res["mi_epochs"], [0, 1, 2])
        np.testing.assert_array_equal(res["layer_widths"], [8 * 14 * 14, 16 * 7 * 7, 64, 10])
        self.assertTrue(np.isfinite(res["kde_upper.i_xt_test"]).all())
        self.assertTrue(bool(res["complete"]))
        self.assertTrue(os.path.exists(f"{self.tmp}/cnn/information_plane.png"))
        proc = _run_main(
            "experiments.compare",
            f"{self.tmp}/cnn",
            f"{self.tmp}/cnn",
            "--layout",
            "headline",
            "--output",
            f"{self.tmp}/headline.png",
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertTrue(os.path.exists(f"{self.tmp}/headline.png"))
        proc = _run_main("examples.cnn_mnist", *args, "--epochs", "0", "--output_dir", f"{self.tmp}/never")
        self.assertEqual((proc.returncode, proc.stderr.strip()), (2, "error: --epochs must be >= 1, got 0"))

    def test_mnist_main_on_an_npz_file(self):
        rng = np.random.default_rng(1)
        path = _npz(
            f"{self.tmp}/own.npz",
            x_train=rng.normal(size=(120, 4, 4)),
            y_train=np.arange(120) % 3,
            x_test=rng.normal(size=(60, 4, 4)),
            y_test=np.arange(60) % 3,
        )
        proc = _run_main(
            "experiments.mnist",
            f"--dataset=npz:{path}",
            "--train_size=90",
            "--epochs=3",
            "--mi_every=1",
            "--hidden=8,4",
            "--random_labels",
            f"--output_dir={self.tmp}/npz_run",
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("own.npz, random labels", proc.stdout)
        res = results.load_results(f"{self.tmp}/npz_run")
        self.assertEqual((int(res["n_train"]), int(res["n_test"]), list(res["layer_widths"])), (90, 60, [8, 4, 3]))
        bad = _npz(
            f"{self.tmp}/bad.npz",
            x_train=np.zeros((4, 2)),
            y_train=np.arange(4) - 1,
            x_test=np.zeros((2, 2)),
            y_test=np.zeros(2, int),
        )
        proc = _run_main("experiments.mnist", f"--dataset=npz:{bad}", f"--output_dir={self.tmp}/never")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("negative label", proc.stderr)
        self.assertFalse(os.path.exists(f"{self.tmp}/never"))


if __name__ == "__main__":
    absltest.main()
