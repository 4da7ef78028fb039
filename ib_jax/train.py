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


def _loss_and_grads(state: train_state.TrainState, params, batch: Batch, reduction: str):
    """Gradient of the batch's loss at `params`, with the forward pass's logits, per-sample
    losses and activations."""
    x_BxF, labels_B = batch

    def loss_fn(p):
        logits, acts = state.apply_fn({"params": p}, x_BxF)
        losses = cross_entropy(logits, labels_B)
        total = jnp.sum(losses) if reduction == "sum" else jnp.mean(losses)
        return total, (logits, losses, acts)

    return jax.grad(loss_fn, has_aux=True)(params)


def train_step(
    state: train_state.TrainState, batch: Batch, reduction: str = "mean"
) -> tuple[train_state.TrainState, Metrics, tuple[jax.Array, ...]]:
    """One optimiser step. Returns the new state, the batch's metrics and the activations of
    every layer from the same forward pass that gave the gradient (before the update)."""
    grads, (logits, losses, acts) = _loss_and_grads(state, state.params, batch, reduction)
    return state.apply_gradients(grads=grads), _metrics(logits, batch[1], losses), acts


def kernels(params) -> tuple[jax.Array, ...]:
    """Each layer's weight matrix, input layer first (the MLP's "Dense_i" kernels)."""
    return tuple(params[f"Dense_{i}"]["kernel"] for i in range(len(params)))


def _frobenius(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x)))


def weight_norms(params) -> jax.Array:
    """|W|_F of each layer's kernel [L]."""
    return jnp.stack([_frobenius(w) for w in kernels(params)])


def _welford_init(params):
    zeros = [jnp.zeros_like(k) for k in kernels(params)]
    return jnp.float32(0.0), zeros, zeros


def _welford(stats, grads_K):
    """One step of Welford's numerically stable running mean and sum of squared deviations."""
    count, mean, m2 = stats
    count = count + 1.0
    delta = [g - m for g, m in zip(grads_K, mean)]
    mean = [m + d / count for m, d in zip(mean, delta)]
    m2 = [v + d * (g - m) for v, d, g, m in zip(m2, delta, grads_K, mean)]
    return count, mean, m2


def gradient_norms(mean_K, var_K, params) -> dict[str, jax.Array]:
    """Per layer [L]: |mean gradient|_F, |element-wise std|_F, |W|_F (W from `params`)."""
    return {
        "grad_mean_norm": jnp.stack([_frobenius(m) for m in mean_K]),
        "grad_std_norm": jnp.stack([_frobenius(jnp.sqrt(jnp.maximum(v, 0.0))) for v in var_K]),
        "weight_norm": weight_norms(params),
    }


def train_epoch(
    state: train_state.TrainState,
    key: jax.Array,
    x_NxF: jax.Array,
    labels_N: jax.Array,
    config: TrainConfig,
    gradient_stats: bool = False,
    sub_batches: int = 16,
) -> tuple[train_state.TrainState, Metrics, tuple[jax.Array, ...] | None]:
    """One epoch. Full batch: a single step whose activations are returned. Minibatch: a seeded
    permutation (from `key`) cut into `N // batch_size` batches under `lax.scan`; the last
    incomplete batch is dropped (a different remainder each epoch); activations are None.
    Metrics are averaged over the epoch's batches.

    With `gradient_stats`, the metrics also hold, per layer [L], the Frobenius norms of the mean
    and of the element-wise standard deviation (over the epoch's minibatches) of the kernel
    gradients the steps used, taken before each update and accumulated in the scan (Welford's
    running mean and sum of squares, no per-step storage), and |W|_F after the epoch. Full
    batch: the batch is split into `sub_batches` equal parts (the remainder dropped) whose
    gradients are taken one after another at the epoch's parameters (accumulated the same way),
    beside the unchanged full-batch update.
    """
    n = x_NxF.shape[0]
    if config.batch_size == 0 or config.batch_size >= n:
        new_state, metrics, acts = train_step(state, (x_NxF, labels_N), config.loss_reduction)
        if gradient_stats:  # the parts one after another, accumulated like minibatches
            size = n // sub_batches
            parts = lambda a: a[: size * sub_batches].reshape(sub_batches, size, *a.shape[1:])  # noqa: E731

            def part(carry, batch):
                grads, _ = _loss_and_grads(state, state.params, batch, config.loss_reduction)
                return _welford(carry, kernels(grads)), None

            (count, mean, m2), _ = jax.lax.scan(part, _welford_init(state.params), (parts(x_NxF), parts(labels_N)))
            metrics |= gradient_norms(mean, [v / count for v in m2], new_state.params)
        return new_state, metrics, acts
    num_batches = n // config.batch_size
    perm = jax.random.permutation(key, n)[: num_batches * config.batch_size]
    perm_BxS = perm.reshape(num_batches, config.batch_size)

    def body(carry, idx_S):
        state, stats = carry
        batch = (x_NxF[idx_S], labels_N[idx_S])
        grads, (logits, losses, _) = _loss_and_grads(state, state.params, batch, config.loss_reduction)
        if gradient_stats:
            stats = _welford(stats, kernels(grads))
        return (state.apply_gradients(grads=grads), stats), _metrics(logits, batch[1], losses)

    stats = _welford_init(state.params) if gradient_stats else None
    (state, stats), metrics = jax.lax.scan(body, (state, stats), perm_BxS)
    metrics = jax.tree.map(jnp.mean, metrics)
    if gradient_stats:
        count, mean, m2 = stats
        metrics |= gradient_norms(mean, [v / count for v in m2], state.params)
    return state, metrics, None


def evaluate(apply_fn, params, x_NxF: jax.Array, labels_N: jax.Array) -> tuple[Metrics, tuple[jax.Array, ...]]:
    """Loss and accuracy on a split, with every layer's activations."""
    logits, acts = apply_fn({"params": params}, x_NxF)
    return _metrics(logits, labels_N, cross_entropy(logits, labels_N)), acts


def layer_widths(config: TrainConfig, num_classes: int) -> Sequence[int]:
    """The widths of the information plane's layers: the hidden layers, then the logits."""
    return (*config.hidden, num_classes)


jit_train_step = jax.jit(train_step, static_argnames="reduction", donate_argnums=0)
jit_train_epoch = jax.jit(train_epoch, static_argnames=("config", "gradient_stats", "sub_batches"))
