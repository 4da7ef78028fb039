"""The tables and figures of docs/results/finite.md, from the run folders its commands write.

    python docs/results/finite_report.py dropout runs/dropout runs/dropout_none docs/finite_dropout.png
    python docs/results/finite_report.py tishby runs/tishby_noisy runs/tishby_plain docs/finite_12bit.png
    python docs/results/finite_report.py memorization runs/dropout_memorization docs/finite_memorization.png

`dropout` and `tishby` read a network with noise of its own measured by `noise_mc` (and, for
MNIST, `sliced`) beside the same network without noise: per layer, I(X;T) at the first measured
epoch, its largest (and when) and the last, with the Monte Carlo standard error, whether it
compressed (the last value below the largest by more than 3 standard errors of both), and
`binned`'s I(X;T) of the network without noise at the same epochs; the figure draws each
layer's curves against epoch. `memorization` reads a true-vs-permuted run
(`experiments.memorization` with both conditions) and tabulates, per layer and condition,
noise_mc's I(X;T) and sliced's SI(X;T) on the training split and sliced's SI(T;Y) on the test
split (the true digits) at the first and last measured epochs, with each network's accuracies.
"""

import pathlib
import sys

import numpy as np
from matplotlib.figure import Figure

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository, for ib_jax
from ib_jax import outcome, results  # noqa: E402


def _mean(res, key):
    return np.asarray(res[key], np.float64).mean(axis=0)  # [E, L], over rows


def _curves(ax, epochs, values, widths, title, ylabel, log_x=False):
    for layer in range(values.shape[1]):
        if np.isfinite(values[:, layer]).any():
            ax.plot(
                epochs,
                values[:, layer],
                marker="o",
                ms=3,
                color=f"C{layer % 10}",
                label=f"layer {layer + 1} ({int(widths[layer])})",
            )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if log_x:
        ax.set_xscale("symlog", linthresh=10)
    ax.grid(alpha=0.3)


