"""Tests of the experiment runner on tiny configurations: the schedule, the results contract,
resume, interrupts and stops."""

import dataclasses
import json
import os
import pathlib
import tempfile
from unittest import mock

import chex
import flax.serialization
import jax
import numpy as np
from absl.testing import absltest, parameterized

from ib_jax import config as config_lib
from ib_jax import data, errors, estimators, experiment, outcome, plotting, program, results, rows, train
from tests import testing


def _stopped(test, config, dataset, out) -> None:
    """Runs `config` in `out` until it is stopped after its second call (RunStopped, a checkpoint)."""
    calls = []
    with test.assertRaises(experiment.RunStopped):
        experiment.run(config, dataset, out, should_stop=lambda: calls.append(1) or len(calls) >= 2)


def _resumed_equals(test, config, dataset, out, whole, keys) -> None:
    """Stops a run of `config` in `out`, resumes it, and checks `keys` against the whole run's."""
    _stopped(test, config, dataset, out)
    resumed = experiment.run(config, dataset, out)
    for key in keys:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


class ScheduleTest(parameterized.TestCase):
    def test_every_k_includes_zero_and_end(self):
        np.testing.assert_array_equal(experiment.mi_epochs(testing.TINY), [0, 10, 20, 30, 40])
        config = experiment.ExperimentConfig(epochs=45, mi_every=20)
        np.testing.assert_array_equal(experiment.mi_epochs(config), [0, 20, 40, 45])

    def test_log_spaced_like_idnns(self):
        config = experiment.ExperimentConfig(epochs=8000, mi_log_points=400)
        epochs = experiment.mi_epochs(config)
        self.assertLen(epochs, 275)  # IDNNs' 274 distinct epochs (1 ... 8000) and 0
        self.assertEqual((epochs[0], epochs[-1]), (0, 8000))

    @parameterized.parameters(
        {"epochs": 0},
        {"mi_every": 0},
        {"num_seeds": 0},
        {"dataset": "cifar"},
        {"train_size": -1},
        {"mi_log_points": -2},
        {"estimators": ()},
        {"estimators": ("binned", "binned")},
        {"estimators": ("kde",)},
        {"kde_noise_variance": 0.0},
        {"adaptive_bins": 0},
        {"gradient_sub_batches": 1},
    )
    def test_bad_config(self, **kwargs):
        with self.assertRaises(errors.ConfigError):
            experiment.ExperimentConfig(**kwargs)

    @parameterized.named_parameters(
        ("permuted_and_corrupted", {"random_labels": True, "label_corruption": 0.5}, "not both"),
        ("conditions_and_permuted", {"conditions": ("true", "permuted"), "random_labels": True}, "not both"),
        ("conditions_and_corrupted", {"conditions": ("labels:0.5",), "label_corruption": 0.2}, "not both"),
        ("per_seed_without_random_labels", {"per_seed_labels": True}, "per_seed_labels needs"),
        ("per_seed_with_inputs_only", {"conditions": ("gaussian",), "per_seed_labels": True}, "per_seed_labels"),
        ("corruption_above_one", {"label_corruption": 1.5}, "corruption"),
        ("corruption_negative", {"label_corruption": -0.1}, "corruption"),
    )
    def test_contradictory_label_settings_are_refused(self, kwargs, match):
        """Every combination of the label settings that cannot all hold is refused in one line."""
        with self.assertRaisesRegex(errors.ConfigError, match):
            experiment.ExperimentConfig(**kwargs)


