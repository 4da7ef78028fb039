"""How sure a measured value is, the pieces every estimator shares (`common` runs them inside
its one jitted measurement): the bootstrap and permutation draws (`Confidence`), the default
`Estimator.layer_confidence` that measures copies (`by_resampling`), the summary of the draws
(`summarize_confidence`), and the nested subsets of the convergence check."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Confidence:
    """How sure a measured value is: its standard error over `bootstrap` resamples of the measured
    samples (drawn with replacement), and, for I(T;Y), the estimate under `null_permutations`
    shuffles of the labels (the value when T knows nothing about Y: its mean and 95th
    percentile). The draws depend on `seed` and N only: every layer, epoch and row of a split
    sees the same resamples and the same shuffles."""

    bootstrap: int = 0
    null_permutations: int = 0
    seed: int = 0x0C0FFEE

    def __post_init__(self):
        for name in ("bootstrap", "null_permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0 or value == 1:
                raise ValueError(f"{name} must be 0 (off) or an integer >= 2, got {value}")
            object.__setattr__(self, name, int(value))

    @property
    def active(self) -> bool:
        return bool(self.bootstrap or self.null_permutations)

    def draws(self, n: int) -> tuple[jax.Array, jax.Array]:
        """The resamples [B, N] and the permutations [P, N] (int32) of N samples. A permutation
        is the order of N random 32-bit words, sorted with the positions packed below them in
        one uint64 key (a single-operand sort, several times faster on CPU than an argsort or
        `jax.random.permutation`; equal words keep their positions' order)."""
        with jax.enable_x64(True):
            key = jax.random.fold_in(jax.random.key(jnp.uint32(self.seed)), jnp.uint32(n))
            boot_key, perm_key = jax.random.split(key)
            resamples = jax.random.randint(boot_key, (self.bootstrap, n), 0, n, dtype=jnp.int32)
            words = jax.random.bits(perm_key, (self.null_permutations, n), jnp.uint32).astype(jnp.uint64)
            packed = jnp.sort((words << 32) | jnp.arange(n, dtype=jnp.uint64), axis=1)
            return resamples, (packed & jnp.uint64(0xFFFFFFFF)).astype(jnp.int32)


NO_CONFIDENCE = Confidence()  # the default: no draws

# The per-item values `Confidence` adds to a measurement, in bits.
CONFIDENCE_KEYS = ("i_xt_se", "i_ty_se", "i_ty_null_mean", "i_ty_null_p95")


def by_resampling(estimator, acts_BxNxD, labels, num_classes, exact, resamples_RxN, permutations_PxN, inputs=None):
    """`Estimator.layer_confidence` by measuring copies: each resample's samples gathered (the
    activations, labels and inputs X), each permutation's labels, one at a time (`lax.map`)."""
    b = acts_BxNxD.shape[0]

    def run(acts, y, x):
        out = estimator.layer_information(acts, y, num_classes, exact, **({} if x is None else {"inputs": x}))
        return out[0], out[1]

    def resampled(index):
        x = None if inputs is None else jnp.take(inputs, index, axis=-2)
        return run(jnp.take(acts_BxNxD, index, axis=1), jnp.take(labels, index, axis=-1), x)

    empty = jnp.zeros((0, b), jnp.float32)
    boot_xt, boot_ty = jax.lax.map(resampled, resamples_RxN) if resamples_RxN.shape[0] else (empty, empty)
    null_ty = (
        jax.lax.map(lambda p: run(acts_BxNxD, jnp.take(labels, p, axis=-1), inputs)[1], permutations_PxN)
        if permutations_PxN.shape[0]
        else empty
    )
    return boot_xt, boot_ty, null_ty


def summarize_confidence(boot_xt_RxB, boot_ty_RxB, null_ty_PxB, measures_xt: bool = True) -> dict[str, jax.Array]:
    """{`CONFIDENCE_KEYS`: float32 [B]}: the bootstrap standard errors (ddof 1) and the null's
    mean and 95th percentile (linear interpolation); NaN where not drawn."""
    nan = jnp.full(boot_xt_RxB.shape[1:], jnp.nan, jnp.float32)
    se = lambda v: jnp.std(v.astype(jnp.float64), axis=0, ddof=1).astype(jnp.float32) if v.shape[0] else nan  # noqa: E731
    null = null_ty_PxB.astype(jnp.float64)
    return {
        "i_xt_se": se(boot_xt_RxB) if measures_xt else nan,
        "i_ty_se": se(boot_ty_RxB),
        "i_ty_null_mean": jnp.mean(null, axis=0).astype(jnp.float32) if null.shape[0] else nan,
        "i_ty_null_p95": jnp.quantile(null, 0.95, axis=0).astype(jnp.float32) if null.shape[0] else nan,
    }


CONVERGENCE_FRACTIONS = (8, 4, 2)  # N / 8, N / 4, N / 2 (then N itself, the value)
CONVERGENCE_KEYS = tuple(f"n{f}_{q}" for f in CONVERGENCE_FRACTIONS for q in ("xt", "ty"))
_CONVERGENCE_SEED = 0x5AB5E7


def convergence_sizes(n: int) -> tuple[int, ...]:
    """The nested subset sizes of a convergence check of N samples: N / 8, N / 4, N / 2, N."""
    return (*(n // f for f in CONVERGENCE_FRACTIONS), n)


def convergence_order(n: int) -> np.ndarray:
    """The fixed order [N] whose first N / 8, N / 4 and N / 2 samples are the nested subsets."""
    return np.random.default_rng([_CONVERGENCE_SEED, n]).permutation(n).astype(np.int32)
