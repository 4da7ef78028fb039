"""Sliced mutual information (Goldfeld & Greenewald, NeurIPS 2021; k-sliced, Goldfeld et al. 2022),
in bits: the information between random low-dimensional projections, averaged over them,

  SI(X;T) = E_{theta, phi} I(theta^T X; phi^T T),   SI(T;Y) = E_phi I(phi^T T; Y),

theta and phi uniform on the unit spheres of X's and T's spaces (`dim` = 1), or uniform
orthonormal k-frames (`dim` = k: the k-sliced variant; a frame is the Q of a Gaussian matrix's
QR decomposition, sign-fixed, which is uniform on the Stiefel manifold). It is finite for a
deterministic network, cheap in any width, and 0 exactly when the variables are independent.
Wongso, Ghosh & Motani (AISTATS 2023) drew the information plane with it.

Each slice's information is estimated by the `knn` estimators on the projections: KSG
estimator 1 for I(theta^T X; phi^T T), Ross's mixed estimator for I(phi^T T; Y), with k
neighbours and max-norm distances, each projection's coordinates standardized, as `knn` does.
One-dimensional slices take the same estimators by sorting (`knn.ksg_information_1d`,
`knn.ross_information_1d`: the same values in O(N (log N + sqrt(kN))) instead of O(N^2)). The mean over m
slices (`slices`, default 1,000) is the value; its Monte Carlo standard error over slices,
std / sqrt(m), is reported as the extras `se_xt` and `se_ty`.

The directions come from a fixed key (`seed`): every epoch, layer of the same width and run
sees the same phi, and every layer the same theta, so the curves move with the network, not
with the draw. A space narrower than `dim` (a 10-unit layer under `dim` = 20) is sliced by
frames of its own width. The slices of an item are measured a few at a time (vmapped, about
`_PAIR_ELEMENTS` pairwise distances together) under `lax.map`, on the device.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax.estimators import common, knn

_PAIR_ELEMENTS = 1 << 23  # the slices measured together hold at most about this many pairwise distances


def frames(key: jax.Array, count: int, width: int, dim: int) -> jax.Array:
    """`count` orthonormal frames [count, width, dim], uniform (for dim = 1: unit vectors
    uniform on the sphere)."""
    g = jax.random.normal(key, (count, width, dim), jnp.float32)
    if dim == 1:
        return g / jnp.linalg.norm(g, axis=1, keepdims=True)
    q, r = jnp.linalg.qr(g)
    return q * jnp.sign(jnp.diagonal(r, axis1=1, axis2=2))[:, None, :]


@dataclasses.dataclass(frozen=True)
class Sliced(common.Estimator):
    """`Sliced(slices=1000, dim=1, k=3, seed=0)`: SI(X;T) and SI(T;Y) over `slices` random
    `dim`-dimensional projections, each by the k-NN estimators with `k` neighbours; see the
    module docstring."""

    slices: int = 1000
    dim: int = 1
    k: int = 3
    seed: int = 0

    needs_inputs = True
    extras = ("se_xt", "se_ty")

    def __post_init__(self):
        for name, low in (("slices", 2), ("dim", 1), ("k", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"the sliced estimator's {name} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def name(self) -> str:
        return "sliced"

    def check_size(self, n: int, num_classes: int) -> None:
        if n <= self.k:
            raise ValueError(f"the sliced estimator needs more than k = {self.k} samples, got {n}")

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool, inputs=None):
        del exact, num_classes
        b, n, d = acts_BxNxD.shape
        x = inputs.astype(jnp.float32).reshape(-1, n, inputs.shape[-1])
        bad = ~common.finite_items(acts_BxNxD)
        acts = jnp.where(bad[:, None, None], 0.0, acts_BxNxD).astype(jnp.float32)
        y = jnp.broadcast_to(labels, (b, n)).astype(jnp.int32)
        x = jnp.broadcast_to(x, (b, *x.shape[1:]))
        key = jax.random.key(jnp.uint32(self.seed))
        # A space narrower than `dim` is sliced by frames of its own dimension (all of it).
        theta = frames(jax.random.fold_in(key, 0), self.slices, x.shape[-1], min(self.dim, x.shape[-1]))
        phi = frames(jax.random.fold_in(key, 1), self.slices, d, min(self.dim, d))
        one_dim = theta.shape[-1] == 1 and phi.shape[-1] == 1
        per_slice = n * knn.window_width(n, self.k) * 4 if one_dim else n * n  # distances a slice holds
        chunk = max(1, min(self.slices, _PAIR_ELEMENTS // per_slice))  # slices projected together
        while self.slices % chunk:
            chunk -= 1

        def item(args):
            x_i, t_i, y_i = args

            def slices(frames_):
                th, ph = frames_  # [C, Dx, k], [C, D, k]
                px = knn.scaled(jnp.einsum("nx,cxk->cnk", x_i, th, precision=jax.lax.Precision.HIGHEST))
                pt = knn.scaled(jnp.einsum("nd,cdk->cnk", t_i, ph, precision=jax.lax.Precision.HIGHEST))
                if one_dim:  # by sorting, one slice at a time (`ksg_information_1d` branches)
                    return jax.lax.map(
                        lambda a: (
                            knn.ksg_information_1d(a[0][:, 0], a[1][:, 0], self.k),
                            knn.ross_information_1d(a[1][:, 0], y_i, self.k),
                        ),
                        (px, pt),
                    )
                xt = jax.vmap(lambda a, c: knn.ksg_information(a, c, self.k))(px, pt)
                ty = jax.vmap(lambda c: knn.ross_information(c, y_i, self.k))(pt)
                return xt, ty

            shaped = lambda f: f.reshape(self.slices // chunk, chunk, *f.shape[1:])  # noqa: E731
            xt, ty = jax.lax.map(slices, (shaped(theta), shaped(phi)))
            return xt.reshape(-1), ty.reshape(-1)

        xt, ty = jax.lax.map(item, (x, acts, y))  # [B, m] each
        m = self.slices
        mean = lambda v: jnp.mean(v, axis=1)  # noqa: E731
        se = lambda v: jnp.std(v, axis=1, ddof=1) / math.sqrt(m)  # noqa: E731
        nan = jnp.float32(jnp.nan)
        out = lambda v: jnp.where(bad, nan, v).astype(jnp.float32)  # noqa: E731
        return out(mean(xt)), out(mean(ty)), {"se_xt": out(se(xt)), "se_ty": out(se(ty))}


def sliced_information(
    acts: jax.Array,
    labels: jax.Array,
    inputs: jax.Array,
    *,
    slices: int = 1000,
    dim: int = 1,
    k: int = 3,
    seed: int = 0,
    num_classes: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Sliced SI(X;T) and SI(T;Y) in bits of one layer, with their standard errors over slices
    (see the module docstring).

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts`.
      inputs: the inputs X, flattened: [N, Dx] (shared by the items) or [..., N, Dx].
      slices: the number m of random projections.
      dim: their dimension k (1: sliced MI; k > 1: k-sliced).
      k: the k-NN estimators' neighbours.
      seed: the directions' key.
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      si_xt, si_ty, se_xt, se_ty: float32 [...] in bits.
    """
    estimator = Sliced(slices, dim, k, seed)
    i_xt, i_ty, extras = common.measure(
        (acts,), labels, estimator, num_classes=num_classes, inputs=inputs, with_extras=True
    )
    return i_xt[..., 0], i_ty[..., 0], extras["se_xt"][..., 0], extras["se_ty"][..., 0]
