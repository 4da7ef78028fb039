"""Decodable information: a lower bound on I(T;Y) from held-out probes (Barber & Agakov 2003;
Xu et al.'s "usable information", ICLR 2020), in bits.

For any predictor q(y|t), I(T;Y) = H(Y) - H(Y|T) >= H(Y) - E[-log2 q(Y|T)]: the cross-entropy
of a probe bounds the conditional entropy from above, with equality when q is the true
posterior. The estimate is

  I_probe(T;Y) = H(Y) - (1/N) sum_i -log2 q_(k(i))(y_i | t_i)

with H(Y) the plug-in entropy of the N measured labels and q_(k) the probe of fold k: the N
samples are split into `folds` folds (a fixed shuffle), and each sample's loss comes from the
probe fitted on the other folds (cross-fitting). A probe scored on its own training samples
would read memorization where there is none: a wide layer "decodes" any labelling of its own
training samples.

The probe (per fold, on the layer's activations standardized over the N samples; the
standardization reads no label):
  * `hidden=0` (default): softmax regression, logits t W + b, with the ridge penalty
    (lam/2)|W|^2 on the mean cross-entropy (the intercept b unpenalized), for every lam of
    `penalties` at once: P x K independent problems in one program. Fitted by `steps` steps of
    L-BFGS (memory 10) in the eigenbasis of T'T/N, whose initial inverse Hessian is Böhning's
    bound (1992) on the Hessian of the mean cross-entropy, (1/2)(I - 11'/C) x T'T/n_k, itself at
    most (1/2)(N/n_k) T'T/N: diagonal there. The logits are linear in the step size, so the line
    search tries several step sizes for the price of one product: each step costs two passes
    over the activations, as a gradient step does.
  * `hidden=H`: a one-hidden-layer ReLU network (H units) with the same penalty on both weight
    matrices, `steps` full-batch Adam steps (learning rate `learning_rate`) from one
    Glorot-normal start drawn from `seed`.
Then the calibration, also held out: for fold k a temperature and a class offset,
softmax(a l(t) + c) with a scalar a >= 0 and c [C], are fitted by Newton's method on the other
folds' held-out logits l, and the penalty lam with the smallest calibrated loss on the other
folds is chosen. This is the documented regularization rule (docs/accuracy.md): an over-fitted
probe is over-confident, which the temperature undoes on data the probe never saw, and a
penalty that is too strong is never chosen because its held-out loss is larger. Every sample's
final loss comes from a probe, a temperature and a penalty fitted without its label except
through the other folds' held-out losses (a selection of 1 + C + 1 numbers from N samples:
optimism of order C/N nats).

The value is a lower bound up to that optimism and the sampling error: it can be slightly
below 0 where T carries nothing about Y (the probe's estimation noise costs cross-entropy).
It is returned raw, never clipped. I(X;T) is not measured: NaN. Items with a NaN or infinite
activation give NaN.

Every probe of a measurement is in its one compiled program: the penalties x folds of an item
at once (vectorized), the items (rows, epochs) one after another in a loop (memory stays
bounded; several items vmapped together stopped XLA:CPU inside a run's program here), layers
and splits one after another.

Diagnostics (`Probe.extras`, per item): "accuracy", the held-out probe's accuracy; and
"change", the estimate after all `steps` minus the estimate after 90% of them (bits): near 0
when the fits have converged.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ib_jax.estimators import common, lbfgs

PENALTIES = (1e-5, 1e-3, 1e-1)  # lam, the ridge penalty on the mean cross-entropy
_CALIBRATION_STEPS = 12  # Newton steps of the temperature and offset
_CALIBRATION_SIZES = (1.0, 0.5, 0.25, 0.1)  # and their trial step sizes
_CONVERGENCE_FRACTION = 0.9  # "change": the estimate after every step minus after this share
_PRECISION = lbfgs.PRECISION


@dataclasses.dataclass(frozen=True)
class Probe(common.Estimator):
    """`Probe(folds=5, hidden=0, steps=..., penalties=PENALTIES, seed=0, learning_rate=0.01)`;
    see the module docstring. `steps` defaults to 60 for the softmax probe and 300 for the MLP."""

    folds: int = 5
    hidden: int = 0
    steps: int = 0  # 0: the default of the probe (60 softmax, 300 MLP)
    penalties: tuple[float, ...] = PENALTIES
    seed: int = 0
    learning_rate: float = 0.01

    extras = ("accuracy", "change")
    measures_xt = False
    resamples = False
    resamples_why = (
        "a resample's copies of one sample would land in the probe's fitting and its held-out folds (the permutation "
        "null, --null_permutations, applies)"
    )

    def __post_init__(self):
        for field, low in (("folds", 2), ("hidden", 0), ("steps", 0), ("seed", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, field, int(value))
        if self.steps == 0:
            object.__setattr__(self, "steps", 300 if self.hidden else 60)
        if self.steps < 10:
            raise ValueError(f"steps must be >= 10, got {self.steps}")
        try:
            penalties = tuple(float(p) for p in self.penalties)
        except (TypeError, ValueError):
            raise ValueError(f"penalties must be numbers, got {self.penalties!r}") from None
        if not penalties or not all(math.isfinite(p) and p > 0 for p in penalties):
            raise ValueError(f"penalties must be one or more positive numbers, got {self.penalties!r}")
        object.__setattr__(self, "penalties", penalties)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {rate!r}")
        object.__setattr__(self, "learning_rate", float(rate))

    @property
    def name(self) -> str:
        return "probe"

    def check_size(self, n: int, num_classes: int) -> None:
        """ValueError unless every fold holds a sample and the training folds more than one."""
        if n < 2 * self.folds:
            raise ValueError(f"the probe needs at least 2 x folds = {2 * self.folds} samples, got {n}")

    def layer_information(self, acts_BxNxD, labels, num_classes: int, exact: bool):
        del exact
        b, n, _ = acts_BxNxD.shape
        bad = ~common.finite_items(acts_BxNxD)
        acts = jnp.where(bad[:, None, None], 0.0, acts_BxNxD).astype(jnp.float32)
        y = jnp.broadcast_to(labels, (b, n)).astype(jnp.int32)
        folds = jnp.asarray(fold_ids(n, self.folds, self.seed))
        h_y = common.entropy_bits(common.label_distribution(y, num_classes))  # [B]
        measure = jax.vmap(functools.partial(self._item, folds=folds, num_classes=num_classes))
        # One item at a time: two or more vmapped together inside a run's compiled program stopped
        # XLA:CPU here (every thread waiting, from 2 rows at N = 1,000), alone they never did.
        loss, accuracy, change = common.in_chunks(measure, acts, 1, y)
        nan = jnp.float32(jnp.nan)
        i_ty = jnp.where(bad, nan, h_y - loss).astype(jnp.float32)
        change = jnp.where(bad, nan, change).astype(jnp.float32)
        extras = {"accuracy": jnp.where(bad, nan, accuracy).astype(jnp.float32), "change": change}
        return jnp.full((b,), nan), i_ty, extras

    def _item(self, acts_NxD, y_N, *, folds, num_classes):
        """(held-out loss in bits, held-out accuracy, the estimate's change over the last 10% of
        the steps) of one item."""
        z = standardize(acts_NxD)
        train = folds[None, :] != jnp.arange(self.folds)[:, None]  # [K, N]
        onehot = jax.nn.one_hot(y_N, num_classes, dtype=jnp.float32)
        fit = self._fit_linear if self.hidden == 0 else self._fit_mlp
        early, final = fit(z, onehot, train)  # held-out logits [P, N, C] after 90% and all steps
        score = functools.partial(calibrated_loss, onehot=onehot, folds=folds, num_folds=self.folds)
        loss, accuracy = score(final)
        early_loss, _ = score(early)  # the convergence check: the estimate after 90% of the steps
        return loss, accuracy, early_loss - loss

    def _fit_linear(self, z, onehot, train):
        n, d = z.shape
        k, c = self.folds, onehot.shape[1]
        p = len(self.penalties)
        gram = jnp.matmul(z.T, z, precision=_PRECISION) / n
        curvature, basis = jnp.linalg.eigh(gram)
        rotated = jnp.matmul(z, basis, precision=_PRECISION)
        x = jnp.concatenate([rotated, jnp.ones((n, 1), z.dtype)], axis=1)  # with the intercept
        curvature = jnp.concatenate([jnp.maximum(curvature, 0.0), jnp.ones(1, z.dtype)])  # [D + 1]
        lams = np.repeat(np.asarray(self.penalties, np.float32), k)  # problem b = (penalty b // K, fold b % K)
        penalty = jnp.asarray(np.outer(np.append(np.ones(d), 0.0), lams), jnp.float32)  # [D + 1, B]
        n_k = jnp.sum(train, axis=1).astype(jnp.float32)  # [K]
        fold_weight = jnp.tile(train / n_k[:, None], (p, 1)).T.astype(jnp.float32)  # [N, B]: mean over its folds
        # Böhning's bound of each problem's Hessian, diagonal here: (1/2) (N / n_k) curvature + lam.
        bound = 0.5 * jnp.tile(n / n_k, p)[None, :] * curvature[:, None] + penalty  # [D + 1, B]
        w = jnp.zeros((d + 1, p * k, c), jnp.float32)
        first = max(1, int(round(_CONVERGENCE_FRACTION * self.steps)))
        solver = functools.partial(
            lbfgs.minimize, x=x, onehot=onehot, fold_weight=fold_weight, penalty=penalty, h0=1.0 / bound
        )
        early = solver(lbfgs.init(w, x), first)
        final = solver(early, self.steps - first)
        # The solver keeps the logits x W of its weights: no second product.
        return (held_out_logits(jnp.moveaxis(st["logits"], 1, 0).reshape(p, k, n, c), train) for st in (early, final))

    def _fit_mlp(self, z, onehot, train):
        n, d = z.shape
        k, c, h = self.folds, onehot.shape[1], self.hidden
        penalties = jnp.asarray(self.penalties, jnp.float32)
        n_k = jnp.sum(train, axis=1).astype(jnp.float32)
        weight = (train / n_k[:, None]).astype(jnp.float32)  # [K, N]

        rng = np.random.default_rng([self.seed, d, h])  # one Glorot-normal start for every problem
        start = {
            "w1": jnp.asarray(rng.normal(size=(d, h)) * math.sqrt(2.0 / (d + h)), jnp.float32),
            "b1": jnp.zeros(h, jnp.float32),
            "w2": jnp.asarray(rng.normal(size=(h, c)) * math.sqrt(2.0 / (h + c)), jnp.float32),
            "b2": jnp.zeros(c, jnp.float32),
        }

        def logits_of(params):
            return jax.nn.relu(z @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]

        def loss(params, lam, fold_weight):
            ce = -jnp.sum(onehot * jax.nn.log_softmax(logits_of(params)), axis=-1)
            return jnp.sum(fold_weight * ce) + 0.5 * lam * (jnp.sum(params["w1"] ** 2) + jnp.sum(params["w2"] ** 2))

        optimizer = optax.adam(self.learning_rate)
        params = jax.tree.map(lambda a: jnp.broadcast_to(a, (len(self.penalties), k, *a.shape)), start)
        lams = jnp.broadcast_to(penalties[:, None], (len(self.penalties), k))
        weights = jnp.broadcast_to(weight[None], (len(self.penalties), k, n))

        def one_step(params, opt_state, lam, fold_weight):
            grads = jax.grad(loss)(params, lam, fold_weight)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        vstep = jax.vmap(jax.vmap(one_step))

        def step(_, carry):
            return vstep(*carry, lams, weights)

        state = (params, jax.vmap(jax.vmap(optimizer.init))(params))
        first = max(1, int(round(_CONVERGENCE_FRACTION * self.steps)))
        early = jax.lax.fori_loop(0, first, step, state)
        final = jax.lax.fori_loop(first, self.steps, step, early)
        return (held_out_logits(jax.vmap(jax.vmap(logits_of))(s[0]), train) for s in (early, final))


def fold_ids(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """The fold of each of n samples, int32 [n]: a fixed shuffle (from `seed`) dealt round."""
    ids = np.empty(n, np.int32)
    ids[np.random.default_rng([seed, n]).permutation(n)] = np.arange(n) % folds
    return ids


def standardize(acts_NxD: jax.Array) -> jax.Array:
    """Each unit centred and scaled to unit variance over the N samples; a constant unit is 0."""
    centred = acts_NxD - jnp.mean(acts_NxD, axis=0)
    std = jnp.sqrt(jnp.mean(centred**2, axis=0))
    return centred / jnp.where(std > 1e-6 * (1.0 + jnp.max(jnp.abs(acts_NxD), axis=0)), std, jnp.inf)


def held_out_logits(logits_PxKxNxC: jax.Array, train_KxN: jax.Array) -> jax.Array:
    """[P, N, C]: each sample's logits from the probe of its own fold (the one not trained on it)."""
    return jnp.sum(jnp.where(train_KxN[None, :, :, None], 0.0, logits_PxKxNxC), axis=1)


