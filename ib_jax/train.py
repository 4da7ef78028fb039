"""Training: optax optimisers, a fused train step that returns the layers' activations, epochs
under `lax.scan` with shuffling on the device, and evaluation.

All functions are pure; the config is static and the PRNG key is explicit, so a run is fully
determined by its seed and the same functions vmap over seeds.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from ib_jax import errors, model, models, noise, quantization

OPTIMIZERS = ("adam", "sgd")
_NOISE_TAG = 0x6E6F6973  # folded into an epoch's key for its noise draws (the batch order uses the key itself)
REDUCTIONS = ("mean", "sum")

Batch = tuple[jax.Array, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The network and its optimiser. Defaults: the reimplemented project's MNIST setting.

    `batch_size=0` trains full batch (one step per epoch on the whole training set).
    `loss_reduction` sums or averages the cross-entropy over a batch ("sum" is what the
    reimplemented project does; with Adam it changes little, with SGD it scales the step).
    `quantize_bits` k > 0 quantizes every layer's output to 2**k levels (`quantization`).
    `layer_noise` ("none", "additive:SIGMA", "gaussian_dropout:P") on the 1-based hidden layers
    `noisy_layers` (empty: all) gives the network noise of its own (`noise.LayerNoise`), drawn in
    every training step from the step's key. `lr_decay_epochs` E > 0 decays the learning rate
    along a cosine from its value to 0 over E epochs (Loshchilov & Hutter's schedule without
    restarts; 0 after E), counted in optimiser steps (`steps_per_epoch` of `create_state`); 0:
    constant. `model` names the network (`ib_jax.models.MODELS`: "mlp", "cnn", "resnet"); the
    image models take `channels`, the convolution widths of their blocks or stages, and use
    `hidden` as their dense layers after them (empty: none).
    """

    hidden: tuple[int, ...] = (784, 1024, 1024, 20, 20, 20, 10)
    activation: str = "tanh"
    init: str = "default"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 0
    loss_reduction: str = "sum"
    quantize_bits: int = 0
    layer_noise: str = "none"
    noisy_layers: tuple[int, ...] = ()
    lr_decay_epochs: int = 0
    model: str = "mlp"
    channels: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "noisy_layers", tuple(int(i) for i in self.noisy_layers))
        info = models.info(self.model)
        if min(self.hidden, default=1) < 1:
            raise errors.ConfigError(f"hidden widths must be positive integers, got {self.hidden}")
        if not self.hidden and not info.images:
            raise errors.ConfigError(f"--hidden: the {self.model} needs at least one hidden width")
        if info.images and (not self.channels or min(self.channels) < 1):
            raise errors.ConfigError(f"--model {self.model} needs --channels, positive integers, got {self.channels}")
        if not info.images and self.channels:
            raise errors.ConfigError(f"--channels applies to the image models (cnn, resnet), not --model {self.model}")
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
        try:
            quantization.check_bits(self.quantize_bits)
        except ValueError as e:
            raise errors.ConfigError(str(e)) from None
        if self.batch_size < 0:
            raise errors.ConfigError(f"batch_size must be >= 0 (0 = full batch), got {self.batch_size}")
        if self.lr_decay_epochs < 0:
            raise errors.ConfigError(f"lr_decay_epochs must be >= 0 (0 = a constant rate), got {self.lr_decay_epochs}")
        layer_noise = self.noise  # ConfigError for a bad value (and for noisy_layers without a noise)
        layer_noise.check(info.num_hidden(self))
        if layer_noise.active and self.quantize_bits:
            raise errors.ConfigError(
                "--layer_noise and --quantize_bits do not go together: a quantized network is exact"
            )

    @property
    def noise(self) -> noise.LayerNoise:
        """The network's own noise (`noise.LayerNoise`)."""
        return noise.LayerNoise.parse(self.layer_noise, self.noisy_layers)


def make_model(config: TrainConfig, num_classes: int, image_shape: tuple[int, ...] | None = None):
    """The Linen module of `config.model` (`ib_jax.models`); an image model needs the data's
    `image_shape` (H, W, C)."""
    return models.info(config.model).build(config, num_classes, image_shape)


