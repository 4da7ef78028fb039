"""The Monte Carlo error of `kde_mc` on a 12-bit-shaped layer, by an independent numpy estimate.

Run by hand: `python -m benchmarks.kde_mc_error` (about a minute). The layer: the width-3 tanh
layer of a random 12-10-7-5-4-3 network on all 4,096 patterns. For each noise variance and number
of draws M per sample it prints I(X;T+Z) in bits and its standard error over the draws (the
samples fixed): (sum_i Var_z(LSE_i) / M)^(1/2) / N.
"""

import math

import numpy as np


def main():
    rng = np.random.default_rng(0)
    h = ((np.arange(4096)[:, None] >> np.arange(11, -1, -1)) & 1).astype(np.float64)
    for width in (10, 7, 5, 4, 3):
        h = np.tanh(h @ rng.normal(size=(h.shape[1], width)) * 2.0 / math.sqrt(h.shape[1]))
    n = len(h)
    for variance in (1e-3, 1e-2):
        for draws in (4, 16):
            z = rng.normal(scale=math.sqrt(variance), size=(n, draws, h.shape[1]))
            log_all = np.empty((n, draws))
            for start in range(0, n, 256):
                rows = slice(start, start + 256)
                queries = h[rows, None, :] + z[rows]
                d = ((queries[:, :, None, :] - h[None, None]) ** 2).sum(-1) - (z[rows] ** 2).sum(-1)[:, :, None]
                log_all[rows] = np.log(np.exp(-d / (2 * variance)).sum(-1))
            estimate = (math.log(n) - log_all.mean()) / math.log(2)
            error = math.sqrt(np.sum(log_all.var(axis=1) / draws)) / n / math.log(2)
            case = f"width-3 tanh layer, N={n}, s2={variance:g}, M={draws}"
            print(f"{case}: {estimate:.3f} bits, standard error {error:.4f}")


if __name__ == "__main__":
    main()