class SampleCountsTest(parameterized.TestCase):
    """One rule for --train_size, --test_size and --mi_subset: 0 (all), or every class and no
    more than the split holds."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = np.random.default_rng(0)
        y = np.arange(100) % 10
        cls.dataset = data.Dataset("toy", rng.normal(size=(100, 3)), y, rng.normal(size=(40, 3)), y[:40], 10)

    @parameterized.named_parameters(
        ("train_below_classes", {"train_size": 5}, "--train_size 5 cannot hold each of the 10 classes"),
        ("test_below_classes", {"test_size": 3}, "--test_size 3 cannot hold each of the 10 classes"),
        ("mi_subset_one", {"mi_subset": 1}, "--mi_subset 1 cannot hold each of the 10 classes"),
        ("train_above_split", {"train_size": 101}, "--train_size 101 exceeds the 100 samples of the training"),
        ("test_above_split", {"test_size": 41}, "--test_size 41 exceeds the 40 samples of the test split"),
    )
    def test_refused(self, changes, message):
        config = dataclasses.replace(testing.TINY, **{"train_size": 0, "test_size": 0, **changes})
        with self.assertRaisesRegex(errors.ConfigError, message):
            experiment.check_sample_counts(config, self.dataset)

    def test_accepted(self):
        for changes in ({"train_size": 10, "test_size": 40, "mi_subset": 10}, {"train_size": 0, "mi_subset": 5000}):
            config = dataclasses.replace(testing.TINY, **{"train_size": 0, "test_size": 0, **changes})
            experiment.check_sample_counts(config, self.dataset)


class EtaTest(absltest.TestCase):
    def test_unmeasured_and_measured_epochs_at_their_own_paces(self):
        schedule = np.array([0, 10, 20, 30])
        paces = {"train": 0.01, "measure": 1.0}
        # From epoch 11 of 30: epochs 20 (measured) and 11..19, 21..29 (18 trained).
        self.assertAlmostEqual(experiment.estimate_eta(11, 30, schedule, paces), 18 * 0.01 + 1.0)
        self.assertAlmostEqual(experiment.estimate_eta(30, 30, schedule, paces), 0.0)

    def test_unknown_while_a_needed_pace_has_only_compiled(self):
        schedule = np.array([0, 10, 20])
        self.assertIsNone(experiment.estimate_eta(1, 20, schedule, {"train": 0.01}))
        self.assertIsNone(experiment.estimate_eta(1, 20, schedule, {"measure": 1.0}))
        self.assertAlmostEqual(experiment.estimate_eta(11, 20, np.array([0, 10, 20]), {"train": 0.5}), 4.5)


class RunTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dataset = experiment.load_dataset(testing.TINY)
        out, cls.full = testing.tiny_run()  # in {cls.tmp}/full
        cls.tmp = str(out.parent)

    def test_the_mlp_is_unchanged_by_the_model_registry(self):
        # The values this run wrote before `--model` existed (commit 0edd415), to float rounding.
        golden = {
            "train_loss": [[0.717909, 0.673313, 0.631581, 0.586776]],
            "test_accuracy": [[0.464844, 0.53125, 0.617188, 0.640625]],
            "i_xt_train": [[[8.0, 7.867188, 5.446476], [8.0, 7.879864, 5.253298], [8.0, 7.9375, 5.682468],
                            [8.0, 7.918926, 6.044808], [8.0, 7.890625, 6.375374]]],
            "kde_upper.i_ty_test": [[[0.980222, 0.406969, 0.055228], [0.971235, 0.368223, 0.044586],
                                     [0.978675, 0.426138, 0.096335], [0.975884, 0.471426, 0.145124],
                                     [0.97619, 0.534716, 0.212864]]],
            "grad_mean_norm": [[[0.188478, 0.131888, 0.093857], [0.036968, 0.025925, 0.01585],
                                [0.051799, 0.039865, 0.076466], [0.051293, 0.028888, 0.06891]]],
            "weight_norm": [[[2.484359, 1.568579, 1.322397], [2.485662, 1.556918, 1.296596],
                             [2.495488, 1.569468, 1.317], [2.517113, 1.639728, 1.46104],
                             [2.521808, 1.708912, 1.652362]]],
        }  # fmt: skip
        for key, want in golden.items():
            got = np.asarray(self.full[key])
            got = got[:, ::10] if key in ("train_loss", "test_accuracy") else got
            got = got[:, :-1] if key == "grad_mean_norm" else got
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=key)
        self.assertEqual(list(self.full["layer_names"]), ["layer 1", "layer 2", "layer 3"])

    def test_outputs_follow_the_contract(self):
        res = results.load_results(f"{self.tmp}/full")
        chex.assert_shape([res[k] for k in ("i_xt_train", "i_ty_train", "i_xt_test", "i_ty_test")], (1, 5, 3))
        chex.assert_shape([res[k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")], (1, 40))
        np.testing.assert_array_equal(res["layer_widths"], [6, 4, 2])
        np.testing.assert_array_equal(res["mi_epochs"], [0, 10, 20, 30, 40])
        self.assertTrue(res["complete"])
        self.assertTrue(np.all(res["i_xt_train"] <= np.log2(256) + 1e-5))
        self.assertTrue(np.all(res["i_ty_test"] <= res["h_y_test"] + 1e-5))
        config = json.loads(open(f"{self.tmp}/full/config.json").read())
        self.assertEqual(config["config"]["epochs"], 40)
        self.assertIn("jax", config["versions"])
        self.assertFalse(os.path.exists(f"{self.tmp}/full/{results.CHECKPOINT}"))
        self.assertEqual(list(res["estimators"]), list(testing.TINY.estimators))
        for name in testing.TINY.estimators:
            chex.assert_shape([res[f"{name}.{k}"] for k in results.MI_KEYS], (1, 5, 3))
        for key in results.MI_KEYS:  # the unprefixed keys are the first estimator's
            np.testing.assert_array_equal(res[key], res[f"binned.{key}"])
        self.assertTrue(np.all(res["kde_upper.i_xt_train"] >= res["kde_lower.i_xt_train"] - 1e-6))
        for key in experiment.GRADIENT_KEYS:
            chex.assert_shape(res[key], (1, 5, 3))
        self.assertTrue(np.all(np.isnan(res["grad_mean_norm"][:, -1])))  # no epoch trained from the final network
        self.assertTrue(np.all(res["grad_std_norm"][:, :-1] > 0) and np.all(np.isfinite(res["weight_norm"])))
        self.assertEqual(
            config["estimators"],
            [
                {
                    "name": "binned",
                    "type": "Binning",
                    "bin_size": 0.1,
                    "num_bins": None,
                    "value_range": None,
                    "bias_correction": "none",
                },
                {
                    "name": "kde_upper",
                    "type": "KDE",
                    "noise_variance": 0.01,
                    "bound": "upper",
                    "mc_samples": 4,
                    "seed": 0,
                },
                {
                    "name": "kde_lower",
                    "type": "KDE",
                    "noise_variance": 0.01,
                    "bound": "lower",
                    "mc_samples": 4,
                    "seed": 0,
                },
                {
                    "name": "adaptive_entropy",
                    "type": "AdaptiveBinning",
                    "num_bins": 12,
                    "strategy": "entropy",
                    "bias_correction": "none",
                },
                {
                    "name": "adaptive_range",
                    "type": "AdaptiveBinning",
                    "num_bins": 12,
                    "strategy": "range",
                    "bias_correction": "none",
                },
                {"name": "exact", "type": "Exact", "bias_correction": "none"},
            ],
        )

    def test_old_folders_load_as_binned(self):
        """A results.npz from before the estimator suite (unprefixed keys only) loads, plots and
        reads as the estimator "binned"."""
        res = results.load_results(f"{self.tmp}/full")
        newer = {
            "epochs",
            "num_classes",
            "diverged_epoch",
            "estimators",
            "contract",
            "fit_threshold",
            "seed",
            "condition",
            "corruption",
            "epochs_to_fit",
            "h_y_train_rows",
            *experiment.GRADIENT_KEYS,
        }
        old = {k: v for k, v in res.items() if "." not in k and k not in newer}
        out = f"{self.tmp}/old"
        results.save_results(out, old)
        loaded = results.load_results(out)
        self.assertEqual(results.estimator_names(loaded), ["binned"])
        np.testing.assert_array_equal(results.estimator_view(loaded, "binned")["i_xt_test"], res["i_xt_test"])
        with self.assertRaisesRegex(errors.DataError, "not kde_upper"):
            results.estimator_view(loaded, "kde_upper")
        self.assertLen(plotting.save_run_figures(loaded, out), 3)
        self.assertLen(plotting.save_run_figures(res, out), 7)  # the new one: gradients and per-estimator figures

    @classmethod
    def _after_10_epochs(cls):
        """The network of TINY after 10 epochs, trained separately with the train module, and
        its layers on the training set (computed once)."""
        if not hasattr(cls, "_trained"):
            init_key, shuffle_key = jax.random.split(jax.random.key(testing.TINY.seed))
            state = train.create_state(init_key, testing.TINY.train, 12, 2)
            x, y = cls.dataset.x_train, cls.dataset.y_train
            for epoch in range(10):
                key = jax.random.fold_in(shuffle_key, epoch)
                state, _, _ = train.jit_train_epoch(state, key, x, y, testing.TINY.train)
            cls._trained = state, shuffle_key, train.evaluate(state.apply_fn, state.params, x, y)[1]
        return cls._trained

    def test_information_equals_a_direct_measurement(self):
        """Train-set MI at epoch 10 = the estimator on a forward pass of the network after 10
        epochs, trained separately with the train module."""
        state, shuffle_key, acts = self._after_10_epochs()
        x, y = self.dataset.x_train, self.dataset.y_train
        for estimator in experiment.measured_estimators(testing.TINY):
            if (
                estimator.name == "kde_mc"
            ):  # its draws follow the activations' last bits, which two passes may not share
                continue
            i_xt, i_ty = estimators.information_plane(acts, y, estimator=estimator, inputs=x)
            np.testing.assert_allclose(self.full[f"{estimator.name}.i_xt_train"][0, 1], i_xt, atol=1e-5)
            np.testing.assert_allclose(self.full[f"{estimator.name}.i_ty_train"][0, 1], i_ty, atol=1e-5)
        # The gradient statistics of epoch 10: the epoch trained from that network.
        _, metrics, _ = train.jit_train_epoch(
            state,
            jax.random.fold_in(shuffle_key, 10),
            x,
            y,
            testing.TINY.train,
            gradient_stats=True,
            sub_batches=config_lib.sub_batches(testing.TINY, len(y)),
        )
        for key in experiment.GRADIENT_KEYS:
            np.testing.assert_allclose(self.full[key][0, 1], metrics[key], rtol=1e-5, err_msg=key)

    def test_mi_subset_measures_a_fixed_stratified_subset(self):
        """--mi_subset 128: the information of the 128 measured training samples (a fixed,
        stratified subset, the labels' frequencies kept) equals the estimator on those samples
        of a direct forward pass; the test split (256) is measured on 128 too; training is
        unchanged."""
        config = dataclasses.replace(testing.TINY, mi_subset=128, estimators=("binned",), epochs=10)
        out = experiment.prepare_output_dir(f"{self.tmp}/subset", False)
        res = experiment.run(config, self.dataset, out)
        self.assertEqual((int(res["n_train"]), int(res["n_test"])), (128, 128))
        idx = rows.measured_subset(self.dataset.y_train, 128, config.data_seed + 2, 2)
        self.assertEqual(len(idx), 128)
        np.testing.assert_allclose(np.mean(self.dataset.y_train[idx]), np.mean(self.dataset.y_train), atol=1 / 128)
        self.assertAlmostEqual(float(res["h_y_train_rows"][0]), rows.entropy_bits(self.dataset.y_train[idx]), places=6)
        np.testing.assert_array_equal(res["train_loss"], self.full["train_loss"][:, :10])  # same training
        init_key, _ = jax.random.split(jax.random.key(config.seed))
        state = train.create_state(init_key, config.train, 12, 2)
        _, acts = train.evaluate(state.apply_fn, state.params, self.dataset.x_train, self.dataset.y_train)
        i_xt, i_ty = estimators.information_plane([a[idx] for a in acts], self.dataset.y_train[idx], bin_size=0.1)
        np.testing.assert_allclose(res["i_xt_train"][0, 0], i_xt, atol=1e-5)
        np.testing.assert_allclose(res["i_ty_train"][0, 0], i_ty, atol=1e-5)
        self.assertIsNone(rows.measured_subset(self.dataset.y_train, 0, 0, 2))  # 0: every sample
        self.assertIsNone(rows.measured_subset(self.dataset.y_train, 10_000, 0, 2))  # not below N: every sample

    def test_stop_and_resume_equal_an_uninterrupted_run(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/stopped", False)
        calls = []
        with self.assertRaises(experiment.RunStopped):
            experiment.run(testing.TINY, self.dataset, out, should_stop=lambda: calls.append(1) or len(calls) >= 3)
        partial = results.load_results(out)
        self.assertFalse(partial["complete"])
        self.assertTrue(os.path.exists(out / results.CHECKPOINT))
        resumed = experiment.run(testing.TINY, self.dataset, out)
        for key in (
            "i_xt_train",
            "i_ty_test",
            "kde_lower.i_xt_test",
            "adaptive_range.i_ty_train",
            "train_loss",
            "test_accuracy",
            "final_train_loss",
            "grad_std_norm",
            "weight_norm",
        ):
            np.testing.assert_array_equal(resumed[key], self.full[key], err_msg=key)

    def test_quantized_run_resumes_its_ranges_and_counts_exactly(self):
        """A quantized ReLU network (tracked ranges): the ranges are checkpointed and resumed, so
        a stopped and resumed run equals an uninterrupted one; `exact` never exceeds log2 N."""
        config = experiment.ExperimentConfig(
            **{
                **testing.TINY.__dict__,
                "estimators": ("exact",),
                "epochs": 20,
                "gradient_stats": False,
                "train": train.TrainConfig(**{**testing.TINY.train.__dict__, "activation": "relu", "quantize_bits": 4}),
            }
        )
        whole = experiment.run(config, self.dataset, experiment.prepare_output_dir(f"{self.tmp}/q_whole", False))
        out = experiment.prepare_output_dir(f"{self.tmp}/q_stopped", False)
        _stopped(self, config, self.dataset, out)
        ranges = flax.serialization.msgpack_restore((out / results.CHECKPOINT).read_bytes())["states"]["quantization"]
        self.assertEqual(sorted(ranges), ["range_0", "range_1", "range_2"])  # relu layers and the logits
        resumed = experiment.run(config, self.dataset, out)
        for key in ("exact.i_xt_train", "exact.i_ty_test", "train_loss", "final_test_loss"):
            np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
        self.assertTrue(np.all(whole["exact.i_xt_train"] <= np.log2(256) + 1e-5))
        self.assertTrue(np.all(whole["exact.i_xt_test"] <= np.log2(256) + 1e-5))
        self.assertLess(float(whole["exact.i_xt_train"][0, -1, -1]), np.log2(256))  # the logits' grid merges rows

    def test_interrupt_during_the_final_write_leaves_the_old_files(self):
        """SIGTERM's second signal (KeyboardInterrupt) in the middle of writing the final
        results: the folder holds the previous complete files, never half of the new ones, and
        the rerun finishes as an uninterrupted run."""
        out = experiment.prepare_output_dir(f"{self.tmp}/final_write", False)
        real_save = results.save_results

        def interrupted(output_dir, arrays):
            if not arrays["complete"]:
                return real_save(output_dir, arrays)

            def half(f):
                f.write(b"PK half of the final results")
                raise KeyboardInterrupt

            results.atomic_write(pathlib.Path(output_dir) / results.RESULTS, half)

        with mock.patch.object(results, "save_results", interrupted), self.assertRaises(KeyboardInterrupt):
            experiment.run(testing.TINY, self.dataset, out, checkpoint_every_s=0)
        self.assertFalse(results.load_results(out)["complete"])  # the old file, whole
        self.assertFalse(json.loads(open(out / results.CONFIG).read())["complete"])
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".tmp")], [])
        resumed = experiment.run(testing.TINY, self.dataset, out)
        for key in ("i_xt_train", "kde_upper.i_ty_test", "train_loss", "final_test_accuracy", "weight_norm"):
            np.testing.assert_array_equal(resumed[key], self.full[key], err_msg=key)
        self.assertTrue(results.load_results(out)["complete"])

    def test_finished_run_is_not_overwritten(self):
        with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
            experiment.prepare_output_dir(f"{self.tmp}/full", False)

    def test_checkpoint_of_other_settings_is_refused_naming_them(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/other", False)
        with self.assertRaises(experiment.RunStopped):
            experiment.run(testing.TINY, self.dataset, out, should_stop=lambda: True)
        other = dataclasses.replace(
            testing.TINY, train=dataclasses.replace(testing.TINY.train, learning_rate=0.1), adaptive_bins=13
        )
        message = (
            "other settings \\(adaptive_bins: 12 in the folder, 13 now; train.learning_rate: 0.05 in the folder, 0.1"
        )
        with self.assertRaisesRegex(errors.ConfigError, message):
            experiment.run(other, self.dataset, out)

    def test_a_larger_epochs_continues_a_finished_run_as_one_longer_run(self):
        """TINY (40 epochs, measured every 10) run to 20 epochs (the continuation measures epoch 20
        with its training step) or to 25 (a final measurement the longer run does not make),
        then continued to 40: every key equals the uninterrupted 40-epoch run's."""
        for short in (20, 25):
            out = experiment.prepare_output_dir(f"{self.tmp}/to_{short}", False)
            experiment.run(dataclasses.replace(testing.TINY, epochs=short), self.dataset, out)
            self.assertTrue((out / results.FINAL_STATE).is_file())
            with self.assertRaisesRegex(
                errors.ConfigError, "finished run; pass --overwrite to replace it, or a larger"
            ):
                experiment.prepare_run_dir(out, dataclasses.replace(testing.TINY, epochs=short), False)
            refused = dataclasses.replace(testing.TINY, mi_every=5)
            with self.assertRaisesRegex(errors.ConfigError, "other settings \\(mi_every: 10 in the folder, 5 now\\)"):
                experiment.prepare_run_dir(out, refused, False)
            experiment.prepare_run_dir(out, testing.TINY, False)
            continued = experiment.run(testing.TINY, self.dataset, out)
            self.assertEqual(sorted(continued), sorted(self.full))
            for key, want in self.full.items():
                np.testing.assert_array_equal(continued[key], want, err_msg=f"{short}: {key}")
            self.assertTrue(results.load_results(out)["complete"])
        logged = dataclasses.replace(testing.TINY, epochs=20, mi_log_points=5, estimators=("binned",))
        out = experiment.prepare_output_dir(f"{self.tmp}/logged", False)
        experiment.run(logged, self.dataset, out, keep_final_state=False)
        self.assertFalse((out / results.FINAL_STATE).exists())
        with self.assertRaisesRegex(errors.ConfigError, "without its final state"):
            experiment.prepare_run_dir(out, dataclasses.replace(logged, epochs=40), False)
        (out / results.FINAL_STATE).write_bytes(b"")  # present: refused for its schedule, before it is read
        with self.assertRaisesRegex(errors.ConfigError, "--mi_log_points epochs spread over them"):
            experiment.prepare_run_dir(out, dataclasses.replace(logged, epochs=40), False)

    def test_non_finite_loss_stops_keeps_results_and_is_not_resumed(self):
        diverging = train.TrainConfig(hidden=(6, 4), activation="linear", optimizer="sgd", learning_rate=1e10)
        # One estimator: the stop does not depend on them, and each adds to the compilation.
        config = experiment.ExperimentConfig(**{**testing.TINY.__dict__, "train": diverging, "estimators": ("binned",)})
        out = experiment.prepare_output_dir(f"{self.tmp}/nan", False)
        with self.assertRaisesRegex(experiment.RunStopped, "non-finite.*--plot_only draws it"):
            experiment.run(config, self.dataset, out)
        res = results.load_results(out)
        self.assertFalse(res["complete"])
        self.assertGreater(res["train_loss"].shape[1], 0)
        first = int(np.argmax(~np.isfinite(res["train_loss"][0])))
        np.testing.assert_array_equal(res["diverged_epoch"], [first])
        self.assertFalse((out / results.CHECKPOINT).exists())  # its NaN states are not kept
        self.assertEqual(outcome.run_status(res), f"diverged at epoch {first}")
        with self.assertRaisesRegex(
            errors.ConfigError, f"diverged at epoch {first}: it cannot be resumed.*--overwrite"
        ):
            experiment.prepare_run_dir(out, config, False)
        paths = plotting.save_run_figures(res, out, "diverging")  # what it measured before, drawn
        self.assertLen(paths, 3)
        self.assertTrue(
            plotting.plane.plane_title(res, "diverging", "train").startswith(
                f"diverging [diverged at epoch {first}] — "
            )
        )


def _one_layer_run(estimator_names, folder: str):
    """A 10-epoch run of a one-hidden-layer network measured by `estimator_names`, and the same
    network trained separately: (config, dataset, results, its training state at epoch 10)."""
    train_config = dataclasses.replace(testing.TINY.train, hidden=(5,))
    # Splits of one size: the direct measurements compile each estimator once, not per split.
    config = dataclasses.replace(
        testing.TINY, train=train_config, estimators=estimator_names, epochs=10, train_size=256
    )
    dataset = experiment.load_dataset(config)
    out = experiment.prepare_output_dir(pathlib.Path(tempfile.mkdtemp()) / folder, False)
    res = experiment.run(config, dataset, out)
    init_key, shuffle_key = jax.random.split(jax.random.key(config.seed))
    state = train.create_state(init_key, train_config, 12, 2)
    for epoch in range(10):
        key = jax.random.fold_in(shuffle_key, epoch)
        state, _, _ = train.jit_train_epoch(state, key, dataset.x_train, dataset.y_train, train_config)
    return config, dataset, res, state, out


class DecodableRunTest(chex.TestCase):
    """probe (the main estimator: I(T;Y) only) and knn in a run of their own, one hidden layer."""

    def test_probe_and_knn_in_a_run(self):
        """Epoch 10's values equal the estimators on a direct forward pass; the probe's I(X;T) is
        NaN and its planes take knn's (`plane_x`); its diagnostics, figures and tidy rows."""
        config, dataset, res, state, out = _one_layer_run(testing.DECODABLE, "decodable")
        _, layers = train.evaluate(state.apply_fn, state.params, dataset.x_train, dataset.y_train)
        probe, knn = experiment.measured_estimators(config)
        _, i_ty = estimators.information_plane(layers, dataset.y_train, estimator=probe)
        np.testing.assert_allclose(res["probe.i_ty_train"][0, 1], i_ty, atol=1e-4)
        i_xt, i_ty = estimators.information_plane(layers, dataset.y_train, estimator=knn, inputs=dataset.x_train)
        np.testing.assert_allclose(res["knn.i_xt_train"][0, 1], i_xt, atol=1e-5)
        np.testing.assert_allclose(res["knn.i_ty_train"][0, 1], i_ty, atol=1e-5)
        self.assertTrue(np.isnan(res["probe.i_xt_test"]).all() and np.isnan(res["i_xt_train"]).all())
        self.assertEqual(str(res["plane_x"]), "knn")
        for key in ("probe.accuracy_train", "probe.accuracy_test", "probe.change_train", "probe.change_test"):
            chex.assert_shape(res[key], res["probe.i_ty_train"].shape)
        self.assertTrue(np.all((res["probe.accuracy_test"] >= 0) & (res["probe.accuracy_test"] <= 1)))
        self.assertLess(np.abs(res["probe.change_train"]).max(), 0.05)
        view = results.estimator_view(res, "probe")  # the planes pair the probe's I(T;Y) with knn's I(X;T)
        self.assertEqual(view["i_xt_by"], "knn")
        np.testing.assert_array_equal(view["i_xt_train"], res["knn.i_xt_train"])
        drawn = {p.name for p in plotting.save_run_figures(res, out)}
        self.assertLessEqual({"information_plane.png", "decodable_information.png"}, drawn)
        table = results.to_records(out)
        rows_of = lambda name: table[table["estimator"] == name]  # noqa: E731
        self.assertTrue(
            np.isnan(rows_of("probe")["i_xt"]).all() and np.isnan(rows_of("knn")["held_out_accuracy"]).all()
        )
        self.assertTrue(np.isfinite(rows_of("probe")["held_out_accuracy"]).all())


class NoisyRunTest(chex.TestCase):
    """A network with Gaussian dropout in its first hidden layer, measured by noise_mc, sliced
    and binned: the values equal the estimators on a direct forward pass with the same draws;
    a stopped run resumes to the same numbers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        train_config = dataclasses.replace(
            testing.TINY.train, hidden=(5, 4), layer_noise="gaussian_dropout:0.2", noisy_layers=(1,)
        )
        cls.config = dataclasses.replace(
            testing.TINY,
            train=train_config,
            estimators=("noise_mc", *testing.NOISY[1:], "binned"),
            epochs=10,
            mi_every=5,
            sliced_slices=8,
            noise_samples=3,
        )
        cls.dataset = experiment.load_dataset(cls.config)
        cls.tmp = tempfile.mkdtemp()
        cls.full = experiment.run(cls.config, cls.dataset, experiment.prepare_output_dir(f"{cls.tmp}/full", False))

    def test_values_equal_a_direct_measurement_with_the_same_draws(self):
        config, dataset = self.config, self.dataset
        init_key, shuffle_key = jax.random.split(jax.random.key(config.seed))
        state = train.create_state(init_key, config.train, 12, 2)
        for epoch in range(10):
            key = jax.random.fold_in(shuffle_key, epoch)
            state, _, _ = train.jit_train_epoch(state, key, dataset.x_train, dataset.y_train, config.train)
        noise_mc, sliced, binned = experiment.measured_estimators(config)
        splits = (("train", dataset.x_train, dataset.y_train), ("test", dataset.x_test, dataset.y_test))
        for split_index, (split, x, y) in enumerate(splits):
            _, means = train.evaluate(state.apply_fn, state.params, x, y)
            key = jax.random.fold_in(jax.random.fold_in(shuffle_key, 10), program._MEASURE_TAG + split_index)
            noisy = config.train.noise.measured(key, means)
            self.assertTrue(np.all(np.asarray(noisy[1]) == np.asarray(means[1])))  # layer 2 carries none
            self.assertFalse(np.allclose(noisy[0], means[0]))
            # noise_mc's draws follow the activations' last bits (as kde_mc's), which two passes
            # may not share: equal within its Monte Carlo error.
            i_xt, i_ty = estimators.information_plane(means, y, estimator=noise_mc)
            for quantity, direct in (("xt", i_xt), ("ty", i_ty)):
                got, se = (
                    self.full[f"noise_mc.i_{quantity}_{split}"][0, 2],
                    self.full[f"noise_mc.se_{quantity}_{split}"][0, 2],
                )
                np.testing.assert_allclose(got[0], direct[0], atol=6 * se[0] + 1e-4)
            i_xt, i_ty = estimators.information_plane(noisy, y, estimator=sliced, inputs=x)
            np.testing.assert_allclose(self.full[f"sliced.i_xt_{split}"][0, 2], i_xt, atol=1e-5)
            np.testing.assert_allclose(self.full[f"sliced.i_ty_{split}"][0, 2], i_ty, atol=1e-5)
            i_xt, _ = estimators.information_plane(noisy, y, estimator=binned)
            np.testing.assert_allclose(self.full[f"binned.i_xt_{split}"][0, 2], i_xt, atol=1e-5)
        # Only the noisy layer has noise_mc values; every measured value has its standard error.
        self.assertTrue(np.isnan(self.full["noise_mc.i_xt_train"][..., 1:]).all())
        self.assertTrue(np.isfinite(self.full["noise_mc.i_xt_train"][..., 0]).all())
        for name in ("noise_mc", "sliced"):
            for key in ("se_xt_train", "se_ty_test"):
                values = self.full[f"{name}.{key}"]
                chex.assert_shape(values, self.full[f"{name}.i_xt_train"].shape)
                measured = np.isfinite(self.full[f"{name}.i_xt_train"])
                self.assertTrue(np.all(values[measured] >= 0) and np.isfinite(values[measured]).all())

    def test_stop_and_resume_equal_an_uninterrupted_run(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/stopped", False)
        keys = ("noise_mc.i_xt_train", "noise_mc.se_ty_test", "sliced.i_xt_test", "binned.i_xt_train", "train_loss")
        _resumed_equals(self, self.config, self.dataset, out, self.full, keys)


class ConfidenceRunTest(chex.TestCase):
    """A run with bootstrap errors, a permutation null and the convergence check at every measured
    epoch: the keys are written, load, view and draw; a stopped run resumes to the same numbers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = dataclasses.replace(
            testing.TINY,
            estimators=("binned", "kde_upper"),
            epochs=10,
            mi_every=5,
            bootstrap=3,
            null_permutations=4,
            convergence="every",
        )
        cls.dataset = experiment.load_dataset(cls.config)
        cls.tmp = tempfile.mkdtemp()
        out = experiment.prepare_output_dir(f"{cls.tmp}/full", False)
        cls.full = experiment.run(cls.config, cls.dataset, out)

    def test_keys_are_written_and_load(self):
        res = results.load_results(f"{self.tmp}/full")
        shape = res["binned.i_xt_train"].shape  # [1, 3, 3]
        for name in self.config.estimators:
            for key in results.MI_KEYS:
                se = res[f"{name}.{key}_se"]
                chex.assert_shape(se, shape)
                self.assertTrue(np.all(np.isfinite(se) & (se >= 0)), msg=f"{name}.{key}")
                by_n = res[f"{name}.{key}_by_n"]
                chex.assert_shape(by_n, (*shape, 4))
                np.testing.assert_array_equal(by_n[..., 3], res[f"{name}.{key}"])  # N itself: the value
                self.assertTrue(np.isfinite(by_n).all())
            for split in ("train", "test"):
                mean, p95 = res[f"{name}.i_ty_{split}_null_mean"], res[f"{name}.i_ty_{split}_null_p95"]
                self.assertTrue(np.all(p95 >= mean - 1e-6))
                not_above = ~(res[f"{name}.i_ty_{split}"] > p95 + results.NULL_TOLERANCE_BITS)
                np.testing.assert_array_equal(res[f"{name}.i_ty_{split}_not_above_null"], not_above)
                self.assertNotIn(f"{name}.i_xt_{split}_null_mean", res)
        np.testing.assert_array_equal(res["convergence_n_train"], [32, 64, 128, 256])
        view = results.estimator_view(res, "kde_upper")
        np.testing.assert_array_equal(view["i_ty_test_se"], res["kde_upper.i_ty_test_se"])
        self.assertEqual(outcome.convergence_epoch(res, "binned"), 2)
        self.assertEqual(set(outcome.null_layers(res, "binned")), {"train", "test"})
        paths = plotting.save_run_figures(res, self.tmp)
        self.assertIn(pathlib.Path(self.tmp) / "convergence.png", paths)

    def test_values_equal_a_direct_measurement(self):
        """Epoch 10's standard errors and null equal `common.measure` of the same estimators on a
        direct forward pass with the same draws."""
        config, dataset = self.config, self.dataset
        init_key, shuffle_key = jax.random.split(jax.random.key(config.seed))
        state = train.create_state(init_key, config.train, 12, 2)
        for epoch in range(10):
            state, _, _ = train.jit_train_epoch(
                state, jax.random.fold_in(shuffle_key, epoch), dataset.x_train, dataset.y_train, config.train
            )
        _, layers = train.evaluate(state.apply_fn, state.params, dataset.x_train, dataset.y_train)
        for estimator in experiment.measured_estimators(config):
            _, _, extras = estimators.common.measure(
                layers, dataset.y_train, estimator, with_extras=True, confidence=config.confidence
            )
            name = estimator.name
            np.testing.assert_allclose(self.full[f"{name}.i_xt_train_se"][0, 2], extras["i_xt_se"], atol=1e-5)
            np.testing.assert_allclose(
                self.full[f"{name}.i_ty_train_null_p95"][0, 2], extras["i_ty_null_p95"], atol=1e-5
            )

    def test_stop_and_resume_equal_an_uninterrupted_run(self):
        out = experiment.prepare_output_dir(f"{self.tmp}/stopped", False)
        keys = ("binned.i_xt_train_se", "kde_upper.i_ty_test_null_p95", "binned.i_ty_train_by_n")
        _resumed_equals(self, self.config, self.dataset, out, self.full, keys)


class SlowCompilingEstimatorsRunTest(chex.TestCase):
    """kde_mc, renyi and edge (the estimators slowest to compile; renyi and edge need the inputs
    X) in a run of their own: one hidden layer, so that their compilation stays small."""

    def test_each_split_is_measured_with_its_own_inputs(self):
        """Epoch 10's renyi and edge equal the estimators on a direct forward pass with x_train
        (and x_test) of the network trained separately; kde_mc is at most log2 N (its draws
        follow the activations' last bits, which two passes may not share); config.json records
        their settings."""
        config, dataset, res, state, out = _one_layer_run(testing.SLOW_COMPILING, "inputs")
        for split, x, y in (("train", dataset.x_train, dataset.y_train), ("test", dataset.x_test, dataset.y_test)):
            _, layers = train.evaluate(state.apply_fn, state.params, x, y)
            for estimator in experiment.measured_estimators(config)[1:]:  # renyi, edge
                i_xt, i_ty = estimators.information_plane(layers, y, estimator=estimator, inputs=x)
                np.testing.assert_allclose(res[f"{estimator.name}.i_xt_{split}"][0, 1], i_xt, atol=1e-5)
                np.testing.assert_allclose(res[f"{estimator.name}.i_ty_{split}"][0, 1], i_ty, atol=1e-5)
        self.assertTrue(np.all(res["kde_mc.i_xt_train"] <= np.log2(256) + 1e-5))
        self.assertTrue(np.all(res["kde_mc.i_ty_test"] >= 0.0))
        self.assertEqual(
            json.loads((out / "config.json").read_text())["estimators"],
            [
                {"name": "kde_mc", "type": "KDE", "noise_variance": 0.01, "bound": "mc", "mc_samples": 4, "seed": 0},
                {"name": "renyi", "type": "Renyi", "alpha": 1.01, "batch_size": 200, "sigma": None},
                {
                    "name": "edge",
                    "type": "EDGE",
                    "num_estimates": 5,
                    "layer_scale": 1.0,
                    "input_scale": 0.001,
                    "seed": 0,
                },
            ],
        )


if __name__ == "__main__":
    absltest.main()