def compression_table(noisy, plain, name: str) -> None:
    epochs = noisy["mi_epochs"]
    widths = noisy["layer_widths"]
    xt, se = _mean(noisy, f"{name}.i_xt_train"), _mean(noisy, f"{name}.se_xt_train")
    ty = _mean(noisy, f"{name}.i_ty_train")
    binned = _mean(plain, "binned.i_xt_train") if "binned.i_xt_train" in plain else _mean(plain, "i_xt_train")
    n = int(noisy["n_train"])
    print(f"N = {n} (log2 N = {np.log2(n):.2f}); H(Y) = {float(noisy['h_y_train']):.3f}")
    print(
        f"final train / test accuracy, noisy network: {float(noisy['final_train_accuracy'][0]):.3f} / "
        f"{float(noisy['final_test_accuracy'][0]):.3f}; without noise: "
        f"{float(plain['final_train_accuracy'][0]):.3f} / {float(plain['final_test_accuracy'][0]):.3f}\n"
    )
    print(
        f"| layer | {name} I(X;T): epoch 0 | largest (epoch) | last (epoch {int(epochs[-1])}) | compressed | "
        f"{name} I(T;Y) last | binned I(X;T) without noise: epoch 0, largest, last |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for layer, width in enumerate(widths):
        if not np.isfinite(xt[:, layer]).any():
            continue
        top = int(np.nanargmax(xt[:, layer]))
        drop = xt[top, layer] - xt[-1, layer]
        compressed = "yes" if drop > 3 * np.hypot(se[top, layer], se[-1, layer]) + 1e-9 else "no"
        b = binned[:, layer]
        print(
            f"| {layer + 1} ({int(width)}) | {xt[0, layer]:.2f} ± {se[0, layer]:.2f} | {xt[top, layer]:.2f} "
            f"({int(epochs[top])}) | {xt[-1, layer]:.2f} ± {se[-1, layer]:.2f} | {compressed} ({drop:+.2f}) | "
            f"{ty[-1, layer]:.2f} | {b[0]:.2f}, {np.nanmax(b):.2f}, {b[-1]:.2f} |"
        )


def sliced_table(noisy, plain) -> None:
    print(
        "\n| layer | sliced SI(X;T) with noise: first, last | without noise: first, last | "
        "SI(T;Y) test, with noise: last | without: last |"
    )
    print("| --- | --- | --- | --- | --- |")
    a, b = _mean(noisy, "sliced.i_xt_train"), _mean(plain, "sliced.i_xt_train")
    c, d = _mean(noisy, "sliced.i_ty_test"), _mean(plain, "sliced.i_ty_test")
    for layer, width in enumerate(noisy["layer_widths"]):
        print(
            f"| {layer + 1} ({int(width)}) | {a[0, layer]:.3f}, {a[-1, layer]:.3f} | {b[0, layer]:.3f}, "
            f"{b[-1, layer]:.3f} | {c[-1, layer]:.3f} | {d[-1, layer]:.3f} |"
        )


def pair_report(kind: str, noisy_dir: str, plain_dir: str, figure: str) -> None:
    noisy, plain = results.load_results(noisy_dir), results.load_results(plain_dir)
    compression_table(noisy, plain, "noise_mc")
    if "sliced.i_xt_train" in noisy and "sliced.i_xt_train" in plain:
        sliced_table(noisy, plain)
    epochs, widths = noisy["mi_epochs"], noisy["layer_widths"]
    log_x = kind == "tishby"
    panels = [
        (noisy, "noise_mc.i_xt_train", "noise_mc I(X;T), with noise", "I(X;T) [bits]"),
        (noisy, "noise_mc.i_ty_train", "noise_mc I(T;Y), with noise", "I(T;Y) [bits]"),
        (
            plain,
            "binned.i_xt_train" if "binned.i_xt_train" in plain else "i_xt_train",
            "binned I(X;T), without noise",
            "I(X;T) [bits]",
        ),
    ]
    if "sliced.i_xt_train" in noisy:
        panels += [
            (noisy, "sliced.i_xt_train", "sliced SI(X;T), with noise", "SI(X;T) [bits]"),
            (plain, "sliced.i_xt_train", "sliced SI(X;T), without noise", "SI(X;T) [bits]"),
            (noisy, "sliced.i_ty_test", "sliced SI(T;Y), test split, with noise", "SI(T;Y) [bits]"),
        ]
    rows = -(-len(panels) // 3)
    fig = Figure(figsize=(15, 4.2 * rows), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False).ravel()
    for ax, (res, key, title, ylabel) in zip(axes, panels):
        _curves(ax, res["mi_epochs"], _mean(res, key), widths, title, ylabel, log_x)
    max(axes[: len(panels)], key=lambda a: len(a.lines)).legend(fontsize=7)
    noise = results.load_config(noisy_dir).get("config", {}).get("train", {}).get("layer_noise", "")
    fig.suptitle(f"{kind}: {noise or 'noisy'} network (training split unless named) and the same network without noise")
    fig.savefig(figure, dpi=100)
    print(f"\nwrote {figure}; {len(epochs)} measured epochs, {int(epochs[0])} to {int(epochs[-1])}")


def memorization_report(run: str, figure: str) -> None:
    res = results.load_results(run)
    conditions = {name: outcome.select_condition(res, name) for name in ("true", "permuted")}
    epochs, widths = res["mi_epochs"], res["layer_widths"]
    for name, r in conditions.items():
        print(
            f"{name}: final train / test accuracy {float(r['final_train_accuracy'].mean()):.3f} / "
            f"{float(r['final_test_accuracy'].mean()):.3f}"
        )
    print(
        "\n| layer | noise_mc I(X;T) train: true first→last | permuted first→last | sliced SI(X;T) train: "
        "true | permuted | sliced SI(T;Y) test (true digits): true | permuted |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    t, p = conditions["true"], conditions["permuted"]
    for layer, width in enumerate(widths):
        cells = []
        for key in ("noise_mc.i_xt_train", "sliced.i_xt_train", "sliced.i_ty_test"):
            for r in (t, p):
                v = _mean(r, key)[:, layer]
                cells.append("—" if not np.isfinite(v).any() else f"{v[0]:.3f} → {v[-1]:.3f}")
        print(f"| {layer + 1} ({int(width)}) | " + " | ".join(cells) + " |")
    accuracy = {n: r["test_accuracy"].mean(axis=0) for n, r in conditions.items()}
    si = {n: _mean(r, "sliced.i_ty_test") for n, r in conditions.items()}
    print("\nsliced SI(T;Y) on the test split (mean over layers) against test accuracy, per measured epoch:")
    for n in conditions:
        pairs = [
            f"{int(e)}: {np.nanmean(si[n][i]):.3f} @ {accuracy[n][min(int(e), len(accuracy[n]) - 1)]:.3f}"
            for i, e in enumerate(epochs)
        ]
        print(f"  {n}: " + "; ".join(pairs))
    fig = Figure(figsize=(15, 8.4), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (name, r) in enumerate(conditions.items()):
        for col, (key, title) in enumerate(
            (
                ("noise_mc.i_xt_train", "noise_mc I(X;T), training split"),
                ("sliced.i_xt_train", "sliced SI(X;T), training split"),
                ("sliced.i_ty_test", "sliced SI(T;Y), test split (true digits)"),
            )
        ):
            _curves(axes[row, col], epochs, _mean(r, key), widths, f"{name} labels: {title}", "bits")
    max(axes.ravel(), key=lambda a: len(a.lines)).legend(fontsize=7)
    fig.savefig(figure, dpi=100)
    print(f"\nwrote {figure}")


def main(argv) -> None:
    if len(argv) == 5 and argv[1] in ("dropout", "tishby"):
        pair_report(argv[1], argv[2], argv[3], argv[4])
    elif len(argv) == 4 and argv[1] == "memorization":
        memorization_report(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
