"""Every estimator against known information: the ground-truth benchmark (`docs/accuracy.md`).

Run by hand: `python -m benchmarks.accuracy` (about 10 minutes on a 2-core CPU; `--quick` runs
the smallest case of each part, as the tests do). It prints one table per quantity and writes
`accuracy.json` (every number) and `accuracy.png` (the figure) to --output_dir:

  1. I(T;Y) on `validation.class_clusters` (spread 1): K in {2, 10} classes, dim in {1, 10, 100}
     (and --wide_dims, 1,000, for the estimators that stay meaningful in wide layers: `probe`
     and `knn`), N in {1,000, 4,000, 10,000}, separations whose truth is 0 and 10%, 50%, 90% of
     log2 K; each estimator's mean +- std over --draws draws of the data and its bias (mean - truth).
     binned at three bin sizes, adaptive entropy and range (30 bins) are scored against I(T;Y);
     the KDE family (noise variance --noise_variance) against I(T+Z;Y) at that variance; `exact`
     against I(Q(T);Y) of the same draws quantized on cells of --code_width; `edge`, `probe`
     (the held-out lower bound) and `knn` (Ross's estimator) against I(T;Y); `renyi` is printed
     beside the truth, not scored (Renyi's alpha-information is a different functional).
     Estimators that need the inputs X are given X = T (`knn`: X = T's first coordinate, since
     only its I(T;Y) is scored here). The probe's bias is also tabulated against D/N.
  2. I(X;T+Z) of noisy layers, N = 4,096 (X uniform over the rows): the tanh layers of a
     12-10-7-5-4-3-2 network trained on the 12-bit task (SGD 0.01, momentum 0.9, full batch) at
     epoch 0, at the epoch of the width-3 layer's largest kde_upper I(X;T) and at the last
     epoch, plus random class clusters; kde_upper, kde_lower and kde_mc (mean +- std over
     --draws seeds) against `validation.noisy_layer_information` with --truth_draws draws.
  3. Plug-in bias: `exact` on quantized clusters (K = 2, dim = 2, cells of 0.25) against N,
     by the plug-in and every bias correction (`estimators.corrections`: Miller-Madow,
     Chao-Shen, Grassberger, NSB), for H(T) (= I(X;T)) and I(T;Y); a wider comparison with
     bootstrap coverage is `benchmarks.accuracy_confidence`.

Parts 4-6, the estimators of finite I(X;T) (`noise_mc` against an independent Monte
Carlo of noisy layers, `sliced` and `knn`'s KSG against jointly Gaussian variables and class
clusters), are `benchmarks.accuracy_finite`, a command of their own (docs/accuracy.md).
"""

import argparse
import json
import math
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import estimators, results, tishby, train, validation
from ib_jax.estimators import common

SPREAD = 1.0
FRACTIONS = (0.0, 0.1, 0.5, 0.9)  # of log2 K: the separations' truths
BIN_SIZES = (0.1, 0.5, 2.0)
SCORED_NOT = ("renyi",)  # a different functional: printed, not scored
WIDE = ("probe", "knn")  # the estimators also run at --wide_dims (the others read H(Y) from dim 100 on)


def separation_for(num_classes: int, fraction: float) -> float:
    """The separation whose I(T;Y) is `fraction` of log2 K (bisection on the quadrature)."""
    if fraction == 0.0:
        return 0.0
    target, lo, hi = fraction * math.log2(num_classes), 0.0, 20.0 * SPREAD
    for _ in range(40):
        mid = (lo + hi) / 2
        if validation.class_clusters_information(num_classes=num_classes, separation=mid, spread=SPREAD) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def label_estimators(noise_variance: float) -> dict[str, tuple[common.Estimator, str]]:
    """name -> (estimator, what it is scored against: "t", "t+z", "codes" or "none")."""
    named = {f"binned_{b:g}": (estimators.Binning(bin_size=b), "t") for b in BIN_SIZES}
    named["adaptive_entropy"] = (estimators.AdaptiveBinning(30, "entropy"), "t")
    named["adaptive_range"] = (estimators.AdaptiveBinning(30, "range"), "t")
    for bound in ("upper", "mc", "lower"):
        named[f"kde_{bound}"] = (estimators.KDE(noise_variance, bound), "t+z")
    named["exact"] = (estimators.Exact(), "codes")
    named["edge"] = (estimators.EDGE(), "t")
    named["renyi"] = (estimators.Renyi(), "none")
    named["probe"] = (estimators.Probe(), "t")
    named["knn"] = (estimators.KNN(), "t")
    return named