class TrainState(train_state.TrainState):
    """Flax's TrainState with the network's non-trainable state: the ranges of a quantized
    network's unbounded layers ({} when not quantized)."""

    quantization: Any = None


def variables(state: TrainState, params=None) -> dict[str, Any]:
    """The variables to apply the network with: `params` (default: the state's), and the
    quantization ranges of a quantized network."""
    return _variables(state.params if params is None else params, state.quantization)


def _variables(params, ranges) -> dict[str, Any]:
    return {"params": params, quantization.COLLECTION: ranges} if ranges else {"params": params}


def make_optimizer(config: TrainConfig, steps_per_epoch: int = 1) -> optax.GradientTransformation:
    """The optimiser, its learning rate decayed over `lr_decay_epochs` x `steps_per_epoch` steps
    when asked."""
    rate = config.learning_rate
    if config.lr_decay_epochs:
        rate = optax.cosine_decay_schedule(config.learning_rate, config.lr_decay_epochs * steps_per_epoch)
    if config.optimizer == "adam":
        return optax.adam(rate)
    return optax.sgd(rate, momentum=config.momentum or None)


def steps_per_epoch(config: TrainConfig, num_train: int) -> int:
    """The optimiser steps of one epoch on `num_train` samples (1 full batch, and 1 for none)."""
    if config.batch_size == 0 or config.batch_size >= num_train:
        return 1
    return num_train // config.batch_size


def create_state(
    key: jax.Array,
    config: TrainConfig,
    input_dim: int,
    num_classes: int,
    x_calibrate: jax.Array | None = None,
    num_train: int = 0,
    image_shape: tuple[int, ...] | None = None,
) -> TrainState:
    """Initialises parameters from `key` and the optimiser state. A quantized network calibrates
    its ranges on `x_calibrate` (the training inputs; required then). A decaying learning rate
    counts its epochs in the steps of `num_train` samples (required then). An image model reads
    its flat inputs (`input_dim` = H x W x C) as `image_shape`."""
    net = make_model(config, num_classes, image_shape)
    if config.lr_decay_epochs and num_train < 1:
        raise ValueError("a decaying learning rate needs num_train, the training samples an epoch steps through")
    tx = make_optimizer(config, steps_per_epoch(config, num_train))
    if config.quantize_bits:
        if x_calibrate is None:
            raise ValueError("a quantized network needs x_calibrate, the inputs its ranges start from")
        init = net.init(key, x_calibrate)
        ranges = dict(init.get(quantization.COLLECTION, {}))
        return TrainState.create(apply_fn=net.apply, params=init["params"], tx=tx, quantization=ranges)
    params = net.init(key, jnp.zeros((1, input_dim), jnp.float32))["params"]
    return TrainState.create(apply_fn=net.apply, params=params, tx=tx, quantization={})


