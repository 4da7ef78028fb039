"""What determines a run's results: `ExperimentConfig`, its estimators and its schedule."""

import dataclasses
import json
import math
from typing import Any

import numpy as np

from ib_jax import data, errors, estimators, models, results
from ib_jax import train as train_lib
from ib_jax.estimators.common import Confidence
from ib_jax.rows import conditions_of, parse_condition


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run's results. Defaults: the reimplemented project's MNIST
    experiment (full-batch Adam 1e-3, summed loss, 4,000 epochs, MI every 20 epochs, bin 0.5).

    `seed` and `num_seeds`: seeds seed, ..., seed + num_seeds - 1, each its own initialisation
    and batch order. `data_seed` draws the subsets, the 12-bit split and the random labels, so
    all seeds of a run see the same data; with `per_seed_labels`, each seed s randomises the
    training labels with its own generator seeded by (data_seed, s).
    `mi_every` k measures at epochs 0, k, 2k, ... and at `epochs`; `mi_log_points` n > 0
    instead measures at n log-spaced epochs between 1 and `epochs` (rounded down, duplicates
    dropped; n = 400 gives IDNNs' 274 epochs for 8,000), and at 0 and `epochs`.
    `conditions` (empty: the one condition that `random_labels` / `label_corruption` describe)
    makes a sweep: rows = conditions x seeds, condition-major, each row its own seed, training
    labels and inputs, all in one program. A condition is "true", "labels:p" (Zhang's partial
    corruption with probability p), "permuted" (one permutation of the labels) or an input
    corruption from `data.INPUT_CORRUPTIONS`; label randomisations and input corruptions are
    drawn from `data_seed` (from (data_seed, seed) with `per_seed_labels`). A row's
    epochs-to-fit is the first epoch whose training accuracy reaches `fit_threshold`.
    `gradient_stats`: at every scheduled epoch, per layer, the norms of the mean and of the
    standard deviation of the kernel gradients over the epoch's minibatches (full batch:
    `gradient_sub_batches` parts of the batch at the epoch's parameters; 0: `AUTO_SUB_BATCHES`, or
    the training set's size if smaller) and |W|_F; see
    `train.train_epoch`.
    `estimators`: names from `ib_jax.estimators.ESTIMATORS`, all measured at every scheduled
    epoch; the first is the run's main estimator (the unprefixed keys of results.npz). `binning`
    is the "binned" estimator's, `kde_noise_variance` the KDE family's, `adaptive_bins` the
    adaptive binnings', `renyi_alpha` and `renyi_batch` the matrix-based Rényi estimator's.
    `bias_correction` (`estimators.corrections.CORRECTIONS`) applies to the plug-in estimators
    (binned, adaptive, exact). `knn_neighbours` is the k-NN estimators' k; `probe_folds`, `probe_hidden`
    and `probe_steps` are the probe's (`estimators.Probe`); `noise_samples` is noise_mc's draws
    per sample, `sliced_slices` and `sliced_dim` the sliced estimator's. `plane_x` names the estimator whose
    I(X;T) the planes pair with the I(T;Y) of an estimator that measures only I(T;Y) (the
    probe); "" = the first listed that measures I(X;T). `bootstrap` B >= 2 adds each value's
    standard error over B resamples of the measured samples, `null_permutations` P >= 2 the
    estimate of I(T;Y) under P shuffles of the labels (`estimators.common.Confidence`);
    `convergence` measures each value again on nested subsets of N / 8, N / 4 and N / 2 samples,
    of the final network ("final"), at every measured epoch ("every") or never ("none").
    `mi_subset` n > 0 measures the
    information on a fixed, stratified subset of n samples of each
    split (`rows.measured_subset`; training and metrics still use every sample).
    """

    dataset: str = "mnist"
    train: train_lib.TrainConfig = train_lib.TrainConfig()
    epochs: int = 4000
    mi_every: int = 20
    mi_log_points: int = 0
    binning: estimators.Binning = estimators.Binning(bin_size=0.5)
    estimators: tuple[str, ...] = ("binned",)
    kde_noise_variance: float = 0.1
    adaptive_bins: int = 30
    renyi_alpha: float = 1.01
    renyi_batch: int = 200
    mi_subset: int = 0
    bias_correction: str = "none"
    knn_neighbours: int = 3
    probe_folds: int = 5
    probe_hidden: int = 0
    probe_steps: int = 0
    noise_samples: int = 4
    sliced_slices: int = 1000
    sliced_dim: int = 1
    plane_x: str = ""
    bootstrap: int = 0
    null_permutations: int = 0
    convergence: str = "final"
    train_size: int = 0
    test_size: int = 0
    test_fraction: float = 0.2
    evaluate_on_all: bool = False
    random_labels: bool = False
    label_corruption: float = 0.0
    per_seed_labels: bool = False
    conditions: tuple[str, ...] = ()
    fit_threshold: float = 0.99
    gradient_stats: bool = True
    gradient_sub_batches: int = 0
    seed: int = 0
    num_seeds: int = 1
    data_seed: int = 0

    def __post_init__(self):
        data.check_dataset_name(self.dataset)
        if self.epochs < 1:
            raise errors.ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.mi_every < 1:
            raise errors.ConfigError(f"mi_every must be >= 1, got {self.mi_every}")
        if self.mi_log_points < 0:
            raise errors.ConfigError(f"mi_log_points must be >= 0, got {self.mi_log_points}")
        if self.mi_subset < 0:
            raise errors.ConfigError(f"mi_subset must be >= 0 (0 = every sample), got {self.mi_subset}")
        if self.num_seeds < 1:
            raise errors.ConfigError(f"num_seeds must be >= 1, got {self.num_seeds}")
        if self.train_size < 0 or self.test_size < 0:
            raise errors.ConfigError("train_size and test_size must be >= 0 (0 = all)")
        if self.seed < 0 or self.data_seed < 0:
            raise errors.ConfigError("seeds must be >= 0")
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if self.random_labels and self.label_corruption:
            raise errors.ConfigError(
                "give random_labels (a permutation of the labels) or label_corruption (each label replaced with "
                "probability p), not both"
            )
        if self.conditions and (self.random_labels or self.label_corruption):
            raise errors.ConfigError("give conditions, or random_labels / label_corruption, not both")
        if len(set(self.conditions)) != len(self.conditions):
            raise errors.ConfigError(f"conditions are listed twice: {', '.join(self.conditions)}")
        parsed = [parse_condition(c) for c in conditions_of(self)]
        if self.per_seed_labels and not any(name in ("labels", "permuted") for name, _ in parsed):
            raise errors.ConfigError("per_seed_labels needs random_labels or label_corruption (a label condition)")
        if self.gradient_sub_batches == 1 or self.gradient_sub_batches < 0:
            raise errors.ConfigError(f"gradient_sub_batches must be 0 (auto) or >= 2, got {self.gradient_sub_batches}")
        if not 0.0 < self.fit_threshold <= 1.0:
            raise errors.ConfigError(f"fit_threshold must be in (0, 1], got {self.fit_threshold}")
        object.__setattr__(self, "estimators", tuple(self.estimators))
        if not self.estimators:
            raise errors.ConfigError("give at least one estimator")
        if len(set(self.estimators)) != len(self.estimators):
            raise errors.ConfigError(f"estimators are listed twice: {', '.join(self.estimators)}")
        try:
            estimators.KDE(self.kde_noise_variance)  # checked even when not measured
            estimators.AdaptiveBinning(self.adaptive_bins)
            estimators.Renyi(self.renyi_alpha, self.renyi_batch)
            estimators.binned.check_bias_correction(self.bias_correction)
            estimators.Probe(self.probe_folds, self.probe_hidden, self.probe_steps)
            estimators.KNN(self.knn_neighbours)
            estimators.Sliced(self.sliced_slices, self.sliced_dim, self.knn_neighbours)
            estimators.noise_mc.check_samples(self.noise_samples)
            chosen = measured_estimators(self)
            confidence = self.confidence
        except ValueError as e:
            raise errors.ConfigError(str(e)) from None
        if self.convergence not in CONVERGENCE:
            raise errors.ConfigError(f"convergence must be one of {', '.join(CONVERGENCE)}, got {self.convergence!r}")
        if confidence.bootstrap:
            for e in chosen:
                if not e.resamples:
                    raise errors.ConfigError(f"--bootstrap does not apply to the {e.name} estimator: {e.resamples_why}")
        if self.plane_x:
            if self.plane_x not in self.estimators:
                listed = ", ".join(self.estimators)
                raise errors.ConfigError(f"plane_x {self.plane_x} is not one of the estimators ({listed})")
            if not chosen[self.estimators.index(self.plane_x)].measures_xt:
                raise errors.ConfigError(f"plane_x {self.plane_x} does not measure I(X;T): name one that does")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def confidence(self) -> Confidence:
        """The bootstrap and the permutation null of every measured value."""
        return Confidence(self.bootstrap, self.null_permutations)


CONVERGENCE = ("none", "final", "every")


AUTO_SUB_BATCHES = 16  # the sub-batches of the full-batch gradient statistics, when not given


def sub_batches(config: ExperimentConfig, num_train: int) -> int:
    """The parts of the full batch whose gradients give the statistics."""
    return config.gradient_sub_batches or max(1, min(AUTO_SUB_BATCHES, num_train))


def check_sample_counts(config: ExperimentConfig, dataset: data.Dataset) -> None:
    """One rule for every sample count (ConfigError, one line), checked on the whole data set
    before any subset is drawn: `train_size`, `test_size` and `mi_subset` are 0 (all) or hold
    every class (at least `num_classes`: a stratified subset takes at least one sample of each,
    and a split without some class measures a different H(Y)), and a subset of the data is no
    larger than its split. A measured subset larger than its (subset) split measures all of it
    (`rows.measured_subset`; the run says so in its log)."""
    k = dataset.num_classes
    for flag, count, split, available in (
        ("--train_size", config.train_size, "training", len(dataset.y_train)),
        ("--test_size", config.test_size, dataset.test_name, len(dataset.y_test)),
        ("--mi_subset", config.mi_subset, "", None),
    ):
        if count and count < k:
            raise errors.ConfigError(
                f"{flag} {count} cannot hold each of the {k} classes: give at least {k} (0 = all), since a "
                "stratified subset takes at least one sample of each class"
            )
        if available is not None and count > available:
            raise errors.ConfigError(f"{flag} {count} exceeds the {available} samples of the {split} split")


def check_against_data(config: ExperimentConfig, dataset: data.Dataset) -> None:
    """The settings that only the data can refute (ConfigError), checked before any folder is
    made: the model against the data's shape (an image model needs images), the sub-batches of
    the gradient statistics and a minibatch against the training set (the sample counts:
    `check_sample_counts`, when the data is loaded)."""
    models.check_data(config.train.model, dataset.image_shape, data.dataset_title(config.dataset), config.train)
    n = len(dataset.y_train)
    if config.gradient_stats and not config.train.batch_size and sub_batches(config, n) > n:
        raise errors.ConfigError(
            f"--gradient_sub_batches {config.gradient_sub_batches} exceeds the {n} training samples"
        )
    if config.train.batch_size > n:
        raise errors.ConfigError(f"--batch_size {config.train.batch_size} exceeds the {n} training samples")


def measured_estimators(config: ExperimentConfig) -> tuple[estimators.Estimator, ...]:
    """The estimator objects of `config.estimators`, in order."""
    return tuple(
        estimators.by_name(
            name,
            binning=config.binning,
            noise_variance=config.kde_noise_variance,
            num_bins=config.adaptive_bins,
            renyi_alpha=config.renyi_alpha,
            renyi_batch=config.renyi_batch,
            bias_correction=config.bias_correction,
            knn_neighbours=config.knn_neighbours,
            probe_folds=config.probe_folds,
            probe_hidden=config.probe_hidden,
            probe_steps=config.probe_steps,
            layer_noise=config.train.layer_noise,
            noisy_layers=config.train.noisy_layers,
            noise_samples=config.noise_samples,
            sliced_slices=config.sliced_slices,
            sliced_dim=config.sliced_dim,
        )
        for name in config.estimators
    )


def estimator_settings(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Each estimator's name, type and parameters, as config.json lists them."""
    return results.estimator_entries(measured_estimators(config))


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(settings, dict):
        out = {}
        for key, value in settings.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: settings}


