"""ib_jax: the information plane of neural networks in JAX."""

from ib_jax import data, errors, information, mnist, model, tishby, train
from ib_jax.data import Dataset
from ib_jax.errors import ConfigError, DataError
from ib_jax.information import Binning, binned_information, information_plane
from ib_jax.model import MLP
from ib_jax.train import TrainConfig

__all__ = [
    "Binning",
    "binned_information",
    "information_plane",
    "MLP",
    "ConfigError",
    "DataError",
    "Dataset",
    "TrainConfig",
    "data",
    "errors",
    "information",
    "mnist",
    "model",
    "tishby",
    "train",
]
__version__ = "0.1.0"
