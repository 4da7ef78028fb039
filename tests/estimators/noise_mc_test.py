"""Tests of `noise_mc`, the information of a layer with noise of its own: against an
independent plain-numpy Monte Carlo (additive and multiplicative noise), against `kde_mc`
under additive noise, the standard errors, the zero-variance rule, layers without noise, and
bad arguments."""

import math

import chex
import jax
import numpy as np
from absl.testing import absltest

from ib_jax import estimators, noise, validation
from ib_jax.estimators import noise_mc


def _variances(mu, spec, min_std=1e-3):
    layer_noise = noise.LayerNoise.parse(spec)
    return np.maximum(np.asarray(layer_noise.variance(mu)), min_std**2)


class NoiseMcTest(chex.TestCase):
    def test_matches_an_independent_monte_carlo(self):
        rng = np.random.default_rng(0)
        for spec, d in (("additive:0.5", 3), ("gaussian_dropout:0.2", 3), ("gaussian_dropout:0.5", 8)):
            mu = np.tanh(rng.normal(size=(80, d)) * 1.5).astype(np.float32)
            y = rng.integers(0, 3, 80).astype(np.int32)
            i_xt, i_ty, se_xt, se_ty = estimators.noise_mc_information(mu, y, noise=spec, samples=200)
            # (the reference's draws from a seed other than the data's: the same stream would correlate them)
            truth, err = validation.diagonal_noise_information(mu, _variances(mu, spec), draws=40_000, seed=7)
            self.assertLess(float(se_xt), 0.05, spec)
            self.assertAlmostEqual(float(i_xt), truth, delta=4 * math.hypot(float(se_xt), err), msg=spec)
            # I(T;Y) = I(X;T) - I(X;T|Y): the class-conditional mixtures by the same reference.
            cond = sum(
                np.mean(y == c)
                * validation.diagonal_noise_information(mu[y == c], _variances(mu[y == c], spec), draws=20_000, seed=8)[
                    0
                ]
                for c in range(3)
            )
            self.assertAlmostEqual(float(i_ty), truth - cond, delta=0.08, msg=spec)
            self.assertTrue(0 < float(se_ty) < 0.05)

    def test_equals_kde_mc_under_additive_noise(self):
        rng = np.random.default_rng(1)
        for d, sigma in ((2, 0.3), (20, 1.0), (100, 2.0)):
            mu = rng.normal(size=(300, d)).astype(np.float32)
            y = rng.integers(0, 4, 300).astype(np.int32)
            i_xt, i_ty, se_xt, se_ty = estimators.noise_mc_information(mu, y, noise=f"additive:{sigma}", samples=16)
            k_xt, k_ty = estimators.kde_information(mu, y, noise_variance=sigma**2, bound="mc", mc_samples=16)
            tol = 5 * math.sqrt(2) * max(float(se_xt), 1e-3)
            self.assertAlmostEqual(float(i_xt), float(k_xt), delta=tol, msg=(d, sigma))
            self.assertAlmostEqual(float(i_ty), float(k_ty), delta=5 * math.sqrt(2) * max(float(se_ty), 1e-3) + tol)

    def test_standard_error_shrinks_with_draws(self):
        rng = np.random.default_rng(2)
        mu = rng.normal(size=(100, 4)).astype(np.float32)
        y = rng.integers(0, 2, 100).astype(np.int32)
        few = estimators.noise_mc_information(mu, y, noise="gaussian_dropout:0.3", samples=4)
        many = estimators.noise_mc_information(mu, y, noise="gaussian_dropout:0.3", samples=64)
        self.assertAlmostEqual(float(many[2]) * 4, float(few[2]), delta=float(few[2]))  # ~ 1/sqrt(M)
        spread = [
            float(estimators.noise_mc_information(mu, y, noise="gaussian_dropout:0.3", samples=4, seed=s)[0])
            for s in range(12)
        ]
        self.assertAlmostEqual(np.std(spread, ddof=1), float(few[2]), delta=0.6 * float(few[2]))

    def test_zero_variance_rule(self):
        rng = np.random.default_rng(3)
        mu = np.maximum(rng.normal(size=(150, 4)), 0).astype(np.float32)  # ReLU: exact zeros
        y = rng.integers(0, 3, 150).astype(np.int32)
        dead = np.concatenate([mu, np.zeros((150, 1), np.float32)], axis=1)  # a unit off for every sample
        a = estimators.noise_mc_information(mu, y, noise="gaussian_dropout:0.3", samples=32)
        b = estimators.noise_mc_information(dead, y, noise="gaussian_dropout:0.3", samples=32)
        # Its factor is the same for every component, so only the draws of the other units differ.
        self.assertAlmostEqual(float(a[0]), float(b[0]), delta=4 * math.hypot(float(a[2]), float(b[2])))
        self.assertAlmostEqual(float(a[1]), float(b[1]), delta=4 * math.hypot(float(a[3]), float(b[3])))
        for v in a:
            self.assertTrue(np.isfinite(float(v)))
        self.assertLessEqual(float(a[0]), math.log2(150) + 1e-4)
        # The rule is the floor min_std: the value follows the reference with that floor.
        truth, err = validation.diagonal_noise_information(
            mu, _variances(mu, "gaussian_dropout:0.3"), draws=30_000, seed=9
        )
        self.assertAlmostEqual(float(a[0]), truth, delta=4 * math.hypot(float(a[2]), err) + 0.02)

    def test_layers_without_noise_are_nan_and_bad_arguments(self):
        rng = np.random.default_rng(4)
        acts = [rng.normal(size=(50, w)).astype(np.float32) for w in (3, 2, 2)]
        y = rng.integers(0, 2, 50).astype(np.int32)
        est = estimators.NoiseMC(noise.LayerNoise("additive", 0.5, (2,)))
        i_xt, i_ty = estimators.information_plane(acts, y, estimator=est)  # layers: hidden 1, hidden 2, logits
        self.assertTrue(np.isnan(i_xt[0]) and np.isnan(i_xt[2]) and np.isfinite(i_xt[1]))
        with self.assertRaisesRegex(ValueError, "layer_noise"):
            estimators.NoiseMC(noise.LayerNoise())
        with self.assertRaisesRegex(ValueError, "layer_noise"):
            estimators.by_name("noise_mc", binning=estimators.Binning(bin_size=0.5), noise_variance=0.1, num_bins=30)
        for bad in ({"samples": 1}, {"seed": -1}, {"min_std": 0.0}):
            with self.assertRaises(ValueError):
                estimators.NoiseMC("additive:0.1", **bad)
        with self.assertRaises(ValueError):
            estimators.NoiseMC("additive:-1")
        with self.assertRaisesRegex(ValueError, "noise of its own"):
            estimators.channels.measure_splits([est], [(acts, y, None), (acts, y, None)], 2)

    def test_items_and_jit(self):
        rng = np.random.default_rng(5)
        mu = rng.normal(size=(2, 3, 40, 3)).astype(np.float32)
        y = rng.integers(0, 2, 40).astype(np.int32)
        out = estimators.noise_mc_information(mu, y, noise="gaussian_dropout:0.2")
        for v in out:
            chex.assert_shape(v, (2, 3))
        one = estimators.noise_mc_information(mu[1, 2], y, noise="gaussian_dropout:0.2")
        self.assertTrue(np.isfinite(float(one[0])))
        jitted = jax.jit(lambda a: noise_mc.noise_mc_information(a, y, noise="additive:0.3", num_classes=2))(mu)
        chex.assert_shape(jitted[0], (2, 3))


