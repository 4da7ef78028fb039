"""ib_jax: the information plane of neural networks in JAX."""

from ib_jax import (
    capture,
    data,
    errors,
    estimators,
    experiment,
    mnist,
    model,
    models,
    outcome,
    quantization,
    recorder,
    results,
    tidy,
    tishby,
    train,
)
from ib_jax.data import Dataset
from ib_jax.errors import ConfigError, DataError
from ib_jax.estimators import (
    KDE,
    AdaptiveBinning,
    Binning,
    Exact,
    adaptive_binned_information,
    binned_information,
    exact_information,
    information_plane,
    kde_information,
)
from ib_jax.experiment import ExperimentConfig
from ib_jax.model import MLP
from ib_jax.quantization import quantize
from ib_jax.recorder import Recorder
from ib_jax.train import TrainConfig

__all__ = [
    "KDE",
    "AdaptiveBinning",
    "Binning",
    "Exact",
    "adaptive_binned_information",
    "binned_information",
    "exact_information",
    "information_plane",
    "kde_information",
    "MLP",
    "ExperimentConfig",
    "Recorder",
    "ConfigError",
    "DataError",
    "Dataset",
    "TrainConfig",
    "capture",
    "data",
    "errors",
    "estimators",
    "experiment",
    "mnist",
    "model",
    "models",
    "outcome",
    "quantization",
    "quantize",
    "recorder",
    "results",
    "tidy",
    "tishby",
    "train",
]
__version__ = "0.1.0"
