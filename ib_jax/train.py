"""Training: optax optimisers, a fused train step that returns the layers' activations, epochs
under `lax.scan` with shuffling on the device, and evaluation.

All functions are pure; the config is static and the PRNG key is explicit, so a run is fully
determined by its seed and the same functions vmap over seeds.
"""

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from ib_jax import errors, model

OPTIMIZERS = ("adam", "sgd")
REDUCTIONS = ("mean", "sum")

Batch = tuple[jax.Array, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The network and its optimiser. Defaults: the reimplemented project's MNIST setting.

    `batch_size=0` trains full batch (one step per epoch on the whole training set).
    `loss_reduction` sums or averages the cross-entropy over a batch ("sum" is what the
    reimplemented project does; with Adam it changes little, with SGD it scales the step).
    """

    hidden: tuple[int, ...] = (784, 1024, 1024, 20, 20, 20, 10)
    activation: str = "tanh"
    init: str = "default"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 0
    loss_reduction: str = "sum"

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise errors.ConfigError(f"hidden widths must be positive integers, got {self.hidden}")
        model.check_names(self.activation, self.init)
        if self.optimizer not in OPTIMIZERS:
            raise errors.ConfigError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.loss_reduction not in REDUCTIONS:
            raise errors.ConfigError(f"loss_reduction must be one of {', '.join(REDUCTIONS)}")
        if not self.learning_rate > 0.0:
            raise errors.ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.momentum < 1.0:
            raise errors.ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.momentum and self.optimizer != "sgd":
            raise errors.ConfigError("momentum applies to --optimizer=sgd only")
        if self.batch_size < 0:
            raise errors.ConfigError(f"batch_size must be >= 0 (0 = full batch), got {self.batch_size}")


def make_model(config: TrainConfig, num_classes: int) -> model.MLP:
    return model.MLP(
        hidden=config.hidden, num_classes=num_classes, activation=config.activation, kernel_init=config.init
    )


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    if config.optimizer == "adam":
        return optax.adam(config.learning_rate)
    return optax.sgd(config.learning_rate, momentum=config.momentum or None)


def create_state(key: jax.Array, config: TrainConfig, input_dim: int, num_classes: int) -> train_state.TrainState:
    """Initialises parameters from `key` and the optimiser state."""
    net = make_model(config, num_classes)
    params = net.init(key, jnp.zeros((1, input_dim), jnp.float32))["params"]
    return train_state.TrainState.create(apply_fn=net.apply, params=params, tx=make_optimizer(config))


def cross_entropy(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Per-sample softmax cross-entropy [B] in nats."""
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)


def _metrics(logits_BxC: jax.Array, labels_B: jax.Array, losses_B: jax.Array) -> Metrics:
    """Mean per-sample loss (whatever the reduction used for the gradient) and accuracy."""
    accuracy = jnp.mean(jnp.argmax(logits_BxC, axis=-1) == labels_B)
    return {"loss": jnp.mean(losses_B), "accuracy": accuracy}


def train_step(
    state: train_state.TrainState, batch: Batch, reduction: str = "mean"
) -> tuple[train_state.TrainState, Metrics, tuple[jax.Array, ...]]:
    """One optimiser step. Returns the new state, the batch's metrics and the activations of
    every layer from the same forward pass that gave the gradient (before the update)."""
    x_BxF, labels_B = batch

    def loss_fn(params):
        logits, acts = state.apply_fn({"params": params}, x_BxF)
        losses = cross_entropy(logits, labels_B)
        total = jnp.sum(losses) if reduction == "sum" else jnp.mean(losses)
        return total, (logits, losses, acts)

    grads, (logits, losses, acts) = jax.grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), _metrics(logits, labels_B, losses), acts


def train_epoch(
    state: train_state.TrainState, key: jax.Array, x_NxF: jax.Array, labels_N: jax.Array, config: TrainConfig
) -> tuple[train_state.TrainState, Metrics, tuple[jax.Array, ...] | None]:
    """One epoch. Full batch: a single step whose activations are returned. Minibatch: a seeded
    permutation (from `key`) cut into `N // batch_size` batches under `lax.scan`; the last
    incomplete batch is dropped (a different remainder each epoch); activations are None.
    Metrics are averaged over the epoch's batches."""
    n = x_NxF.shape[0]
    if config.batch_size == 0 or config.batch_size >= n:
        return train_step(state, (x_NxF, labels_N), config.loss_reduction)
    num_batches = n // config.batch_size
    perm = jax.random.permutation(key, n)[: num_batches * config.batch_size]
    perm_BxS = perm.reshape(num_batches, config.batch_size)

    def body(carry, idx_S):
        new_state, metrics, _ = train_step(carry, (x_NxF[idx_S], labels_N[idx_S]), config.loss_reduction)
        return new_state, metrics

    state, metrics = jax.lax.scan(body, state, perm_BxS)
    return state, jax.tree.map(jnp.mean, metrics), None


def evaluate(apply_fn, params, x_NxF: jax.Array, labels_N: jax.Array) -> tuple[Metrics, tuple[jax.Array, ...]]:
    """Loss and accuracy on a split, with every layer's activations."""
    logits, acts = apply_fn({"params": params}, x_NxF)
    return _metrics(logits, labels_N, cross_entropy(logits, labels_N)), acts


def layer_widths(config: TrainConfig, num_classes: int) -> Sequence[int]:
    """The widths of the information plane's layers: the hidden layers, then the logits."""
    return (*config.hidden, num_classes)


jit_train_step = jax.jit(train_step, static_argnames="reduction", donate_argnums=0)
jit_train_epoch = jax.jit(train_epoch, static_argnames="config")
