"""Many seeds as one program, against sequential single-seed runs and a PyTorch eager loop.

Run by hand: `python -m benchmarks.seeds_bench` (about 10 minutes on a 2-core CPU;
`--quick` for a short smoke run). Prints a table of wall times for the 12-bit task with the
reimplemented project's defaults (SGD 0.01, momentum 0.9, full batch, 10,000 epochs,
information every 100 epochs on both splits, bin 0.07) for S = 1, 8, 50 seeds, and for a small
MNIST configuration with S = 8:

* ib_jax, S seeds: one `experiments` run of S seeds (compilation included);
* S x single: S sequential single-seed ib_jax runs; at most `--max_sequential` are run and
  timed, the rest extrapolated linearly (marked *);
* PyTorch: the reimplemented project's way (an eager full-batch loop, a test forward pass
  every epoch, and numpy `np.unique` information of every layer every 100 epochs), timed on
  `--torch_seeds` seeds and scaled to S (marked *).
"""

import argparse
import platform
import tempfile
import time

import jax
import numpy as np

from benchmarks.information_bench import numpy_baseline
from ib_jax import estimators, experiment, train


def ib_jax_seconds(config: experiment.ExperimentConfig, dataset) -> float:
    out = experiment.prepare_output_dir(tempfile.mkdtemp(), False)
    start = time.perf_counter()
    experiment.run(config, dataset, out, progress_every_s=1e9, checkpoint_every_s=1e9)
    return time.perf_counter() - start


def torch_seconds(config: experiment.ExperimentConfig, dataset, seed: int) -> float:
    """One seed the way the reimplemented project does it."""
    import torch  # pylint: disable=g-import-not-at-top

    torch.manual_seed(seed)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train).long()
    x_test, y_test = torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test).long()
    dims = (x.shape[1], *config.train.hidden, dataset.num_classes)
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(torch.nn.Tanh())
    net = torch.nn.Sequential(*layers)
    tc = config.train
    if tc.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=tc.learning_rate, momentum=tc.momentum)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=tc.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss(reduction=tc.loss_reduction)
    watched = [m for m in net if isinstance(m, torch.nn.Tanh)] + [net[-1]]

    def activations(inputs):
        acts = []
        hooks = [m.register_forward_hook(lambda _, __, o: acts.append(o.detach().numpy())) for m in watched]
        with torch.no_grad():
            net(inputs)
        for h in hooks:
            h.remove()
        return acts

    bin_size = config.binning.bin_size
    start = time.perf_counter()
    for epoch in range(config.epochs + 1):
        if epoch % config.mi_every == 0 or epoch == config.epochs:
            for inputs, labels in ((x, y), (x_test, y_test)):
                for acts in activations(inputs):
                    numpy_baseline(acts[None], labels.numpy(), bin_size)
        if epoch == config.epochs:
            break
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss_fn(net(x_test), y_test)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 epochs, S = 1, 4")
    parser.add_argument("--max_sequential", type=int, default=3)
    parser.add_argument("--torch_seeds", type=int, default=2)
    parser.add_argument("--data_dir", default="../shared/data")
    args = parser.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()} "
        f"({platform.machine()}); * = extrapolated from the seeds actually run"
    )
    print("| task | S | ib_jax, S seeds (s) | S x single (s) | PyTorch (s) | vs S x single | vs PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    tishby = experiment.ExperimentConfig(
        dataset="tishby",
        train=train.TrainConfig(
            hidden=(10, 7, 5, 4, 3), optimizer="sgd", learning_rate=0.01, momentum=0.9, loss_reduction="mean"
        ),
        epochs=200 if args.quick else 10000,
        mi_every=100,
        binning=estimators.Binning(bin_size=0.07),
    )
    mnist = experiment.ExperimentConfig(
        dataset="mnist", train_size=1000, test_size=1000, epochs=20 if args.quick else 100, mi_every=20
    )
    cases = [(tishby, s) for s in ((1, 4) if args.quick else (1, 8, 50))] + [(mnist, 2 if args.quick else 8)]
    cache = {}
    for base, s in cases:
        config = experiment.ExperimentConfig(**{**base.__dict__, "num_seeds": s})
        dataset = experiment.load_dataset(config, args.data_dir)
        name = f"{'12-bit' if base.dataset == 'tishby' else 'MNIST 1k/1k'}, {base.epochs} epochs"
        t_all = ib_jax_seconds(config, dataset)
        if (base.dataset, "single") not in cache:
            runs = [
                ib_jax_seconds(experiment.ExperimentConfig(**{**base.__dict__, "seed": k}), dataset)
                for k in range(min(args.max_sequential, max(s for b, s in cases if b is base)))
            ]
            cache[(base.dataset, "single")] = runs
            cache[(base.dataset, "torch")] = [torch_seconds(base, dataset, k) for k in range(args.torch_seeds)]
        singles, torches = cache[(base.dataset, "single")], cache[(base.dataset, "torch")]
        t_seq = sum(singles[:s]) + (s - min(s, len(singles))) * np.mean(singles)
        t_torch = s * np.mean(torches)
        star_seq = "*" if s > len(singles) else ""
        star_torch = "*" if s > len(torches) else ""
        print(
            f"| {name} | {s} | {t_all:.1f} | {t_seq:.1f}{star_seq} | {t_torch:.1f}{star_torch} | "
            f"{t_seq / t_all:.1f}x | {t_torch / t_all:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