def cross_entropy(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Per-sample softmax cross-entropy [B] in nats."""
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)


def _metrics(logits_BxC: jax.Array, labels_B: jax.Array, losses_B: jax.Array) -> Metrics:
    """Mean per-sample loss (whatever the reduction used for the gradient) and accuracy."""
    accuracy = jnp.mean(jnp.argmax(logits_BxC, axis=-1) == labels_B)
    return {"loss": jnp.mean(losses_B), "accuracy": accuracy}


def _batch_loss(state: TrainState, batch: Batch, reduction: str, noise_key: jax.Array | None = None):
    """The batch's loss as a function of the parameters (and, optionally, the MLP's zero
    "perturbations"), with the forward pass's logits, per-sample losses and activations; a
    network with noise of its own draws it from `noise_key` (none given: the noiseless network)."""
    x_BxF, labels_B = batch
    rngs = {} if noise_key is None else {"rngs": {noise.STREAM: noise_key}}

    def loss_fn(params, perturbations=None):
        given = variables(state, params)
        if perturbations is not None:
            given[model.PERTURBATIONS] = perturbations
        if state.quantization:  # the layers' largest |a|, for the ranges after the epoch
            (logits, acts), sown = state.apply_fn(given, x_BxF, mutable=[quantization.STATS], **rngs)
            largest = dict(sown[quantization.STATS])
        else:
            (logits, acts), largest = state.apply_fn(given, x_BxF, **rngs), {}
        losses = cross_entropy(logits, labels_B)
        total = jnp.sum(losses) if reduction == "sum" else jnp.mean(losses)
        return total, (logits, losses, acts, largest)

    return loss_fn


def _loss_and_grads(state: TrainState, params, batch: Batch, reduction: str, noise_key: jax.Array | None = None):
    """Gradient of the batch's loss at `params`, with the forward pass's logits, per-sample
    losses and activations."""
    return jax.grad(_batch_loss(state, batch, reduction, noise_key), has_aux=True)(params)


def _dot(a, b, spec):
    return jnp.einsum(spec, a, b, precision=jax.lax.Precision.HIGHEST)


def _parts_square_norm(h_IxB: jax.Array, d_OxB: jax.Array, parts: int, size: int) -> jax.Array:
    """sum_p |X_p^T D_p|_F^2 over the first `parts` x `size` samples, from feature-major layer
    inputs X^T [in, B] and errors D^T [out, B] (the MLP's own layout: no transposed copies), the
    cheaper of two ways: the parts' Gram matrices, sum_p sum_st (X_p X_p^T)_st (D_p D_p^T)_st
    (size x (in + out) products per sample), when parts are small next to the layer; else the
    parts' gradients themselves [parts, in, out] (in x out products per sample, as the step's)."""
    split = lambda a: a[:, : parts * size].reshape(a.shape[0], parts, size)  # noqa: E731
    x_IxPxS, d_OxPxS = split(h_IxB), split(d_OxB)
    fan_in, fan_out = h_IxB.shape[0], d_OxB.shape[0]
    if size * (fan_in + fan_out) <= fan_in * fan_out:
        return jnp.sum(_dot(x_IxPxS, x_IxPxS, "ips,ipt->pst") * _dot(d_OxPxS, d_OxPxS, "ops,opt->pst"))
    return jnp.sum(jnp.square(_dot(x_IxPxS, d_OxPxS, "ips,ops->pio")))


def _full_batch_statistics(
    state: TrainState, batch: Batch, reduction: str, parts: int, noise_key: jax.Array | None = None, config=None
):
    """The full-batch gradient with its forward pass's logits, losses and activations (as
    `_loss_and_grads`), and, per layer [L], the Frobenius norms of the mean and of the
    element-wise standard deviation over `parts` equal parts of the batch (the remainder left
    out) of each part's own kernel gradient at these parameters, from the same forward and
    backward pass.

    Part p's kernel gradient is c X_p^T D_p (X_p the layer's inputs, D_p the loss's gradients by
    its pre-activations, which a zero perturbation of them gives; c = 1 for "sum", N / part size
    for "mean"). Their mean is c / P times the full gradient less the remainder's share, and
    sum_p |g_p|_F^2 comes from the parts' small Gram matrices where parts are small next to the
    layer (`_parts_square_norm`): a few percent of one step's products for 1,000 images in 16
    parts, at most one more product per layer for large parts, instead of a second pass. The
    summed variance is mean_p |g_p|_F^2 - |mean|_F^2."""
    x_BxF, _ = batch
    n = x_BxF.shape[0]
    if parts < 1:
        raise errors.ConfigError(f"gradient sub-batches must be >= 1, got {parts}")
    size = n // parts
    if size == 0:
        raise errors.ConfigError(f"gradient_sub_batches ({parts}) exceeds the {n} training samples")
    cut = size * parts
    kernels_K = kernels(state.params)
    zeros = {f"z_{i}": jnp.zeros((k.shape[1], n), jnp.float32) for i, k in enumerate(kernels_K)}
    loss_fn = _batch_loss(state, batch, reduction, noise_key)
    (grads, d_pre), aux = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(state.params, zeros)
    scale = 1.0 if reduction == "sum" else n / size
    inputs = (x_BxF.T, *(a.T for a in aux[2][:-1]))  # feature-major, as the MLP computes them
    mean_sq, std_sq = [], []
    for i, (h_IxB, kernel_grad) in enumerate(zip(inputs, kernels(grads))):
        d_OxB = d_pre[f"z_{i}"]
        remainder = _dot(h_IxB[:, cut:], d_OxB[:, cut:], "in,on->io")
        mean_sq.append(jnp.sum(jnp.square((scale / parts) * (kernel_grad - remainder))))
        part_sq = scale**2 * _parts_square_norm(h_IxB, d_OxB, parts, size) / parts
        std_sq.append(jnp.maximum(part_sq - mean_sq[-1], 0.0))
    norms = {"grad_mean_norm": jnp.sqrt(jnp.stack(mean_sq)), "grad_std_norm": jnp.sqrt(jnp.stack(std_sq))}
    return grads, norms, aux


def _parts_statistics(
    state: TrainState, batch: Batch, reduction: str, parts: int, noise_key: jax.Array | None, config: TrainConfig
):
    """`_full_batch_statistics` of any model (`config.model`): the full-batch gradient and its
    forward pass, then each of the `parts` parts' own gradient (the loss reduced over the part as
    over the batch) from a second pass over the parts, the norms per measured layer's
    kernels. A network with noise of its own draws part p's noise from `noise_key` folded with
    p + 1 (the MLP's statistics reuse the step's own draw). The parts cost one more forward and
    backward pass over the batch, at measured epochs only."""
    x_BxF, labels_B = batch
    n = x_BxF.shape[0]
    if parts < 1 or n // parts == 0:
        raise errors.ConfigError(f"gradient sub-batches must be in [1, {n}], got {parts}")
    size = n // parts
    grads, aux = jax.grad(_batch_loss(state, batch, reduction, noise_key), has_aux=True)(state.params)

    def part_kernels(x_part, labels_part, p):
        key = None if noise_key is None else jax.random.fold_in(noise_key, p + 1)
        g, _ = jax.grad(_batch_loss(state, (x_part, labels_part), reduction, key), has_aux=True)(state.params)
        return kernels(g, config)

    split = lambda a: a[: parts * size].reshape(parts, size, *a.shape[1:])  # noqa: E731
    # One part at a time (`lax.map`): a part's activations at most, and no convolution batched
    # twice (over the vmapped rows and the parts), which JAX's batching of its gradient refuses.
    per_part = jax.lax.map(lambda a: part_kernels(*a), (split(x_BxF), split(labels_B), jnp.arange(parts)))
    mean = [jnp.mean(g, axis=0) for g in per_part]
    square = [jnp.mean(jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim))), axis=0) for g in per_part]
    sizes = [len(g) for g in kernel_groups(state.params, config)]
    mean_sq, part_sq, start = [], [], 0
    for count in sizes:
        mean_sq.append(sum(jnp.sum(jnp.square(m)) for m in mean[start : start + count]))
        part_sq.append(sum(square[start : start + count]))
        start += count
    mean_sq, part_sq = jnp.stack(mean_sq), jnp.stack(part_sq)
    norms = {"grad_mean_norm": jnp.sqrt(mean_sq), "grad_std_norm": jnp.sqrt(jnp.maximum(part_sq - mean_sq, 0.0))}
    return grads, norms, aux


def train_step(
    state: TrainState, batch: Batch, reduction: str = "mean", noise_key: jax.Array | None = None
) -> tuple[TrainState, Metrics, tuple[jax.Array, ...]]:
    """One optimiser step. Returns the new state, the batch's metrics and the activations of
    every layer from the same forward pass that gave the gradient (before the update); a
    network with noise of its own draws it from `noise_key` (required then)."""
    grads, (logits, losses, acts, largest) = _loss_and_grads(state, state.params, batch, reduction, noise_key)
    return _with_ranges(state.apply_gradients(grads=grads), largest), _metrics(logits, batch[1], losses), acts


def _with_ranges(state: TrainState, largest) -> TrainState:
    """The state with its quantization ranges moved towards the epoch's largest |a| (a no-op
    for a network that is not quantized)."""
    if not state.quantization:
        return state
    return state.replace(quantization=quantization.updated_ranges(state.quantization, largest))


def kernel_groups(params, config: TrainConfig | None = None) -> tuple[tuple[jax.Array, ...], ...]:
    """Per measured layer, the kernels that produce it (`ib_jax.models`; None: an MLP's
    "Dense_i", one each)."""
    if config is None or config.model == "mlp":
        return tuple((params[f"Dense_{i}"]["kernel"],) for i in range(len(params)))
    return models.kernel_groups(params, models.info(config.model).layer_modules(config))


def kernels(params, config: TrainConfig | None = None) -> tuple[jax.Array, ...]:
    """Every kernel of the measured layers' groups in order: for the MLP, each layer's weight
    matrix, input layer first (its "Dense_i" kernels)."""
    return tuple(k for group in kernel_groups(params, config) for k in group)


def _frobenius(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x)))


def _group_norms(arrays, params, config: TrainConfig | None) -> jax.Array:
    """[L] the Frobenius norm of each measured layer's kernels together, from `arrays` given in
    the order of `kernels(params, config)`."""
    sizes = [len(g) for g in kernel_groups(params, config)]
    out, start = [], 0
    for size in sizes:
        group = arrays[start : start + size]
        start += size
        out.append(_frobenius(group[0]) if size == 1 else jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in group)))
    return jnp.stack(out)


def weight_norms(params, config: TrainConfig | None = None) -> jax.Array:
    """|W|_F of each measured layer's kernels [L]."""
    return _group_norms(kernels(params, config), params, config)


