"""The examples as a user runs them (subprocesses)."""

import os
import tempfile

import chex
import numpy as np
from absl.testing import absltest

from ib_jax import results
from tests import testing


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
            "binned,kde_upper,renyi",  # renyi: the example passes the inputs
        ]
        # The example, `compare` on what it wrote, and a bad input: children of one process (fork_main).
        compare = [f"{self.tmp}/cnn", f"{self.tmp}/cnn", "--layout", "headline", "--output", f"{self.tmp}/headline.png"]
        nnx_args = [*args[:-2], "--estimators", "binned,kde_upper", "--output_dir", f"{self.tmp}/nnx"]
        proc, compared, refused, nnx_proc = testing.run_forked(
            "examples.cnn_mnist",
            [
                [*args, "--random_labels", "--output_dir", f"{self.tmp}/cnn"],
                {"module": "experiments.compare", "args": compare},
                [*args, "--epochs", "0", "--output_dir", f"{self.tmp}/never"],
                {"module": "examples.cnn_mnist_nnx", "args": nnx_args},  # the same network in Flax NNX
            ],
        )
        self.assertEqual(nnx_proc.returncode, 0, nnx_proc.stderr[-2000:])
        nnx_res = results.load_results(f"{self.tmp}/nnx")
        np.testing.assert_array_equal(nnx_res["layer_widths"], [8 * 14 * 14, 16 * 7 * 7, 64, 10])
        self.assertEqual(list(nnx_res["layer_names"]), ["conv1", "conv2", "dense", "logits"])
        self.assertTrue(np.isfinite(nnx_res["kde_upper.i_xt_test"]).all() and bool(nnx_res["complete"]))
        self.assertIn("CNN (Flax NNX), MNIST, true labels: 2 epochs", nnx_proc.stdout)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        res = results.load_results(f"{self.tmp}/cnn")
        np.testing.assert_array_equal(res["mi_epochs"], [0, 1, 2])
        np.testing.assert_array_equal(res["layer_widths"], [8 * 14 * 14, 16 * 7 * 7, 64, 10])
        self.assertTrue(np.isfinite(res["kde_upper.i_xt_test"]).all())
        self.assertTrue(np.isfinite(res["renyi.i_xt_train"]).all())
        self.assertIn(f"results: {self.tmp}/cnn/results.npz", proc.stdout)  # the mains' wording
        self.assertIn(f"figure: {self.tmp}/cnn/information_plane.png", proc.stdout)
        self.assertTrue(bool(res["complete"]))
        self.assertTrue(os.path.exists(f"{self.tmp}/cnn/information_plane.png"))
        self.assertEqual(compared.returncode, 0, compared.stderr[-2000:])
        self.assertTrue(os.path.exists(f"{self.tmp}/headline.png"))
        self.assertEqual((refused.returncode, refused.stderr.strip()), (2, "error: --epochs must be >= 1, got 0"))

    def test_mnist_main_on_an_npz_file(self):
        rng = np.random.default_rng(1)
        path = testing.write_npz(
            f"{self.tmp}/own.npz",
            x_train=rng.normal(size=(120, 4, 4)),
            y_train=np.arange(120) % 3,
            x_test=rng.normal(size=(60, 4, 4)),
            y_test=np.arange(60) % 3,
        )
        bad = testing.write_npz(
            f"{self.tmp}/bad.npz",
            x_train=np.zeros((4, 2)),
            y_train=np.arange(4) - 1,
            x_test=np.zeros((2, 2)),
            y_test=np.zeros(2, int),
        )
        proc, refused = testing.run_forked(
            "experiments.mnist",
            [
                [
                    f"--dataset=npz:{path}",
                    "--train_size=90",
                    "--epochs=3",
                    "--mi_every=1",
                    "--hidden=8,4",
                    "--random_labels",
                    f"--output_dir={self.tmp}/npz_run",
                ],
                [f"--dataset=npz:{bad}", f"--output_dir={self.tmp}/never"],
            ],
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("own.npz, random labels", proc.stdout)
        res = results.load_results(f"{self.tmp}/npz_run")
        self.assertEqual((int(res["n_train"]), int(res["n_test"]), list(res["layer_widths"])), (90, 60, [8, 4, 3]))
        self.assertEqual(refused.returncode, 2)
        self.assertEqual(len(refused.stderr.strip().splitlines()), 1, refused.stderr)
        self.assertIn("negative label", refused.stderr)
        self.assertFalse(os.path.exists(f"{self.tmp}/never"))


if __name__ == "__main__":
    absltest.main()
