"""L-BFGS for many independent penalized softmax regressions on shared inputs at once: the
held-out probe's fit (`probe`), with a line search whose trial steps cost one product with the
inputs (the logits are linear in the step size)."""

import jax
import jax.numpy as jnp

MEMORY = 10  # curvature pairs kept
PRECISION = jax.lax.Precision.HIGHEST  # float32 products on GPUs too (their default is TF32)

_STEP_SIZES = (1.0, 0.5, 0.2, 0.05)  # the line search's trial steps along the L-BFGS direction


def init(w, x) -> dict:
    """The state of `minimize` at weights w [D, B, C] (B independent problems), empty memory."""
    dim, b, c = w.shape
    return {
        "w": w,
        "logits": jnp.einsum("nd,dbc->nbc", x, w, precision=PRECISION),
        "s": jnp.zeros((MEMORY, dim, b, c), w.dtype),
        "y": jnp.zeros((MEMORY, dim, b, c), w.dtype),
        "rho": jnp.zeros((MEMORY, b), w.dtype),
        "head": jnp.zeros((), jnp.int32),
    }


def _objective_parts(logits, onehot, fold_weight):
    """Each problem's weighted cross-entropy [.., B] and its gradient with respect to the logits."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.sum(onehot[:, None, :] * log_p, axis=-1)  # [N, B]
    return jnp.sum(fold_weight * ce, axis=0), (jnp.exp(log_p) - onehot[:, None, :]) * fold_weight[..., None]


def minimize(state, steps, *, x, onehot, fold_weight, penalty, h0):
    """`steps` L-BFGS steps on B independent penalized softmax regressions at once:
    f_b(W) = sum_n fold_weight[n, b] CE(x_n W_b, y_n) + (1/2) sum_j penalty[j, b] |W_jb|^2.

    The initial inverse Hessian is diag(h0) [D, B] (Böhning's bound, inverted) scaled by the
    latest curvature pair. The logits are linear in the step size, so the line search costs one
    product x d for every trial step of `_STEP_SIZES`: each step reads x twice, as a gradient
    step does. A problem whose direction does not descend, or whose trials all rise, stays put
    and forgets its memory."""

    def gradient(w, logits):
        value, residual = _objective_parts(logits, onehot, fold_weight)
        value = value + 0.5 * jnp.sum(penalty[..., None] * w * w, axis=(0, 2))
        return value, jnp.einsum("nd,nbc->dbc", x, residual, precision=PRECISION) + penalty[..., None] * w

    def direction(st, g):  # the two-loop recursion, newest pair first
        def back(i, carry):
            q, alphas = carry
            j = (st["head"] - 1 - i) % MEMORY
            a = st["rho"][j] * jnp.sum(st["s"][j] * q, axis=(0, 2))
            return q - a[None, :, None] * st["y"][j], alphas.at[j].set(a)

        q, alphas = jax.lax.fori_loop(0, MEMORY, back, (g, jnp.zeros_like(st["rho"])))
        newest = (st["head"] - 1) % MEMORY
        sy = 1.0 / jnp.where(st["rho"][newest] > 0, st["rho"][newest], 1.0)
        yhy = jnp.sum(st["y"][newest] ** 2 * h0[..., None], axis=(0, 2))
        gamma = jnp.where((st["rho"][newest] > 0) & (yhy > 0), sy / jnp.where(yhy > 0, yhy, 1.0), 1.0)
        r = gamma[None, :, None] * h0[..., None] * q

        def forward(i, r):
            j = (st["head"] - MEMORY + i) % MEMORY
            beta = st["rho"][j] * jnp.sum(st["y"][j] * r, axis=(0, 2))
            return r + (alphas[j] - beta)[None, :, None] * st["s"][j]

        return -jax.lax.fori_loop(0, MEMORY, forward, r)

    def step(_, st):
        value, g = gradient(st["w"], st["logits"])
        d = direction(st, g)
        slope = jnp.sum(d * g, axis=(0, 2))  # [B]
        steepest = -h0[..., None] * g
        d = jnp.where((slope < 0)[None, :, None], d, steepest)  # not a descent direction: the bound's step
        logits_d = jnp.einsum("nd,dbc->nbc", x, d, precision=PRECISION)
        sizes = jnp.asarray(_STEP_SIZES, jnp.float32)
        trial = st["logits"][None] + sizes[:, None, None, None] * logits_d[None]  # [S, N, B, C]
        ce = jax.vmap(lambda lg: _objective_parts(lg, onehot, fold_weight)[0])(trial)  # [S, B]
        ww, wd, dd = (
            jnp.sum(penalty[..., None] * a * b_, axis=(0, 2)) for a, b_ in ((st["w"], st["w"]), (st["w"], d), (d, d))
        )
        values = ce + 0.5 * (ww + 2 * sizes[:, None] * wd + sizes[:, None] ** 2 * dd)
        best = jnp.argsort(values, axis=0)[0]  # [B] (argmin miscompiles under x64 here)
        lowest = jnp.take_along_axis(values, best[None], axis=0)[0]
        moves = lowest < value
        size = jnp.where(moves, sizes[best], 0.0)
        w = st["w"] + size[None, :, None] * d
        logits = st["logits"] + size[None, :, None] * logits_d
        _, g_new = gradient(w, logits)
        s_new, y_new = size[None, :, None] * d, g_new - g
        sy = jnp.sum(s_new * y_new, axis=(0, 2))
        keep = moves & (sy > 1e-10)
        head = st["head"]
        return {
            "w": w,
            "logits": logits,
            "s": st["s"].at[head].set(jnp.where(keep[None, :, None], s_new, 0.0)),
            "y": st["y"].at[head].set(jnp.where(keep[None, :, None], y_new, 0.0)),
            "rho": st["rho"].at[head].set(jnp.where(keep, 1.0 / jnp.where(keep, sy, 1.0), 0.0)),
            "head": (head + 1) % MEMORY,
        }

    return jax.lax.fori_loop(0, steps, step, state)