def _measure(estimator, acts, labels, num_classes):
    inputs = acts if estimator.needs_inputs else None
    if isinstance(estimator, estimators.KNN):  # only its I(T;Y) is scored: a cheap X for its I(X;T)
        inputs = acts[..., :1]
    return common.one_layer(jnp.asarray(acts), jnp.asarray(labels), estimator, num_classes=num_classes, inputs=inputs)


def label_part(args, noise_variance: float) -> list[dict]:
    """Part 1: I(T;Y) on class clusters; one row per (K, dim, N, fraction). The draws of every
    separation of one shape are the items of one call per estimator (one compilation each)."""
    rows = []
    named = label_estimators(noise_variance)
    dims = (1, 10, 100, *args.wide_dims)
    grid = [(2, 1, 1000)] if args.quick else [(k, d, n) for k in (2, 10) for d in dims for n in args.sizes]
    fractions = (0.0, 0.5) if args.quick else FRACTIONS
    for k in sorted({g[0] for g in grid}):
        separations = [separation_for(k, f) for f in fractions]
        truths = [
            {
                "t": validation.class_clusters_information(num_classes=k, separation=sep, spread=SPREAD),
                "t+z": validation.class_clusters_information(
                    num_classes=k, separation=sep, spread=SPREAD, noise_variance=noise_variance
                ),
                "codes": validation.quantized_clusters_information(
                    num_classes=k, separation=sep, spread=SPREAD, width=args.code_width
                ),
            }
            for sep in separations
        ]
        for _, dim, n in [g for g in grid if g[0] == k]:
            start = time.perf_counter()
            draws = [
                validation.class_clusters(1000 * s + 7, n=n, dim=dim, num_classes=k, separation=sep, spread=SPREAD)
                for sep in separations
                for s in range(args.draws)
            ]
            t = np.stack([d[0] for d in draws])  # [F * draws, n, dim]
            y = np.stack([d[1] for d in draws])
            codes = validation.cell_codes(t, args.code_width).astype(np.float32)  # quantized_clusters' rule
            values, seconds = {}, {}
            for name, (estimator, against) in named.items():
                if dim > 100 and name not in WIDE:
                    continue
                began = time.perf_counter()
                _, i_ty = _measure(estimator, codes if against == "codes" else t, y, k)
                values[name] = np.asarray(i_ty, np.float64).reshape(len(fractions), args.draws)
                seconds[name] = time.perf_counter() - began
            for j, (f, sep) in enumerate(zip(fractions, separations)):
                estimates = {
                    name: dict(values=values[name][j].tolist(), against=against, seconds=seconds[name])
                    for name, (_, against) in named.items()
                    if name in values
                }
                rows.append(dict(K=k, dim=dim, N=n, fraction=f, separation=sep, truth=truths[j], estimates=estimates))
            took = time.perf_counter() - start
            print(
                f"  I(T;Y): K={k} dim={dim} N={n}: {len(fractions)} separations x {args.draws} draws, {took:.0f} s",
                flush=True,
            )
    return rows


