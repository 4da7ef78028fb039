"""Tests of the held-out probe: a plain-numpy reference of its definition, its limits (separable
classes, independent labels), the held-out property, per-item labels, jit and vmap, bad input."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from ib_jax import estimators, validation
from ib_jax.estimators import probe


def _entropy_bits(y, k):
    p = np.bincount(y, minlength=k) / len(y)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def _mean_ce(s, onehot):
    s = s - s.max(axis=-1, keepdims=True)
    return float(np.mean(np.log(np.exp(s).sum(-1)) - (onehot * s).sum(-1)))


def _newton_softmax(x, onehot, lam):
    """Penalized softmax regression solved by Newton's method with backtracking (float64):
    min (1/n) sum CE(x W) + lam/2 |W without the last row (the intercept)|^2."""
    n, d = x.shape
    k = onehot.shape[1]
    pen = np.kron(np.append(np.full(d - 1, lam), 0.0), np.ones(k))  # W flattened row-major [d * k]
    w = np.zeros(d * k)

    def value(w):
        return _mean_ce(x @ w.reshape(d, k), onehot) + 0.5 * np.sum(pen * w * w)

    for _ in range(100):
        p = _softmax(x @ w.reshape(d, k))
        grad = (x.T @ (p - onehot) / n).ravel() + pen * w
        spread = np.einsum("na,ab->nab", p, np.eye(k)) - np.einsum("na,nb->nab", p, p)
        hess = np.einsum("ni,nj,nab->iajb", x, x, spread).reshape(d * k, d * k)
        hess = hess / n + np.diag(pen) + 1e-10 * np.eye(d * k)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        size, now = 1.0, value(w)
        while value(w - size * step) > now and size > 1e-8:
            size /= 2
        w = w - size * step
        if np.abs(grad).max() < 1e-9:
            break
    return w.reshape(d, k)


def _calibrate(logits, onehot):
    """The temperature a >= 0 and offset c of softmax(a l + c) minimizing the mean CE, by a
    search over a then Newton on (a, c) (float64); returns (a, c, the loss)."""
    k = onehot.shape[1]

    def fit_offset(a):  # the offset is convex given a: Newton on c
        c = np.log(onehot.mean(0) + 1e-12)
        for _ in range(15):
            p = _softmax(a * logits + c)
            g = (p - onehot).mean(0)
            h = (np.einsum("nc,cd->cd", p, np.eye(k)) - np.einsum("nc,nd->cd", p, p)) / len(p) + 1e-12 * np.eye(k)
            c = c - np.linalg.lstsq(h, g, rcond=None)[0]
        return c, _mean_ce(a * logits + c, onehot)

    grid = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 31)])
    losses = [fit_offset(a)[1] for a in grid]
    best = int(np.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    for _ in range(40):  # golden-section search of a in the bracket
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if fit_offset(m1)[1] < fit_offset(m2)[1]:
            hi = m2
        else:
            lo = m1
    a = (lo + hi) / 2
    c, loss = fit_offset(a)
    return a, c, loss


def reference(t, y, k, *, folds=5, seed=0, penalties=probe.PENALTIES):
    """The definition in ib_jax.estimators.probe, in plain numpy: cross-fitted penalized softmax
    regressions on standardized activations, each fold's temperature, offset and penalty chosen
    on the other folds' held-out logits."""
    t = np.asarray(t, np.float64)
    n = len(y)
    ids = np.empty(n, int)
    ids[np.random.default_rng([seed, n]).permutation(n)] = np.arange(n) % folds
    centred = t - t.mean(0)
    sd = np.sqrt((centred**2).mean(0))
    z = np.where(sd > 1e-6 * (1 + np.abs(t).max(0)), centred / np.where(sd > 0, sd, 1), 0.0)
    x = np.hstack([z, np.ones((n, 1))])
    onehot = np.eye(k)[y]
    logits = np.zeros((len(penalties), n, k))
    for p, lam in enumerate(penalties):
        for f in range(folds):
            train = ids != f
            logits[p, ~train] = x[~train] @ _newton_softmax(x[train], onehot[train], lam)
    total = 0.0
    for f in range(folds):
        others = ids != f
        fits = [_calibrate(logits[p, others], onehot[others]) for p in range(len(penalties))]
        p = int(np.argmin([loss for _, _, loss in fits]))
        a, c, _ = fits[p]
        total += _mean_ce(a * logits[p, ~others] + c, onehot[~others]) * np.sum(~others)
    return _entropy_bits(y, k) - total / n / math.log(2)


