"""Networks with noise of their own: every (or a chosen) hidden layer's output T is drawn around
its noiseless value a given the layer's input, so I(X;T) is finite and belongs to the network
(Adilova, Geiger & Fischer, ICLR 2023), not to an estimator's setting.

Kinds (`LayerNoise.parse` reads the flag's form, "KIND:LEVEL"):
  * "none": no noise (the default).
  * "additive:SIGMA": T = a + SIGMA Z, Z ~ N(0, I).
  * "gaussian_dropout:P": T = a (1 + sqrt(P / (1 - P)) Z) (Srivastava et al. 2014, the
    multiplicative Gaussian noise with the variance of Bernoulli dropout of rate P, 0 < P < 1).

Given a, T is Gaussian with a diagonal covariance: SIGMA^2 per unit, or P / (1 - P) a^2 per
unit (`variance`). A unit at exactly 0 under multiplicative noise (a ReLU that does not fire)
has variance 0: T is exactly 0 there (see `ib_jax.estimators.noise_mc` for how the information
treats it).

Where the noise is drawn:
  * in training, `model.MLP(..., layer_noise=...)` draws it in every noisy layer when `apply` is
    given a "noise" PRNG stream, so each noisy layer's input carries the earlier layers' noise:
    the network as it trains; without the stream `apply` is the noiseless (mean) network, as
    dropout networks are evaluated;
  * in a measurement, `measured` draws each noisy layer's own noise around its value in the
    noiseless network (the earlier layers at their means). T given X is then exactly the
    Gaussian above, which `noise_mc` integrates, and every estimator sees the same noisy T.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from ib_jax import errors

KINDS = ("none", "additive", "gaussian_dropout")
STREAM = "noise"  # the name of the PRNG stream `model.MLP` draws its noise from


def parse_layers(text: str) -> tuple[int, ...]:
    """The layers of `--noisy_layers` ("1,2"; empty: none named, every hidden layer);
    ConfigError, one line, for anything else."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise errors.ConfigError(f"--noisy_layers must be 1-based layer numbers like 1,2, got {text!r}") from None


@dataclasses.dataclass(frozen=True)
class LayerNoise:
    """The noise of a network's hidden layers: `kind` (one of `KINDS`), `level` (SIGMA for
    "additive", the rate P for "gaussian_dropout"), and `layers`, the 1-based hidden layers
    that carry it (empty: every hidden layer). Frozen and hashable: a static argument."""

    kind: str = "none"
    level: float = 0.0
    layers: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise errors.ConfigError(f"unknown layer noise {self.kind!r}; choose from {', '.join(KINDS)}")
        level = float(self.level)
        if self.kind == "additive" and not (math.isfinite(level) and level > 0):
            raise errors.ConfigError(f"additive noise needs a standard deviation > 0, got {self.level}")
        if self.kind == "gaussian_dropout" and not 0.0 < level < 1.0:
            raise errors.ConfigError(f"gaussian_dropout needs a rate in (0, 1), got {self.level}")
        if self.kind == "none" and self.layers:
            raise errors.ConfigError("--noisy_layers needs --layer_noise (additive:SIGMA or gaussian_dropout:P)")
        if self.kind == "none" and level:
            raise errors.ConfigError("layer noise 'none' takes no level")
        layers = tuple(int(i) for i in self.layers)
        if any(i < 1 for i in layers) or len(set(layers)) != len(layers):
            raise errors.ConfigError(f"noisy layers are distinct 1-based hidden layers, got {self.layers}")
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "layers", tuple(sorted(layers)))

    @classmethod
    def parse(cls, spec: str, layers: str | tuple[int, ...] = ()) -> "LayerNoise":
        """The noise of a flag's value: "none", "additive:SIGMA" or "gaussian_dropout:P", on
        `layers` ("1,2" or a tuple; empty: every hidden layer). ConfigError, one line, for a bad
        value."""
        kind, _, level = str(spec).strip().partition(":")
        if kind == "none" and not level:
            value = 0.0
        else:
            try:
                value = float(level)
            except ValueError:
                raise errors.ConfigError(
                    f"--layer_noise must be none, additive:SIGMA or gaussian_dropout:P, got {spec!r}"
                ) from None
        return cls(kind, value, parse_layers(layers) if isinstance(layers, str) else tuple(layers))

    @property
    def active(self) -> bool:
        return self.kind != "none"

    @property
    def spec(self) -> str:
        """The flag's form: "none", "additive:0.1", ..."""
        return "none" if not self.active else f"{self.kind}:{self.level:g}"

    def check(self, num_hidden: int) -> None:
        """ConfigError if a named layer is not one of the `num_hidden` hidden layers."""
        if self.layers and max(self.layers) > num_hidden:
            raise errors.ConfigError(
                f"--noisy_layers names layer {max(self.layers)}, but the network has {num_hidden} hidden layers"
            )

    def noisy(self, index: int, num_hidden: int) -> bool:
        """Whether hidden layer `index` (0-based; the logits are `num_hidden`) carries noise."""
        return self.active and index < num_hidden and (not self.layers or index + 1 in self.layers)

    def variance(self, mean: jax.Array) -> jax.Array:
        """The per-unit variance of T given its noiseless value `mean`."""
        if self.kind == "additive":
            return jnp.full_like(mean, self.level**2)
        return (self.level / (1.0 - self.level)) * jnp.square(mean)

    def sample(self, key: jax.Array, mean: jax.Array) -> jax.Array:
        """One draw of T around `mean` (any shape)."""
        z = jax.random.normal(key, mean.shape, mean.dtype)
        if self.kind == "additive":
            return mean + jnp.asarray(self.level, mean.dtype) * z
        return mean * (1.0 + jnp.asarray(math.sqrt(self.level / (1.0 - self.level)), mean.dtype) * z)

    def measured(self, key: jax.Array, means: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        """Each noisy layer's T drawn around its noiseless value (`means`: every layer, logits
        last, [..., N, D] each; layer i's draw from `fold_in(key, i)`); the other layers as
        they are."""
        num_hidden = len(means) - 1
        return tuple(
            self.sample(jax.random.fold_in(key, i), a) if self.noisy(i, num_hidden) else a for i, a in enumerate(means)
        )