def differences(saved: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings (`ExperimentConfig.to_dict()`, as a folder keeps them) that differ, one
    "name: saved in the folder, now" text each, nested names dotted ("train.learning_rate"). A
    setting the folder does not hold (it was written before the setting existed) counts as its
    default: an older run continues where `now` keeps that default."""
    a, b = _flat(saved), _flat(json.loads(json.dumps(now)))  # tuples read back as lists, as saved
    defaults = _flat(json.loads(json.dumps(ExperimentConfig().to_dict())))
    for k in b:
        if k not in a and k in defaults:
            a[k] = defaults[k]
    names = [k for k in dict.fromkeys([*a, *b]) if k not in ignore and a.get(k, "(absent)") != b.get(k, "(absent)")]
    return [f"{k}: {a.get(k, '(absent)')} in the folder, {b.get(k, '(absent)')} now" for k in names]


def mi_epochs(config: ExperimentConfig) -> np.ndarray:
    """The sorted epochs at which the information plane is measured."""
    if config.mi_log_points:
        log = np.logspace(0, math.log10(config.epochs), config.mi_log_points).astype(np.int64)
        return np.unique(np.concatenate([[0], log, [config.epochs]]))
    return np.unique(np.concatenate([np.arange(0, config.epochs, config.mi_every), [config.epochs]]))