def _welford_init(params, config: TrainConfig | None = None):
    zeros = [jnp.zeros_like(k) for k in kernels(params, config)]
    return jnp.float32(0.0), zeros, zeros


def _welford(stats, grads_K):
    """One step of Welford's numerically stable running mean and sum of squared deviations."""
    count, mean, m2 = stats
    count = count + 1.0
    delta = [g - m for g, m in zip(grads_K, mean)]
    mean = [m + d / count for m, d in zip(mean, delta)]
    m2 = [v + d * (g - m) for v, d, g, m in zip(m2, delta, grads_K, mean)]
    return count, mean, m2


def gradient_norms(mean_K, var_K, params, config: TrainConfig | None = None) -> dict[str, jax.Array]:
    """Per layer [L]: |mean gradient|_F, |element-wise std|_F, |W|_F (W from `params`; the
    kernels in the order of `kernels(params, config)`)."""
    return {
        "grad_mean_norm": _group_norms(mean_K, params, config),
        "grad_std_norm": _group_norms([jnp.sqrt(jnp.maximum(v, 0.0)) for v in var_K], params, config),
        "weight_norm": weight_norms(params, config),
    }


def train_epoch(
    state: TrainState,
    key: jax.Array,
    x_NxF: jax.Array,
    labels_N: jax.Array,
    config: TrainConfig,
    gradient_stats: bool = False,
    sub_batches: int = 16,
) -> tuple[TrainState, Metrics, tuple[jax.Array, ...] | None]:
    """One epoch. Full batch: a single step whose activations are returned. Minibatch: a seeded
    permutation (from `key`) cut into `N // batch_size` batches under `lax.scan`; the last
    incomplete batch is dropped (a different remainder each epoch); activations are None.
    Metrics are averaged over the epoch's batches. A network with noise of its own draws it from
    `key` folded with a tag (and, with minibatches, with the step's index).

    With `gradient_stats`, the metrics also hold, per layer [L], the Frobenius norms of the mean
    and of the element-wise standard deviation (over the epoch's minibatches) of the kernel
    gradients the steps used, taken before each update and accumulated in the scan (Welford's
    running mean and sum of squares, no per-step storage), and |W|_F after the epoch. Full
    batch: the statistics are those of the gradients of `sub_batches` equal parts of the batch
    (the remainder left out of them) at the epoch's parameters, taken from the step's own
    forward and backward pass (see `_full_batch_statistics`); the update is the full batch's.
    """
    n = x_NxF.shape[0]
    noise_key = jax.random.fold_in(key, _NOISE_TAG) if config.noise.active else None
    if config.batch_size == 0 or config.batch_size >= n:
        if not gradient_stats:
            return train_step(state, (x_NxF, labels_N), config.loss_reduction, noise_key)
        statistics = _full_batch_statistics if config.model == "mlp" else _parts_statistics
        grads, norms, (logits, losses, acts, largest) = statistics(
            state, (x_NxF, labels_N), config.loss_reduction, sub_batches, noise_key, config
        )
        new_state = _with_ranges(state.apply_gradients(grads=grads), largest)
        norms["weight_norm"] = weight_norms(new_state.params, config)
        return new_state, _metrics(logits, labels_N, losses) | norms, acts
    num_batches = n // config.batch_size
    perm = jax.random.permutation(key, n)[: num_batches * config.batch_size]
    perm_BxS = perm.reshape(num_batches, config.batch_size)

    def body(carry, step_and_idx):
        state, stats = carry
        step, idx_S = step_and_idx
        batch = (x_NxF[idx_S], labels_N[idx_S])
        step_key = None if noise_key is None else jax.random.fold_in(noise_key, step)
        grads, (logits, losses, _, largest) = _loss_and_grads(
            state, state.params, batch, config.loss_reduction, step_key
        )
        if gradient_stats:
            stats = _welford(stats, kernels(grads, config))
        return (state.apply_gradients(grads=grads), stats), (_metrics(logits, batch[1], losses), largest)

    stats = _welford_init(state.params, config) if gradient_stats else None
    (state, stats), (metrics, largest) = jax.lax.scan(body, (state, stats), (jnp.arange(num_batches), perm_BxS))
    metrics = jax.tree.map(jnp.mean, metrics)
    state = _with_ranges(state, jax.tree.map(lambda m: jnp.max(m, axis=0), largest))
    if gradient_stats:
        count, mean, m2 = stats
        metrics |= gradient_norms(mean, [v / count for v in m2], state.params, config)
    return state, metrics, None


