"""The figure and tables of docs/results/exact.md, from the run folders its commands write.

    python docs/results/exact_report.py runs docs/exact_12bit.png
    python docs/results/exact_report.py --mnist runs

Reads runs/exact_q{8,4}_{tanh,relu} (quantized, `exact`) and runs/exact_float_{tanh,relu} (float,
`binned`, `kde_upper`, `kde_lower`); draws the information plane of all 4,096 patterns (seed means,
bars one standard deviation) as a grid: a row per activation, a column per measurement; prints a
markdown table of each layer's I(X;T) at its peak and at the end, with the epoch of the peak and
the final accuracy.
"""

import pathlib
import sys

from matplotlib import colors
from matplotlib.figure import Figure

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository, for ib_jax
from ib_jax import outcome, plotting, results  # noqa: E402

COLUMNS = (
    ("q8", "exact", "8 bits, exact"),
    ("q4", "exact", "4 bits, exact"),
    ("float", "binned", "float, binned 0.07"),
    ("float", "kde_upper", "float, KDE upper"),
    ("float", "kde_lower", "float, KDE lower"),
)
ACTIVATIONS = ("tanh", "relu")
SPLIT = "test"  # the second split of --preset idnns: all 4,096 patterns ("all")


def main(runs_dir: str, figure: str) -> None:
    runs = pathlib.Path(runs_dir)
    loaded = {
        (kind, act): results.load_results(runs / f"exact_{kind}_{act}")
        for kind in ("q8", "q4", "float")
        for act in ACTIVATIONS
    }
    fig = Figure(figsize=(4.0 * len(COLUMNS) + 1, 3.6 * len(ACTIVATIONS)), layout="constrained")
    axes = fig.subplots(len(ACTIVATIONS), len(COLUMNS), squeeze=False)
    norm = colors.SymLogNorm(1, vmin=0, vmax=max(int(r["mi_epochs"].max()) for r in loaded.values()))
    for row, act in enumerate(ACTIVATIONS):
        for col, (kind, estimator, title) in enumerate(COLUMNS):
            view = results.estimator_view(loaded[kind, act], estimator)
            points = plotting.draw_plane(axes[row, col], view, SPLIT, norm)
            axes[row, col].set_title(f"{act}: {title}", fontsize=9)
    fig.colorbar(points, ax=axes, label="Epochs (log)")
    fig.suptitle("12-bit task, 12-10-7-5-4-3-2, Adam 4e-4, batch 256, 10 seeds: I(X;T), I(T;Y) on all 4,096 patterns")
    fig.savefig(figure, dpi=80)
    print(f"figure: {figure}\n")
    print("| activation | measurement | layer | peak I(X;T) | end I(X;T) | peak epoch | final train / all accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for act in ACTIVATIONS:
        for kind, estimator, title in COLUMNS:
            res = loaded[kind, act]
            accuracy = f"{res['final_train_accuracy'].mean():.3f} / {res['final_test_accuracy'].mean():.3f}"
            for layer in range(len(res["layer_widths"])):
                r = outcome.peak_and_end(res, estimator, SPLIT, layer)
                print(
                    f"| {act} | {title} | {plotting.layer_label(res, layer)} | {r['peak_mean']:.2f} ± "
                    f"{r['peak_std']:.2f} | {r['end_mean']:.2f} ± {r['end_std']:.2f} | {r['peak_epoch']} | "
                    f"{accuracy} |"
                )


def memorization(runs_dir: str) -> None:
    """Per layer, exact and binned I(X;T) on the training split, peak and end, of the MNIST runs
    runs/mnist_q8_{true,random}; and the epoch each reached 99% training accuracy."""
    runs = pathlib.Path(runs_dir)
    print(
        "| labels | layer | exact peak I(X;T) | exact end | peak epoch | binned 0.5 peak | binned end | 99% train at |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for labels in ("true", "random"):
        res = results.load_results(runs / f"mnist_q8_{labels}")
        fit = int(results.epochs_to_fit(res["train_accuracy"], res["final_train_accuracy"], 0.99)[0])
        for layer in range(len(res["layer_widths"])):
            e = outcome.peak_and_end(res, "exact", "train", layer)
            b = outcome.peak_and_end(res, "binned", "train", layer)
            print(
                f"| {labels} | {plotting.layer_label(res, layer)} | {e['peak_mean']:.2f} | {e['end_mean']:.2f} | "
                f"{e['peak_epoch']} | {b['peak_mean']:.2f} | {b['end_mean']:.2f} | {fit} |"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--mnist":
        memorization(sys.argv[2])
    elif len(sys.argv) == 3:
        main(sys.argv[1], sys.argv[2])
    else:
        sys.exit("usage: python docs/results/exact_report.py RUNS_DIR FIGURE.png | --mnist RUNS_DIR")
