"""A Flax Linen MLP that returns the activations of every layer with its logits."""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ib_jax import errors, noise, quantization

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "softsign": nn.soft_sign,
    "softplus": nn.softplus,
    "linear": lambda x: x,
}
INITS = ("default", "truncated_normal", "pytorch")
PERTURBATIONS = "perturbations"  # the collection of the pre-activations' zero perturbations (gradient statistics)


def _truncated_normal_fan_in(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """IDNNs' kernels: a normal of std 1/sqrt(fan_in) truncated at two standard deviations."""
    return nn.initializers.truncated_normal(stddev=1.0 / jnp.sqrt(shape[0]))(key, shape, dtype)


def _uniform_fan_in(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / jnp.sqrt(shape[0])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def check_names(activation: str, init: str) -> None:
    """ConfigError for an unknown activation or initialiser."""
    if activation not in ACTIVATIONS:
        raise errors.ConfigError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    if init not in INITS:
        raise errors.ConfigError(f"unknown init {init!r}; choose from {', '.join(INITS)}")


class _FeatureMajorDense(nn.Module):
    """A dense layer on feature-major activations [features, batch]; parameters as Flax's
    `nn.Dense` (kernel [in, out], bias [out]). XLA's CPU backend runs narrow layers over many
    samples several times faster this way, above all when seeds are vmapped (3.5x for 50 seeds
    of the 12-bit network), since the long sample axis is the contiguous one."""

    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, h_FxB: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (h_FxB.shape[0], self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        return jnp.einsum("io,ib->ob", kernel, h_FxB) + bias[:, None]


class MLP(nn.Module):
    """Dense layers of widths `hidden` with `activation`, then linear logits.

    Kernel initialisers: "default" (Flax: LeCun normal, zero bias), "truncated_normal"
    (IDNNs: std 1/sqrt(fan_in) truncated at 2 std, zero bias), "pytorch" (PyTorch's nn.Linear:
    kernel and bias uniform in +-1/sqrt(fan_in), as the reimplemented project).

    `__call__` returns `(logits_BxC, acts)` where `acts` is a tuple with one [B, width] array
    per hidden layer and the logits last: the layers of the information plane. Parameters are
    named and shaped as a stack of `nn.Dense` ("Dense_0", ...). Layer i's pre-activations
    [width, B] (feature-major) have the variable "z_i" of a "perturbations" collection added
    when the caller passes one: given zeros, the gradient by them is the loss's gradient by each
    sample's pre-activations (`train` uses it for the gradient statistics); without them
    nothing is added. `init` creates no perturbations and sows no statistics, so the standard
    pattern holds: `variables = MLP(...).init(key, x_small)`, then `apply(variables, x)` on
    a batch of any size.

    `quantize_bits` k > 0 quantizes every layer's output, the logits included, to 2**k levels
    (`quantization`); the ranges r of unbounded layers live in the "quantization" collection,
    calibrated at `init` on its inputs (pass the training inputs). `apply` without a mutable
    collection evaluates with the stored ranges; with "quantization_stats" mutable it also sows
    each tracked layer's largest |a| before quantization, from which the training step updates
    the ranges (`quantization.updated_ranges`).

    `layer_noise` (`noise.LayerNoise`) gives the hidden layers noise of their own: `apply` with
    a "noise" PRNG stream (`rngs={"noise": key}`) draws it in each noisy layer after its
    activation, so the activations returned (and the next layer's inputs) are noisy; without
    the stream `apply` is the noiseless network.
    """

    hidden: Sequence[int]
    num_classes: int
    activation: str = "tanh"
    kernel_init: str = "default"
    quantize_bits: int = 0
    layer_noise: noise.LayerNoise = noise.LayerNoise()

    @nn.compact
    def __call__(self, x_BxF: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        check_names(self.activation, self.kernel_init)
        act = ACTIVATIONS[self.activation]
        acts = []
        h_FxB = x_BxF.T
        for i, width in enumerate((*self.hidden, self.num_classes)):
            kwargs = {}
            if self.kernel_init == "truncated_normal":
                kwargs = {"kernel_init": _truncated_normal_fan_in}
            elif self.kernel_init == "pytorch":  # the bias too, with the layer's fan-in
                bound = 1.0 / h_FxB.shape[0] ** 0.5
                bias_init = lambda k, s, d=jnp.float32, b=bound: jax.random.uniform(k, s, d, -b, b)  # noqa: E731
                kwargs = {"kernel_init": _uniform_fan_in, "bias_init": bias_init}
            h_FxB = _FeatureMajorDense(width, name=f"Dense_{i}", **kwargs)(h_FxB)
            h_FxB = self._perturbed(f"z_{i}", h_FxB)
            if i < len(self.hidden):
                h_FxB = act(h_FxB)
                if self.layer_noise.noisy(i, len(self.hidden)) and self.has_rng(noise.STREAM):
                    h_FxB = self.layer_noise.sample(self.make_rng(noise.STREAM), h_FxB)
            if self.quantize_bits:
                h_FxB = self._quantized(i, h_FxB)
            acts.append(h_FxB.T)
        return acts[-1], tuple(acts)

    def _perturbed(self, name: str, h_FxB: jax.Array) -> jax.Array:
        """`h_FxB` plus the caller's perturbation `name`, if given. Flax's `Module.perturb`
        would make the variable at `init`, shaped by the init batch, and `apply` would then add
        it to batches of other sizes."""
        if self.has_variable(PERTURBATIONS, name):
            return h_FxB + self.get_variable(PERTURBATIONS, name)
        return h_FxB

    def _quantized(self, i: int, h_FxB: jax.Array) -> jax.Array:
        """Layer i's output on its grid (`quantization.quantized_output`)."""
        activation = self.activation if i < len(self.hidden) else None
        return quantization.quantized_output(self, i, h_FxB, activation, self.quantize_bits)