def _calibration_parts(theta, unit, onehot, weight):
    """The weighted mean cross-entropy of softmax(theta[0] unit + theta[1:]) (weights summing to
    1), its gradient and Hessian in theta [C + 1], in one pass over the samples."""
    scaled = theta[0] * unit + theta[1:]
    log_p = jax.nn.log_softmax(scaled)
    prob = jnp.exp(log_p)
    value = -jnp.sum(weight * jnp.sum(onehot * log_p, axis=-1))
    mean_l = jnp.sum(prob * unit, axis=-1)  # E_p[l] per sample
    g_a = jnp.sum(weight * (mean_l - jnp.sum(onehot * unit, axis=-1)))
    g_c = weight @ (prob - onehot)
    h_aa = jnp.sum(weight * (jnp.sum(prob * unit**2, axis=-1) - mean_l**2))
    h_ac = weight @ (prob * (unit - mean_l[:, None]))
    h_cc = jnp.diag(weight @ prob) - jnp.einsum("n,nc,nd->cd", weight, prob, prob)
    grad = jnp.concatenate([g_a[None], g_c])
    hess = jnp.block([[h_aa[None, None], h_ac[None, :]], [h_ac[:, None], h_cc]])
    return value, grad, hess


def _calibrate(logits_NxC, onehot, weight_N):
    """The temperature a >= 0 and offset c [C] of softmax(a l + c) fitted to the weighted samples
    (damped Newton: the best of a few step sizes, never uphill); returns (theta [C + 1], loss)."""
    c = onehot.shape[1]
    weight = weight_N / jnp.sum(weight_N)
    scale = jnp.sqrt(jnp.sum(weight[:, None] * logits_NxC**2) / c) + 1e-6
    unit = logits_NxC / scale  # the logits in units of their size
    value_of = lambda th: _calibration_parts(th, unit, onehot, weight)[0]  # noqa: E731
    sizes = jnp.asarray(_CALIBRATION_SIZES, jnp.float32)

    def newton(_, theta):
        value, grad, hess = _calibration_parts(theta, unit, onehot, weight)
        hess = hess + (1e-6 + 1e-3 * jnp.trace(hess) / (c + 1)) * jnp.eye(c + 1, dtype=jnp.float32)
        trials = theta[None] - sizes[:, None] * jnp.linalg.solve(hess, grad)[None]
        trials = trials.at[:, 0].set(jnp.maximum(trials[:, 0], 0.0))
        values = jax.vmap(value_of)(trials)
        best = jnp.argsort(values)[0]  # (argmin miscompiles under x64 here)
        return jnp.where(values[best] < value, trials[best], theta)

    prior = jnp.log(weight @ onehot + 1e-6)
    start = jnp.concatenate([jnp.zeros(1, jnp.float32), prior - prior.mean()])
    theta = jax.lax.fori_loop(0, _CALIBRATION_STEPS, newton, start)
    return theta.at[0].divide(scale), value_of(theta)