def trained_layers(args) -> dict[int, tuple[np.ndarray, ...]]:
    """{epoch: the five tanh layers [4096, w]} of the 12-bit network at the epochs measured."""
    x, y = tishby.patterns_and_labels()
    order = np.random.default_rng(0).permutation(len(x))
    train_idx = order[: int(round(0.8 * len(x)))]
    config = train.TrainConfig(
        hidden=(10, 7, 5, 4, 3), optimizer="sgd", learning_rate=0.01, momentum=0.9, loss_reduction="mean"
    )
    state = train.create_state(jax.random.key(0), config, x.shape[1], 2)
    xs, ys, x_all, y_all = (jnp.asarray(v) for v in (x[train_idx], y[train_idx], x, y))

    @jax.jit
    def advance(state, epochs, xs, ys):  # the data as arguments: no constants to fold; full batch: no key
        return jax.lax.fori_loop(
            0, epochs, lambda _, s: train.train_epoch(s, jax.random.key(0), xs, ys, config)[0], state
        )

    @jax.jit
    def layers(state, x_all, y_all):
        logits, acts = state.apply_fn(train.variables(state), x_all)
        return acts[:-1], jnp.mean(jnp.argmax(logits, -1) == y_all)

    checkpoints = sorted({0, *np.unique(np.geomspace(10, args.epochs, 12).astype(int)).tolist(), args.epochs})
    snapshots, done = {}, 0
    for target in checkpoints:
        state, done = advance(state, target - done, xs, ys), target
        acts, accuracy = layers(state, x_all, y_all)
        snapshots[target] = tuple(np.asarray(a, np.float64) for a in acts)
    print(f"  12-bit network: accuracy on all 4,096 patterns {float(accuracy):.3f} after {args.epochs} epochs")
    return snapshots


def _kde_values(layers, variance: float, draws: int) -> dict[str, np.ndarray]:
    """kde_upper and kde_lower [E] of the same-shaped layers [E, N, D], and kde_mc [E, draws]:
    the layers repeated as items, each item its own noise draws (one compilation per shape)."""
    acts = np.stack(layers).astype(np.float32)
    labels = np.zeros(acts.shape[:2], np.int32)
    out = {}
    for bound in ("upper", "lower"):
        out[f"kde_{bound}"] = np.asarray(_measure(estimators.KDE(variance, bound), acts, labels, 2)[0])
    repeated = np.repeat(acts, draws, axis=0)
    mc = _measure(estimators.KDE(variance, "mc"), repeated, np.zeros(repeated.shape[:2], np.int32), 2)[0]
    out["kde_mc"] = np.asarray(mc).reshape(len(acts), draws)
    return out


def noisy_part(args) -> list[dict]:
    """Part 2: I(X;T+Z) of noisy layers against the Monte Carlo truth."""
    snapshots = trained_layers(args)
    variance = args.layer_noise_variance
    narrowest = np.stack([s[4] for s in snapshots.values()]).astype(np.float32)  # the width-3 layer
    upper = estimators.KDE(variance, "upper")
    width3 = np.asarray(_measure(upper, narrowest, np.zeros(narrowest.shape[:2], np.int32), 2)[0])
    epochs = list(snapshots)
    peak = max((e for e in epochs if e > 0), key=lambda e: width3[epochs.index(e)])
    chosen = {"before fitting": 0, "peak": peak, "late": args.epochs}
    cases = []  # (title, layer [N, D], noise variance, estimates)
    for i in range(4 if args.quick else 0, 5):
        layers = [snapshots[e][i] for e in chosen.values()]
        values = _kde_values(layers, variance, args.draws)
        for j, (when, e) in enumerate(chosen.items()):
            title = f"12-bit tanh layer {i + 1} (width {layers[j].shape[1]}), epoch {e} ({when})"
            cases.append((title, layers[j], variance, {k: np.atleast_1d(v[j]).tolist() for k, v in values.items()}))
    for dim in (2,) if args.quick else (2, 5):
        t, _ = validation.class_clusters(3, n=4096, dim=dim, num_classes=4, separation=0.5, spread=0.1)
        values = _kde_values([t], 1e-2, args.draws)
        title = f"class clusters, dim {dim}, K=4, separation 0.5, spread 0.1"
        cases.append((title, t.astype(np.float64), 1e-2, {k: np.atleast_1d(v[0]).tolist() for k, v in values.items()}))
    rows = []
    for title, layer, variance, estimates in cases:
        start = time.perf_counter()
        truth, error = validation.noisy_layer_information(layer, variance, draws=args.truth_draws, seed=1)
        rows.append(
            dict(
                case=title,
                noise_variance=variance,
                truth=truth,
                truth_error=error,
                truth_seconds=time.perf_counter() - start,
                estimates=estimates,
            )
        )
        print(f"  I(X;T+Z): {title}: truth {truth:.3f} +- {error:.3f}", flush=True)
    return rows