def _clusters(seed, n, dim, k, separation):
    t, y = validation.class_clusters(seed, n=n, dim=dim, num_classes=k, separation=separation, spread=1.0)
    return t, y


class ProbeTest(chex.TestCase):
    def test_matches_the_numpy_reference(self):
        # Shapes shared: 3 items of [300, 3], K = 3 (one compilation).
        cases = [_clusters(s, 300, 3, 3, sep) for s, sep in ((0, 0.0), (1, 1.0), (2, 2.5))]
        t = np.stack([c[0] for c in cases])
        y = np.stack([c[1] for c in cases])
        got = np.asarray(estimators.probe_information(t, y, steps=200))
        want = [reference(c[0], c[1], 3) for c in cases]
        np.testing.assert_allclose(got, want, atol=3e-3)

    def test_separable_classes_give_h_y_and_independent_labels_zero(self):
        t, y = _clusters(3, 600, 4, 4, 30.0)  # 30 spreads apart: every class decodable
        noise = np.random.default_rng(4).normal(size=(600, 4)).astype(np.float32)  # nothing about y
        values = np.asarray(estimators.probe_information(np.stack([t, noise]), y))
        self.assertAlmostEqual(values[0], _entropy_bits(y, 4), delta=0.05)
        self.assertLess(abs(values[1]), 0.05)

    def test_held_out_random_labels_read_zero_where_in_sample_reads_h_y(self):
        rng = np.random.default_rng(5)
        n, d, k = 200, 120, 4  # D >= N/2: any labelling of the training folds is fitted
        t = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, k, n).astype(np.int32)
        held_out = float(estimators.probe_information(t, y))
        self.assertLess(abs(held_out), 0.1)
        x = np.hstack([(t - t.mean(0)) / t.std(0), np.ones((n, 1))])  # the same probe scored in sample
        w = _newton_softmax(x.astype(np.float64), np.eye(k)[y], 1e-5)
        in_sample = _entropy_bits(y, k) - _mean_ce(x @ w, np.eye(k)[y]) / math.log(2)
        self.assertGreater(in_sample, 0.9 * _entropy_bits(y, k))

    def test_per_item_labels_jit_and_vmap(self):
        t, y = _clusters(6, 300, 3, 3, 1.5)
        y2 = np.random.default_rng(7).permutation(y)
        both = np.asarray(estimators.probe_information(np.stack([t, t]), np.stack([y, y2])))
        alone = [float(estimators.probe_information(t, labels)) for labels in (y, y2)]
        np.testing.assert_allclose(both, alone, atol=1e-4)
        jitted = jax.jit(lambda a, b: estimators.probe_information(a, b, num_classes=3))
        np.testing.assert_allclose(jitted(t, y), alone[0], atol=1e-4)
        mapped = jax.vmap(lambda a, b: estimators.probe_information(a, b, num_classes=3))
        np.testing.assert_allclose(mapped(jnp.stack([t, t]), jnp.stack([y, y2])), both, atol=1e-4)

    def test_mlp_probe_and_diagnostics(self):
        t, y = _clusters(8, 300, 3, 3, 30.0)
        bad = np.full_like(t, np.nan)
        i_xt, i_ty, extras = estimators.common.measure(
            (np.stack([t, bad]),), y, estimators.Probe(hidden=8, steps=200), with_extras=True
        )
        self.assertTrue(np.isnan(np.asarray(i_xt)).all())  # a probe measures I(T;Y) only
        self.assertAlmostEqual(float(i_ty[0, 0]), _entropy_bits(y, 3), delta=0.05)
        self.assertTrue(np.isnan(float(i_ty[1, 0])))
        self.assertAlmostEqual(float(extras["accuracy"][0, 0]), 1.0, delta=0.01)
        self.assertLess(abs(float(extras["change"][0, 0])), 0.01)

    def test_bad_arguments_are_value_errors(self):
        t, y = _clusters(0, 300, 3, 3, 1.0)
        for kwargs in ({"folds": 1}, {"hidden": -1}, {"steps": 5}, {"penalties": ()}, {"penalties": (0.0,)}):
            with self.subTest(**{k: str(v) for k, v in kwargs.items()}), self.assertRaises(ValueError):
                estimators.probe_information(t, y, **kwargs)
        with self.assertRaisesRegex(ValueError, "at least 2 x folds = 10 samples"):
            estimators.probe_information(t[:9], y[:9], num_classes=3)
        with self.assertRaisesRegex(ValueError, "folds must be an integer >= 2"):
            estimators.by_name("probe", binning=None, noise_variance=0.1, num_bins=30, probe_folds=0)


if __name__ == "__main__":
    absltest.main()
