"""The tables and figure of docs/results/decodable.md, from the run folders its commands write.

    python docs/results/decodable_report.py runs/probe_10k docs/decodable_10k.png
    python docs/results/decodable_report.py --sweep runs/probe_sweep

The first form reads a true-vs-permuted run (`experiments.memorization` with both conditions,
`--estimators binned,probe`) and prints, per layer: the first measured epoch at which the
probe decodes half and nine tenths of H(Y) of the permuted training labels, the training
accuracy of the network then, and the values at the end; the true digit information (the probe
on the test split) of both networks at the first and last measured epoch; and `binned`'s I(T;Y)
of the same layers. It draws the figure: the probe's I(T;Y) per layer against epoch, training
split (each network's own labels) and test split (true labels), true vs permuted, with binned's
training-split I(T;Y) beside. The second form prints the sweep's table: the probe's I(T;Y) of
every layer at the last measured epoch per condition, on both splits.
"""

import pathlib
import sys

import numpy as np
from matplotlib.figure import Figure

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository, for ib_jax
from ib_jax import outcome, plotting, results  # noqa: E402


def _condition(res, name: str) -> dict:
    return outcome.select_condition(res, name)


def first_epoch(epochs, values, threshold) -> str:
    hit = np.flatnonzero(values >= threshold)
    return str(int(epochs[hit[0]])) if hit.size else "never"


def pair_report(run: str, figure: str) -> None:
    res = results.load_results(run)
    true, permuted = _condition(res, "true"), _condition(res, "permuted")
    epochs = res["mi_epochs"]
    widths = res["layer_widths"]
    h_y = float(res["h_y_train"])
    probe_p = results.estimator_view(permuted, "probe")
    probe_t = results.estimator_view(true, "probe")
    binned_p = results.estimator_view(permuted, "binned")
    binned_t = results.estimator_view(true, "binned")
    accuracy = permuted["train_accuracy"].mean(axis=0)

    def at(epoch: str) -> str:
        return "—" if epoch == "never" else f"{accuracy[min(int(epoch), len(accuracy) - 1)]:.3f}"

    print(f"H(Y) of the training labels: {h_y:.3f} bits; N = {int(res['n_train'])} / {int(res['n_test'])}")
    print(f"measured epochs: {', '.join(str(int(e)) for e in epochs)}\n")
    print("### Random (permuted) labels decoded from the training split, per layer (probe, held out)\n")
    print(
        "| layer | first epoch >= H(Y)/2 | train acc then | first epoch >= 0.9 H(Y) | train acc then | "
        f"end (epoch {int(epochs[-1])}) | true-label network, end |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for layer, width in enumerate(widths):
        values = probe_p["i_ty_train"][:, :, layer].mean(axis=0)
        half, most = first_epoch(epochs, values, h_y / 2), first_epoch(epochs, values, 0.9 * h_y)
        end_true = probe_t["i_ty_train"][:, -1, layer].mean()
        print(
            f"| {layer + 1} ({width}) | {half} | {at(half)} | {most} | {at(most)} | {values[-1]:.3f} | {end_true:.3f} |"
        )
    print("\n### True digit information (probe on the test split's true labels), per layer\n")
    print(f"| layer | permuted, epoch {int(epochs[0])} | permuted, end | true, epoch {int(epochs[0])} | true, end |")
    print("| --- | --- | --- | --- | --- |")
    for layer, width in enumerate(widths):
        p, t = probe_p["i_ty_test"][:, :, layer].mean(0), probe_t["i_ty_test"][:, :, layer].mean(0)
        print(f"| {layer + 1} ({width}) | {p[0]:.3f} | {p[-1]:.3f} | {t[0]:.3f} | {t[-1]:.3f} |")
    print("\n### binned (bin 0.5) I(T;Y) of the same layers at the end, and the held-out probe's accuracy\n")
    print(
        "| layer | binned permuted train | binned permuted test | binned true train | binned true test | "
        "probe acc permuted train | probe acc permuted test |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for layer, width in enumerate(widths):
        cells = [binned_p["i_ty_train"], binned_p["i_ty_test"], binned_t["i_ty_train"], binned_t["i_ty_test"]]
        cells = [f"{c[:, -1, layer].mean():.3f}" for c in cells]
        cells += [f"{permuted[f'probe.accuracy_{s}'][:, -1, layer].mean():.3f}" for s in ("train", "test")]
        print(f"| {layer + 1} ({width}) | " + " | ".join(cells) + " |")
    change = max(float(np.nanmax(np.abs(res[f"probe.change_{s}"]))) for s in ("train", "test"))
    print(f"\nlargest |probe.change| (the convergence check) over every point: {change:.4f} bits")
    draw(true, permuted, figure)


def draw(true, permuted, figure: str) -> None:
    fig = Figure(figsize=(16, 8.4), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True)
    for row, (label, view) in enumerate((("true labels", true), ("permuted labels", permuted))):
        probe, binned = results.estimator_view(view, "probe"), results.estimator_view(view, "binned")
        panels = (
            (probe, "i_ty_train", "probe, training split (its own labels)", "train"),
            (probe, "i_ty_test", "probe, test split (true labels)", "test"),
            (binned, "i_ty_train", "binned 0.5, training split", "train"),
        )
        for ax, (source, key, what, split) in zip(axes[row], panels):
            plotting.plane.layer_curves(ax, source, key)
            ax.axhline(float(view[f"h_y_{split}"]), color="0.3", ls=":", lw=0.8)
            ax.axhline(0.0, color="0.6", lw=0.6)
            ax.set_title(f"{label}: {what}", fontsize=9)
            ax.set_ylabel("I(T;Y) [bits]")
            ax.set_ylim(-0.15, 3.5)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.savefig(figure, dpi=100)
    print(f"figure: {figure}")


def sweep_report(run: str) -> None:
    res = results.load_results(run)
    widths = res["layer_widths"]
    epoch = int(res["mi_epochs"][-1])
    for split, what in (("train", "each row's own training labels"), ("test", "the true test labels")):
        print(f"\n### probe I(T;Y) (bits) at epoch {epoch}, {split} split ({what})\n")
        print("| condition | " + " | ".join(plotting.layer_label(res, i) for i in range(len(widths))) + " |")
        print("|" + " --- |" * (len(widths) + 1))
        for c, p in results.conditions(res):
            view = results.estimator_view(outcome.select_condition(res, outcome.condition_name(c, p)), "probe")
            values = view[f"i_ty_{split}"][:, -1].mean(axis=0)
            print(f"| {outcome.condition_name(c, p)} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    if sys.argv[1] == "--sweep":
        sweep_report(sys.argv[2])
    else:
        pair_report(sys.argv[1], sys.argv[2])