def bias_part(args) -> list[dict]:
    """Part 3: the plug-in estimate of discrete codes against N, by the plug-in and every bias
    correction (`estimators.corrections`)."""
    k, dim, sep, width = 2, 2, 2.0, 0.25
    truth_h = validation.quantized_clusters_entropy(dim=dim, num_classes=k, separation=sep, spread=SPREAD, width=width)
    truth_i = validation.quantized_clusters_information(num_classes=k, separation=sep, spread=SPREAD, width=width)
    rows = []
    sizes = (1000,) if args.quick else (100, 316, 1000, 3162, 10_000, 31_622, 100_000)
    for n in sizes:
        n -= n % k
        draws = [
            validation.quantized_clusters(
                50 + s, n=n, dim=dim, num_classes=k, separation=sep, spread=SPREAD, width=width
            )
            for s in range(args.draws)
        ]
        codes = np.stack([d[0] for d in draws]).astype(np.float32)
        y = np.stack([d[1] for d in draws])
        out = dict(N=n, truth_h=truth_h, truth_i=truth_i)
        for correction in estimators.corrections.CORRECTIONS:
            h, i = _measure(estimators.Exact(correction), codes, y, k)
            out[correction] = dict(h=np.asarray(h, np.float64).tolist(), i=np.asarray(i, np.float64).tolist())
        rows.append(out)
    return rows


def _cell(values, truth=None) -> str:
    values = np.asarray(values, np.float64)
    text = f"{values.mean():.3f} ± {values.std():.3f}"
    return text if truth is None else f"{text} ({values.mean() - truth:+.3f})"