def evaluate(
    apply_fn, params, x_NxF: jax.Array, labels_N: jax.Array, ranges=None
) -> tuple[Metrics, tuple[jax.Array, ...]]:
    """Loss and accuracy on a split, with every layer's activations (a quantized network's on
    the grid of its `ranges`)."""
    logits, acts = apply_fn(_variables(params, ranges), x_NxF)
    return _metrics(logits, labels_N, cross_entropy(logits, labels_N)), acts


def layer_widths(config: TrainConfig, num_classes: int, image_shape: tuple[int, ...] | None = None) -> Sequence[int]:
    """The widths of the information plane's layers, the logits last: the MLP's hidden layers;
    an image model's measured layers flattened (units = H x W x C of a convolutional one), from
    the shapes of a forward pass on `image_shape` (none computed)."""
    if config.model == "mlp":
        return (*config.hidden, num_classes)
    net = make_model(config, num_classes, image_shape)
    x = jax.ShapeDtypeStruct((1, math.prod(image_shape)), jnp.float32)
    shapes = jax.eval_shape(lambda x: net.apply(net.init(jax.random.key(0), x), x), x)
    return tuple(int(a.shape[-1]) for a in shapes[1])


def layer_names(config: TrainConfig) -> tuple[str, ...]:
    """The names of the information plane's layers ("layer 1", ... for the MLP; "conv1", ...,
    "logits" for the CNN)."""
    return models.info(config.model).layer_names(config)


jit_train_step = jax.jit(train_step, static_argnames="reduction", donate_argnums=0)
jit_train_epoch = jax.jit(train_epoch, static_argnames=("config", "gradient_stats", "sub_batches"))
