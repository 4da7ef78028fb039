"""Runs of the image models end to end on MNIST: a CNN memorization sweep (labels and pixels
corrupted, full batch) and a quantized ResNet measured exactly (minibatches), each stopped and
resumed to the same numbers, their figures drawn with the models' layer names."""

import dataclasses
import tempfile

import chex
import numpy as np

from ib_jax import experiment, plotting, results, train
from tests import testing
from tests.experiment_test import _resumed_equals

_BASE = experiment.ExperimentConfig(
    dataset="mnist",
    epochs=4,
    mi_every=2,
    train_size=60,
    test_size=60,
    convergence="none",
    gradient_sub_batches=3,
)
CNN = dataclasses.replace(
    _BASE,
    train=train.TrainConfig(model="cnn", channels=(2, 3), hidden=(8,), activation="relu", loss_reduction="mean"),
    conditions=("true", "labels:0.5", "random_pixels"),
)
RESNET = dataclasses.replace(
    _BASE,
    train=train.TrainConfig(model="resnet", channels=(2, 4), hidden=(), activation="relu", batch_size=20,
                            quantize_bits=4, loss_reduction="mean"),
    estimators=("exact", "binned"),
    train_size=0,
    test_size=0,
    dataset="npz:own.npz",  # 8 x 8 x 3 images of one's own, written in setUpClass
)  # fmt: skip
KEYS = ("train_loss", "test_accuracy", "i_xt_train", "i_ty_test", "grad_std_norm", "weight_norm")


class _ModelRun(chex.TestCase):
    config: experiment.ExperimentConfig

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        testing.require_data()
        cls.tmp = tempfile.mkdtemp()
        if cls.config.dataset.startswith("npz:"):  # images of one's own: 60 + 30 of 8 x 8 x 3, three classes
            rng = np.random.default_rng(0)
            images = rng.uniform(size=(90, 8, 8, 3)).astype(np.float32)
            labels = np.arange(90) % 3
            images[..., 0] += labels[:, None, None] * 0.5  # a class signal in the red plane
            path = testing.write_npz(f"{cls.tmp}/own.npz", x_train=images[:60], y_train=labels[:60],
                                     x_test=images[60:], y_test=labels[60:])  # fmt: skip
            cls.config = dataclasses.replace(cls.config, dataset=f"npz:{path}")
        cls.dataset = experiment.load_dataset(cls.config, testing.DATA_DIR)
        cls.full = experiment.run(cls.config, cls.dataset, experiment.prepare_output_dir(f"{cls.tmp}/full", False))

    def _check_layers(self, names, widths, draw=plotting.save_run_figures):
        res = results.load_results(f"{self.tmp}/full")
        self.assertEqual(list(res["layer_names"]), list(names))
        np.testing.assert_array_equal(res["layer_widths"], widths)
        rows = len(experiment.conditions_of(self.config))
        chex.assert_shape(res["i_xt_train"], (rows, 3, len(names)))
        self.assertTrue(np.isfinite(res["i_xt_train"]).all() and np.isfinite(res["i_ty_test"]).all())
        self.assertTrue(np.all(res["grad_std_norm"][:, :-1] > 0) and np.all(res["weight_norm"] > 0))
        paths = draw(res, self.tmp)
        self.assertTrue(paths and all(p.is_file() for p in paths))
        return res

    def _check_resume(self):
        _resumed_equals(self, self.config, self.dataset, experiment.prepare_output_dir(f"{self.tmp}/r", False),
                        self.full, KEYS)  # fmt: skip


class CNNSweepRunTest(_ModelRun):
    config = CNN

    def test_layers_rows_and_figures(self):
        names, widths = ("conv1", "conv2", "dense1", "logits"), (14 * 14 * 2, 7 * 7 * 3, 8, 10)
        res = self._check_layers(names, widths, plotting.save_sweep_figures)
        self.assertEqual(list(res["condition"]), ["true", "labels", "random_pixels"])
        chex.assert_shape(res["epochs_to_fit"], (3,))
        self.assertTrue(np.all(res["i_xt_train"] <= np.log2(60) + 1e-5))

    def test_resumes_to_the_same_numbers(self):
        self._check_resume()


class QuantizedResNetRunTest(_ModelRun):
    config = RESNET

    def test_layers_exact_and_figures(self):
        res = self._check_layers(("stage1", "stage2", "logits"), (8 * 8 * 2, 4 * 4 * 4, 3))
        self.assertTrue(np.all(res["exact.i_xt_train"] <= np.log2(60) + 1e-5))

    def test_resumes_to_the_same_numbers(self):
        self._check_resume()
