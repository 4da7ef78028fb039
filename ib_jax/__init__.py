"""ib_jax: the information plane of neural networks in JAX."""

from ib_jax import data, errors, estimators, mnist, model, tishby, train
from ib_jax.data import Dataset
from ib_jax.errors import ConfigError, DataError
from ib_jax.estimators import (
    KDE,
    AdaptiveBinning,
    Binning,
    adaptive_binned_information,
    binned_information,
    information_plane,
    kde_information,
)
from ib_jax.model import MLP
from ib_jax.train import TrainConfig

__all__ = [
    "KDE",
    "AdaptiveBinning",
    "Binning",
    "adaptive_binned_information",
    "binned_information",
    "information_plane",
    "kde_information",
    "MLP",
    "ConfigError",
    "DataError",
    "Dataset",
    "TrainConfig",
    "data",
    "errors",
    "estimators",
    "mnist",
    "model",
    "tishby",
    "train",
]
__version__ = "0.1.0"