def cross_entropy_bits(logits_NxC, onehot) -> jax.Array:
    """Each sample's cross-entropy in bits, [N]."""
    return -jnp.sum(onehot * jax.nn.log_softmax(logits_NxC), axis=-1) / math.log(2.0)


def calibrated_loss(logits_PxNxC, *, onehot, folds, num_folds: int):
    """Held-out cross-entropy (bits) and accuracy after the
    held-out calibration and choice of penalty (see the module docstring)."""
    _, n, _ = logits_PxNxC.shape
    others = (folds[None, :] != jnp.arange(num_folds)[:, None]).astype(jnp.float32)  # [K, N]
    fit = jax.vmap(jax.vmap(_calibrate, in_axes=(None, None, 0)), in_axes=(0, None, None))
    theta, others_loss = fit(logits_PxNxC, onehot, others)  # [P, K, C + 1], [P, K]
    best = jnp.argsort(others_loss, axis=0)[0]  # [K]: each fold's penalty (argmin miscompiles under x64 here)
    chosen = theta[best, jnp.arange(num_folds)][folds]  # [N, C + 1]
    scaled = chosen[:, :1] * logits_PxNxC[best[folds], jnp.arange(n)] + chosen[:, 1:]
    accuracy = jnp.mean(jnp.sum(onehot * scaled, axis=-1) >= jnp.max(scaled, axis=-1))  # ties count as right
    return jnp.mean(cross_entropy_bits(scaled, onehot)), accuracy


