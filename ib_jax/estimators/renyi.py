"""Matrix-based Rényi α-information (Giraldo, Rao & Principe 2015), as Yu et al. and Wickstrøm
et al. measure the information plane with it, in bits.

Per item (one layer at one epoch, seed and split), the N samples are cut, in their given order,
into B = floor(N / b) batches of b = `batch_size` consecutive samples; the last N mod b samples
are left out (with N < b, the one batch is all N samples). For each batch:

  * Gram matrices: K_T(i, j) = exp(-|t_i - t_j|^2 / (2 s_T^2)) of the layer, K_X likewise of the
    flattened inputs, and the label kernel K_Y(i, j) = 1 if y_i = y_j else 0;
  * S_a(A) = log2(sum_i l_i(A)^a) / (1 - a) of A = K / tr(K), from the eigenvalues l (tiny
    negative ones from rounding clipped to 0); joint entropies of the Hadamard product,
    S_a(A_X o A_T / tr(A_X o A_T));
  * I(X;T) = S_a(A_X) + S_a(A_T) - S_a(joint of X, T), and I(T;Y) the same with A_Y.

The item's values are the means over its batches. Kernel width: a float `sigma` is s_X = s_T
for every batch; `sigma=None` takes, per batch and separately for X and for T, the mean over the
batch's samples of the Euclidean distance to the k-th nearest other sample of the batch, k =
`KNN` (= 10, or b - 1 if smaller): the nearest-neighbour rule of Wickstrøm et al.'s code (an
average neighbour distance, not a density-optimal width). If that mean is 0 (every sample has
at least k copies of itself), the width is 1.

S_a of a normalised matrix depends only on the spectrum's proportions, so it is computed as
log2(sum l^a / (sum l)^a) / (1 - a) of K itself: no trace is divided out, and the eigenvalues'
rounding, which does not sum to exactly 1, cancels to first order (this matters because
1 / (1 - a) is -100 at a = 1.01). Squared distances are |a|^2 + |b|^2 - 2 a.b of batch-centred
rows in float32 at full precision, clamped at 0, with an exact 0 diagonal; eigenvalues by
`eigvalsh` in float32, batched over items and batches. The cost is 5 eigendecompositions of a
b x b matrix per batch (X, T, joint XT, Y, joint TY), O(N b^2) per item. Items with a NaN or
infinite activation give NaN.

This is Rényi's α-information, not Shannon's mutual information: compare its trends, not its
values, with the other estimators.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from ib_jax.estimators import common

KNN = 10  # the k of the nearest-neighbour kernel width
_BATCH_ELEMENTS = 1 << 22  # Gram entries per chunk of items (items x batches x b x b): 16 MB of float32


@dataclasses.dataclass(frozen=True)
class Renyi(common.Estimator):
    """`Renyi(alpha=1.01, batch_size=200, sigma=None)`; see the module docstring."""

    alpha: float = 1.01
    batch_size: int = 200
    sigma: float | None = None

    needs_inputs = True

    def __post_init__(self):
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ValueError(f"alpha must be a positive number other than 1, got {self.alpha!r}") from None
        if not (math.isfinite(alpha) and alpha > 0 and alpha != 1):
            raise ValueError(f"alpha must be a positive number other than 1, got {self.alpha}")
        object.__setattr__(self, "alpha", alpha)
        if isinstance(self.batch_size, bool) or int(self.batch_size) != self.batch_size or self.batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2, got {self.batch_size}")
        object.__setattr__(self, "batch_size", int(self.batch_size))
        if self.sigma is not None:
            try:
                sigma = float(self.sigma)
            except (TypeError, ValueError):
                raise ValueError(f"sigma must be a positive number or None, got {self.sigma!r}") from None
            if not (math.isfinite(sigma) and sigma > 0):
                raise ValueError(f"sigma must be a positive number or None, got {self.sigma}")
            object.__setattr__(self, "sigma", sigma)

    @property
    def name(self) -> str:
        return "renyi"

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool, inputs=None):
        del exact
        b, n, _ = acts_BxNxD.shape
        size = min(self.batch_size, n)
        batches = n // size
        shared_x, shared_y = inputs.ndim == 2, labels.ndim == 1
        per_item = (() if shared_x else (inputs,)) + (() if shared_y else (labels,))

        def fn(acts, *rest):
            rest = list(rest)
            x = inputs if shared_x else rest.pop(0)
            y = labels if shared_y else rest.pop(0)
            return self._items(acts, x, y, num_classes, size, batches)

        items = max(1, _BATCH_ELEMENTS // (batches * size * size))
        i_xt, i_ty = common.in_chunks(fn, acts_BxNxD, items, *per_item)
        bad = ~common.finite_items(acts_BxNxD)
        nan = jnp.float32(jnp.nan)
        return jnp.where(bad, nan, i_xt).astype(jnp.float32), jnp.where(bad, nan, i_ty).astype(jnp.float32)

    def _items(self, acts_KxNxD, x, y, num_classes: int, size: int, batches: int):
        """I(X;T), I(T;Y) [K] of K items; `x` is [N, Dx] or [K, N, Dx], `y` [N] or [K, N]."""
        used = batches * size

        def batched(a):  # [..., N, D] -> [..., batches, size, D] of the first `used` samples
            return a[..., :used, :].reshape(*a.shape[:-2], batches, size, a.shape[-1])

        t = batched(acts_KxNxD.astype(jnp.float32))  # [K, B, b, D]
        xb = batched(x.astype(jnp.float32))  # [B, b, Dx] or [K, B, b, Dx]
        yb = y[..., :used].reshape(*y.shape[:-1], batches, size)
        k_t = self._gram(t)
        k_x = jnp.broadcast_to(self._gram(xb), k_t.shape)
        same = (yb[..., :, None] == yb[..., None, :]).astype(jnp.float32)
        k_y = jnp.broadcast_to(same, k_t.shape)
        s_t, s_x, s_y = self.entropy(k_t), self.entropy(k_x), self.entropy(k_y)
        i_xt = s_x + s_t - self.entropy(k_x * k_t)
        i_ty = s_t + s_y - self.entropy(k_t * k_y)
        return jnp.mean(i_xt, axis=-1), jnp.mean(i_ty, axis=-1)

    def _gram(self, a_xbxd: jax.Array) -> jax.Array:
        """Gaussian Gram matrices [..., b, b] of batches of rows [..., b, D]."""
        d2 = squared_distances(a_xbxd)
        if self.sigma is not None:
            width2 = jnp.float32(self.sigma**2)
        else:
            width = knn_width(d2, min(KNN, d2.shape[-1] - 1))
            width2 = (width * width)[..., None, None]
        return jnp.exp(-d2 / (2.0 * width2))

    def entropy(self, gram: jax.Array) -> jax.Array:
        """S_a in bits of the trace-normalised PSD matrices [..., b, b]: [...]."""
        eig = jnp.maximum(eigenvalues(gram), 0.0).astype(jnp.float64)
        total = jnp.sum(eig, axis=-1)
        power = jnp.sum(eig**self.alpha, axis=-1) / total**self.alpha
        return jnp.log2(power) / (1.0 - self.alpha)


def eigenvalues(gram: jax.Array) -> jax.Array:
    """Eigenvalues [..., b] of symmetric matrices [..., b, b], one matrix per call in a loop: the
    CPU kernel splits a batch over XLA's thread pool and waits for the parts, so two batched calls
    at once (two layers) can deadlock a two-thread pool; one matrix per call runs inline."""
    flat = gram.reshape(-1, *gram.shape[-2:])
    return jax.lax.map(jnp.linalg.eigvalsh, flat).reshape(gram.shape[:-1])


def squared_distances(a_xbxd: jax.Array) -> jax.Array:
    """|a_i - a_j|^2 [..., b, b] of rows [..., b, D]: centred, float32 at full precision, clamped
    at 0, with an exact 0 diagonal."""
    a = a_xbxd - jnp.mean(a_xbxd, axis=-2, keepdims=True)
    sq = jnp.sum(a * a, axis=-1)
    dot = jnp.einsum("...id,...jd->...ij", a, a, precision=jax.lax.Precision.HIGHEST)
    d2 = jnp.maximum(sq[..., :, None] + sq[..., None, :] - 2.0 * dot, 0.0)
    eye = jnp.eye(a.shape[-2], dtype=bool)
    return jnp.where(eye, 0.0, d2)


def knn_width(d2: jax.Array, k: int) -> jax.Array:
    """The mean over samples of the distance to the k-th nearest other sample [...], from
    squared distances [..., b, b]; 1 where that mean is 0."""
    # The (k+1)-th smallest entry of a row counts the sample itself (distance 0) first.
    nearest = jnp.sort(d2, axis=-1)[..., k]
    width = jnp.mean(jnp.sqrt(nearest), axis=-1)
    return jnp.where(width > 0, width, 1.0)


def renyi_information(
    acts: jax.Array,
    labels: jax.Array,
    inputs: jax.Array,
    *,
    alpha: float = 1.01,
    batch_size: int = 200,
    sigma: float | None = None,
    num_classes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Matrix-based Rényi α-information I(X;T) and I(T;Y) in bits of one layer.

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts`.
      inputs: the inputs X, flattened: [N, Dx] (shared by the items) or [..., N, Dx].
      alpha: the Rényi order a (> 0, not 1).
      batch_size: samples per batch b; see the module docstring for the remainder.
      sigma: the kernel width of X and T; None: the nearest-neighbour rule, per batch.
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      i_xt, i_ty: float32 [...] in bits.
    """
    estimator = Renyi(alpha=alpha, batch_size=batch_size, sigma=sigma)
    return common.one_layer(acts, labels, estimator, num_classes=num_classes, inputs=inputs)