class LayerNoiseTest(chex.TestCase):
    def test_draws_have_the_stated_statistics(self):
        mean = np.linspace(-2, 2, 9).astype(np.float32)
        key = jax.random.key(0)
        for spec, var in (("additive:0.3", np.full(9, 0.09)), ("gaussian_dropout:0.2", 0.25 * mean**2)):
            layer_noise = noise.LayerNoise.parse(spec)
            draws = np.asarray(jax.vmap(layer_noise.sample, in_axes=(0, None))(jax.random.split(key, 40_000), mean))
            np.testing.assert_allclose(draws.mean(0), mean, atol=0.02)
            np.testing.assert_allclose(draws.var(0), var, rtol=0.05, atol=1e-3)
            np.testing.assert_allclose(np.asarray(layer_noise.variance(mean)), var, rtol=1e-6)

    def test_parse_and_layers(self):
        self.assertEqual(noise.LayerNoise.parse("none"), noise.LayerNoise())
        self.assertEqual(noise.LayerNoise.parse("additive:0.5", "3,1").layers, (1, 3))
        self.assertEqual(noise.LayerNoise.parse("gaussian_dropout:0.2").spec, "gaussian_dropout:0.2")
        n = noise.LayerNoise.parse("gaussian_dropout:0.2", (2,))
        self.assertEqual([n.noisy(i, 3) for i in range(4)], [False, True, False, False])
        self.assertEqual(
            [noise.LayerNoise.parse("additive:1").noisy(i, 3) for i in range(4)], [True, True, True, False]
        )
        for bad in ("dropout:0.2", "gaussian_dropout:1", "gaussian_dropout:0", "additive:0", "additive:x", "none:1"):
            with self.assertRaises(ValueError, msg=bad):
                noise.LayerNoise.parse(bad)
        with self.assertRaises(ValueError):
            noise.LayerNoise.parse("additive:1", "0")
        with self.assertRaises(ValueError):
            noise.LayerNoise.parse("additive:1", "a")
        with self.assertRaises(ValueError):
            noise.LayerNoise.parse("additive:1", (4,)).check(3)


if __name__ == "__main__":
    absltest.main()