def probe_information(
    acts: jax.Array,
    labels: jax.Array,
    *,
    folds: int = 5,
    hidden: int = 0,
    steps: int = 0,
    penalties: tuple[float, ...] = PENALTIES,
    seed: int = 0,
    num_classes: int | None = None,
) -> jax.Array:
    """The held-out probe's lower bound on I(T;Y) in bits of one layer (see the module docstring).

    Args:
      acts: [..., N, D]; the leading axes (seeds, epochs, ...) are items measured separately.
      labels: int [N], or [..., N] with the leading axes of `acts`.
      folds: the cross-fitting folds (>= 2).
      hidden: 0 for softmax regression, else the hidden units of a one-hidden-layer ReLU probe.
      steps: the fitting steps (0: 60 for softmax regression, 300 for the MLP).
      penalties: the ridge penalties the held-out loss chooses from.
      seed: the folds' shuffle (and the MLP's initialisation).
      num_classes: inferred from concrete labels, required inside jit.

    Returns:
      i_ty: float32 [...] in bits (I(X;T) is not measured: see `common.one_layer` for both).
    """
    estimator = Probe(folds=folds, hidden=hidden, steps=steps, penalties=tuple(penalties), seed=seed)
    return common.one_layer(acts, labels, estimator, num_classes=num_classes)[1]