def print_tables(result: dict) -> None:
    label_rows = result["label"]
    groups = {
        "binned and adaptive (truth I(T;Y))": [f"binned_{b:g}" for b in BIN_SIZES]
        + ["adaptive_entropy", "adaptive_range"],
        "KDE family (truth I(T+Z;Y), Z ~ N(0, s2 I))": ["kde_upper", "kde_mc", "kde_lower"],
        "exact on codes, edge (scored); renyi (not Shannon's: not scored)": ["exact", "edge", "renyi"],
        "held-out probe (a lower bound) and k-NN (Ross), also at the wide dims (truth I(T;Y))": list(WIDE),
    }
    truth_key = {"t": "I(T;Y)", "t+z": "I(T+Z;Y)", "codes": "I(Q(T);Y)"}
    for group, names in groups.items():
        print(f"\n### I(T;Y) on class clusters: {group}; mean ± std over {result['draws']} draws (bias)\n")
        againsts = sorted({label_rows[0]["estimates"][n]["against"] for n in names} - {"none"})
        header = ["K", "dim", "N", "% log2 K", *[truth_key[a] for a in againsts], *names]
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for row in label_rows:
            if not any(n in row["estimates"] for n in names):
                continue
            cells = [str(row["K"]), str(row["dim"]), f"{row['N']:,}", f"{row['fraction']:.0%}"]
            cells += [f"{row['truth'][a]:.3f}" for a in againsts]
            for n in names:
                e = row["estimates"].get(n)
                if e is None:
                    cells.append("—")
                    continue
                cells.append(_cell(e["values"], None if e["against"] == "none" else row["truth"][e["against"]]))
            print("| " + " | ".join(cells) + " |")
    print(f"\n### I(X;T+Z) of noisy layers, N = 4,096; kde_mc mean ± std over {result['draws']} seeds (bias)\n")
    print("| layer | s2 | truth (± s.e.) | kde_upper | kde_mc | kde_lower | bracketed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in result["noisy"]:
        e, truth = row["estimates"], row["truth"]
        inside = (
            e["kde_lower"][0] <= truth + 3 * row["truth_error"] and truth - 3 * row["truth_error"] <= e["kde_upper"][0]
        )
        print(
            f"| {row['case']} | {row['noise_variance']:g} | {truth:.3f} ± {row['truth_error']:.3f} | "
            f"{_cell(e['kde_upper'], truth)} | {_cell(e['kde_mc'], truth)} | {_cell(e['kde_lower'], truth)} | "
            f"{'yes' if inside else 'no'} |"
        )
    print(
        f"\n### Plug-in bias of `exact` on discrete codes (K=2, dim=2, cells of 0.25) against N;"
        f" mean ± std over {result['draws']} draws (bias)\n"
    )
    first = result["bias"][0]
    print(f"truth: H(T) = {first['truth_h']:.3f} bits, I(T;Y) = {first['truth_i']:.3f} bits\n")
    corrections = [c for c in estimators.corrections.CORRECTIONS if c in result["bias"][0]]  # older JSON: two
    for quantity, key, truth in (("H", "h", "truth_h"), ("I(T;Y)", "i", "truth_i")):
        print(f"| N | {' | '.join(f'{quantity} {c}' for c in corrections)} |")
        print("| --- |" + " --- |" * len(corrections))
        for row in result["bias"]:
            print(f"| {row['N']:,} | " + " | ".join(_cell(row[c][key], row[truth]) for c in corrections) + " |")
        print()


def _scored(label_rows) -> list[str]:
    first = label_rows[0]["estimates"]
    return [n for n in first if first[n]["against"] != "none"]


def _has(rows, name) -> list[dict]:
    return [r for r in rows if name in r["estimates"]]


def _relative_error(row, name) -> float:
    e = row["estimates"][name]
    return abs(np.mean(e["values"]) - row["truth"][e["against"]]) / math.log2(row["K"])


def _sensitivity(rows, name, dim) -> float:
    """How far the estimate moves from the lowest to the highest separation, per bit the truth
    moves (1: it follows the truth; 0: it cannot see it), the mean over K and N in `dim`."""
    ratios = []
    rows = _has(rows, name)
    for k, n in {(r["K"], r["N"]) for r in rows if r["dim"] == dim}:
        case = sorted((r for r in rows if (r["K"], r["N"], r["dim"]) == (k, n, dim)), key=lambda r: r["fraction"])
        lo, hi = case[0], case[-1]
        against = lo["estimates"][name]["against"]
        moved = np.mean(hi["estimates"][name]["values"]) - np.mean(lo["estimates"][name]["values"])
        ratios.append(moved / (hi["truth"][against] - lo["truth"][against]))
    return float(np.mean(ratios))


def print_summary(result: dict) -> None:
    """Each scored estimator's mean |bias| / log2 K over K and the separations, per dim and N;
    its estimate in bits where T and Y are independent (separation 0), for the largest K and
    the smallest N, per dim; and its sensitivity per dim (`_sensitivity`)."""
    rows = result["label"]
    dims, sizes = sorted({r["dim"] for r in rows}), sorted({r["N"] for r in rows})
    columns = [(d, n) for d in dims for n in sizes]
    print(
        "\n### Summary: mean |bias| / log2 K over K and the separations (0 is the truth); the estimate "
        f"where T and Y are independent; sensitivity (1: follows the truth); per dim {dims}\n"
    )
    k_max = max(r["K"] for r in rows)
    header = [f"dim {d}, N={n:,}" for d, n in columns]
    header += [f"independent, K={k_max}, N={sizes[0]:,}: bits", "sensitivity"]
    print("| estimator | " + " | ".join(header) + " |")
    print("|" + " --- |" * (len(header) + 1))
    for name in _scored(rows):
        have = _has(rows, name)
        cells = [
            f"{np.mean(errors):.3f}"
            if (errors := [_relative_error(r, name) for r in have if (r["dim"], r["N"]) == c])
            else "—"
            for c in columns
        ]
        run_dims = [d for d in dims if any(r["dim"] == d for r in have)]
        independent = [
            np.mean(r["estimates"][name]["values"])
            for d in run_dims
            for r in have
            if r["dim"] == d and r["N"] == sizes[0] and r["K"] == k_max and r["fraction"] == 0.0
        ]
        cells.append(" / ".join(f"{v:.2f}" for v in independent))
        cells.append(" / ".join(f"{_sensitivity(rows, name, d):.2f}" for d in run_dims))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print_probe_bias(rows)


def print_probe_bias(rows: list[dict]) -> None:
    """The probe's bias (estimate - truth, bits) against D/N: independent labels, and the mean
    over the other separations, per K (the parameters a held-out softmax probe must learn grow
    as D (K - 1))."""
    have = _has(rows, "probe")
    if not have:
        return
    print("\n### The probe's bias (bits) against D/N; D (K - 1) / (2 N ln 2): the unregularized overfit's cost\n")
    fractions = sorted({r["fraction"] for r in have})
    header = ["K", "dim", "N", "D/N", "D(K-1)/(2N ln 2)"] + [f"{f:.0%}" if f else "independent" for f in fractions]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for k, dim, n in sorted({(r["K"], r["dim"], r["N"]) for r in have}, key=lambda c: (c[0], c[1] / c[2])):
        case = sorted((r for r in have if (r["K"], r["dim"], r["N"]) == (k, dim, n)), key=lambda r: r["fraction"])
        bias = [np.mean(r["estimates"]["probe"]["values"]) - r["truth"]["t"] for r in case]
        cost = dim * (k - 1) / (2 * n * math.log(2))
        print(f"| {k} | {dim} | {n:,} | {dim / n:g} | {cost:.3f} | " + " | ".join(f"{b:+.3f}" for b in bias) + " |")


def draw_figure(result: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(24, 10.5))
    label_rows = result["label"]
    names = _scored(label_rows)
    colours = {n: plt.cm.tab20(i % 20) for i, n in enumerate(names)}
    dims = sorted({r["dim"] for r in label_rows})
    for ax in axes[0, len(dims) :]:
        ax.set_visible(False)
    for ax, dim in zip(axes[0], dims):
        for n in names:
            rows = [r for r in _has(label_rows, n) if r["dim"] == dim]
            if not rows:
                continue
            truth = [r["truth"][r["estimates"][n]["against"]] / math.log2(r["K"]) for r in rows]
            est = [np.mean(r["estimates"][n]["values"]) / math.log2(r["K"]) for r in rows]
            ax.scatter(truth, est, s=16, alpha=0.7, color=colours[n], label=n)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(
            xlabel="truth / log2 K",
            ylabel="estimate / log2 K",
            title=f"I(T;Y), class clusters in {dim} dimension{'s' if dim > 1 else ''} (every K, N)",
            xlim=(-0.05, 1.05),
            ylim=(-0.1, 1.05),
        )
    axes[0, 0].legend(fontsize=7, ncol=2, loc="upper left")
    ax = axes[1, 0]
    sizes = sorted({r["N"] for r in label_rows})
    for n in names:
        errors = [
            np.mean([_relative_error(r, n) for r in label_rows if r["N"] == size and r["dim"] == dims[0]])
            for size in sizes
        ]
        ax.plot(sizes, errors, "o-", color=colours[n], label=n)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="N",
        ylabel="mean |bias| / log2 K",
        title=f"I(T;Y): error against N in {dims[0]} dimension (every K, separation)",
    )
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 1]
    marks = {"kde_upper": "^", "kde_mc": "o", "kde_lower": "v"}
    for bound, mark in marks.items():
        truth = [r["truth"] for r in result["noisy"]]
        est = [np.mean(r["estimates"][bound]) for r in result["noisy"]]
        ax.scatter(truth, est, marker=mark, label=bound, alpha=0.8)
    lims = [min(r["truth"] for r in result["noisy"]) - 0.3, max(r["truth"] for r in result["noisy"]) + 0.3]
    ax.plot(lims, lims, "k--", lw=1)
    n_noisy = {len(r["estimates"]["kde_mc"]) for r in result["noisy"]}
    ax.set(
        xlabel="truth (Monte Carlo, bits)",
        ylabel="estimate (bits)",
        title=f"I(X;T+Z) of noisy layers, N = 4,096 (kde_mc: mean of {max(n_noisy)})",
    )
    ax.legend(fontsize=8)
    ax = axes[1, 3]
    probe_rows = _has(label_rows, "probe")
    for k, marker in zip(sorted({r["K"] for r in probe_rows}), "os^"):
        for f, colour in zip(sorted({r["fraction"] for r in probe_rows}), plt.cm.viridis(np.linspace(0, 0.9, 4))):
            case = sorted(
                (r for r in probe_rows if r["K"] == k and r["fraction"] == f), key=lambda r: r["dim"] / r["N"]
            )
            ratio = [r["dim"] / r["N"] for r in case]
            bias = [np.mean(r["estimates"]["probe"]["values"]) - r["truth"]["t"] for r in case]
            ax.plot(ratio, bias, marker + "-", color=colour, ms=4, lw=0.8, label=f"K={k}, {f:.0%} of log2 K")
    ax.axhline(0.0, color="k", lw=1)
    ax.set(xscale="log", xlabel="D / N", ylabel="estimate - truth (bits)", title="probe: bias against D / N")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 2]
    ns = [r["N"] for r in result["bias"]]
    for key, truth_key, label in (("h", "truth_h", "H(T)"), ("i", "truth_i", "I(T;Y)")):
        for correction, style in (("none", "-"), ("miller_madow", "--")):
            bias = [np.mean(r[correction][key]) - r[truth_key] for r in result["bias"]]
            ax.plot(ns, bias, "o" + style, label=f"{label}, {'plug-in' if correction == 'none' else 'Miller-Madow'}")
    ax.axhline(0.0, color="k", lw=1)
    ax.set(xscale="log", xlabel="N", ylabel="estimate - truth (bits)", title="plug-in bias of discrete codes (exact)")
    ax.legend(fontsize=8)
    for ax, letter in zip([ax for ax in axes.flat if ax.get_visible()], "abcdefgh"):
        ax.set_title(f"({letter}) {ax.get_title()}", fontsize=10)
    fig.tight_layout()
    results.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest case of each part (smoke run)")
    parser.add_argument("--draws", type=int, default=5, help="draws of the data (and kde_mc seeds) per case")
    parser.add_argument("--sizes", default="1000,4000,10000", help="sample sizes N of part 1")
    parser.add_argument(
        "--wide_dims", default="1000", help="dims of part 1 beyond 1, 10, 100, for probe and knn only ('' for none)"
    )
    parser.add_argument("--noise_variance", type=float, default=0.1, help="the KDE family's noise variance, part 1")
    parser.add_argument("--layer_noise_variance", type=float, default=1e-3, help="noise variance of the 12-bit layers")
    parser.add_argument("--code_width", type=float, default=0.25, help="cell width of the discrete codes (exact)")
    parser.add_argument("--epochs", type=int, default=10_000, help="training epochs of the 12-bit network")
    parser.add_argument("--truth_draws", type=int, default=100_000, help="Monte Carlo draws of each I(X;T+Z) truth")
    parser.add_argument("--output_dir", default="runs/accuracy", help="where accuracy.json and accuracy.png go")
    parser.add_argument("--replot", default="", help="an accuracy.json: print its tables and draw its figure again")
    args = parser.parse_args(argv)
    if args.replot:
        try:
            result = json.loads(pathlib.Path(args.replot).read_text())
        except (OSError, ValueError) as e:
            parser.error(f"--replot: cannot read {args.replot}: {e}")
        print_tables(result)
        print_summary(result)
        out = pathlib.Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        draw_figure(result, out / "accuracy.png")
        print(f"\nwrote {out / 'accuracy.png'}")
        return result
    try:
        args.sizes = tuple(int(s) for s in args.sizes.split(","))
        args.wide_dims = tuple(int(s) for s in args.wide_dims.split(",") if s.strip())
    except ValueError:
        parser.error(
            f"--sizes and --wide_dims must be comma-separated integers, got {args.sizes!r}, {args.wide_dims!r}"
        )
    if any(d <= 100 for d in args.wide_dims):
        parser.error(f"--wide_dims must be above 100, got {args.wide_dims}")
    if args.quick:
        args.draws, args.epochs, args.truth_draws = 2, 10, 8192
    if args.draws < 1 or args.epochs < 10 or args.truth_draws < 1 or min(args.sizes) < 20:
        parser.error("--draws and --truth_draws must be >= 1, --epochs >= 10, every size >= 20")
    out = pathlib.Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {device.platform}: {device.device_kind} ({cpu})")
    start = time.perf_counter()
    result = dict(draws=args.draws, noise_variance=args.noise_variance, code_width=args.code_width, spread=SPREAD)
    result["label"] = label_part(args, args.noise_variance)
    result["noisy"] = noisy_part(args)
    result["bias"] = bias_part(args)
    result["seconds"] = time.perf_counter() - start
    print_tables(result)
    print_summary(result)
    results.atomic_write(out / "accuracy.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    draw_figure(result, out / "accuracy.png")
    print(f"\ntook {result['seconds']:.0f} s; wrote {out / 'accuracy.json'} and {out / 'accuracy.png'}")
    return result


if __name__ == "__main__":
    main()
