"""One training epoch of each model of the mains on MNIST, against the same network and optimiser
written in PyTorch, timed in the same run; and S seeds as one program against S single runs.

Run by hand: `python -m benchmarks.models_bench` (about 15 minutes on a 2-core CPU; `--quick`
for a short smoke run, `--models cnn` for one model). Needs torch (requirements-download.txt).

The epoch: `--train_size` MNIST images (10,000), minibatches of 100, SGD 0.01 with momentum 0.9
on the mean cross-entropy (the memorization main's optimiser), each model at the mains' default
widths (mlp: 784-1024-1024-20-20-20-10 tanh; cnn: conv 5x5 16 and 32 channels with 2x2 max
pooling, dense 128, relu; resnet: ResNet-8, channels 16, 32, 64, GroupNorm, relu). Times are
the median of `--repeats` epochs after a warm-up epoch (compilation excluded; it is printed
apart):

* ib_jax, 1 seed: `train.train_epoch` jitted, the epoch's batches under `lax.scan`;
* ib_jax, S seeds: the same epoch of S seeds in one program, as the mains run rows: vmapped, or,
  for the image models on a CPU, one after another (`models.rows_at_once`);
* S x ib_jax single: S times the single seed's epoch (sequential runs);
* PyTorch, 1 seed: the same network (the same layer shapes, initialisation aside) and optimiser
  in an eager loop over the same batches; S x PyTorch: S times it (one model at a time, as the
  reimplemented project runs its seeds).
"""

import argparse
import math
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from ib_jax import data, models, train
from ib_jax.models import resnet

MODELS = {
    "mlp": train.TrainConfig(hidden=(784, 1024, 1024, 20, 20, 20, 10), activation="tanh"),
    "cnn": train.TrainConfig(model="cnn", channels=(16, 32), hidden=(128,), activation="relu"),
    "resnet": train.TrainConfig(model="resnet", channels=(16, 32, 64), hidden=(), activation="relu"),
}
OPTIMISER = dict(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=100, loss_reduction="mean")


def _median_seconds(fn, repeats: int) -> tuple[float, float]:
    """(seconds of the first call, median seconds of `repeats` further calls); `fn` blocks."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def ib_jax_epoch(config: train.TrainConfig, dataset: data.Dataset, seeds: int, repeats: int) -> tuple[float, float]:
    """(compile + first epoch, median epoch) seconds of `seeds` seeds in one program."""
    x, y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    shape = dataset.image_shape

    def init(key):
        return train.create_state(key, config, x.shape[1], dataset.num_classes, image_shape=shape)

    keys = jax.random.split(jax.random.key(0), seeds)
    states = jax.jit(jax.vmap(init))(keys)
    one_seed = lambda st, k: train.train_epoch(st, k, x, y, config)[:2]  # noqa: E731
    if models.rows_at_once(config.model, jax.default_backend()) == 1:  # in turns, as the mains run them here
        epoch = jax.jit(lambda sts, ks: jax.lax.map(lambda a: one_seed(*a), (sts, ks)))
    else:
        epoch = jax.jit(jax.vmap(one_seed))
    holder = {"states": states}

    def one():
        holder["states"], metrics = epoch(holder["states"], keys)
        jax.block_until_ready(metrics)

    return _median_seconds(one, repeats)


def _torch_network(name: str, config: train.TrainConfig, image_shape, num_classes: int):
    import torch  # pylint: disable=g-import-not-at-top

    nn = torch.nn
    h, w, c = image_shape
    if name == "mlp":
        dims = (h * w * c, *config.hidden, num_classes)
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers += [nn.Linear(a, b)] + ([nn.Tanh()] if i < len(dims) - 2 else [])
        return nn.Sequential(nn.Flatten(), *layers)
    if name == "cnn":
        layers, channels = [], c
        for out in config.channels:
            layers += [nn.Conv2d(channels, out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            channels, h, w = out, h // 2, w // 2
        widths = (channels * h * w, *config.hidden)
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[: 3 * len(config.channels)], nn.Flatten(), *layers[3 * len(config.channels) :],
                             nn.Linear(widths[-1], num_classes))  # fmt: skip

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.norm1, self.norm2 = nn.GroupNorm(math.gcd(cin, 8), cin), nn.GroupNorm(math.gcd(cout, 8), cout)
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

        def forward(self, x):
            pre = torch.relu(self.norm1(x))
            short = x if self.shortcut is None else self.shortcut(pre)
            return short + self.conv2(torch.relu(self.norm2(self.conv1(pre))))

    blocks, channels = [nn.Conv2d(c, config.channels[0], 3, padding=1)], config.channels[0]
    for s, out in enumerate(config.channels):
        for b in range(resnet.BLOCKS):
            blocks.append(Block(channels, out, 2 if s > 0 and b == 0 else 1))
            channels = out
    head = [nn.GroupNorm(math.gcd(channels, 8), channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*blocks, *head, nn.Linear(channels, num_classes))


def torch_epoch(name: str, config: train.TrainConfig, dataset: data.Dataset, repeats: int) -> tuple[float, float]:
    """(first epoch, median epoch) seconds of the same network and optimiser in PyTorch."""
    import torch  # pylint: disable=g-import-not-at-top

    torch.manual_seed(0)
    h, w, c = dataset.image_shape
    x = torch.from_numpy(dataset.x_train.reshape(-1, h, w, c).transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(dataset.y_train).long()
    net = _torch_network(name, config, dataset.image_shape, dataset.num_classes)
    opt = torch.optim.SGD(net.parameters(), lr=config.learning_rate, momentum=config.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def one():
        order = torch.randperm(len(y), generator=generator)
        for i in range(len(y) // config.batch_size):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()

    return _median_seconds(one, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--train_size", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="mlp,cnn,resnet")
    parser.add_argument("--quick", action="store_true", help="1,000 images, 2 seeds, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.train_size, args.seeds, args.repeats = 1000, 2, 1
    import torch  # pylint: disable=g-import-not-at-top

    dataset = data.prepare(data.load_mnist(args.data_dir), train_size=args.train_size, seed=0)
    machine = f"{platform.processor() or platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s)"
    versions = f"jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    setting = f"MNIST {args.train_size:,} images, batches of 100, SGD 0.01 momentum 0.9"
    print(f"# {machine}, {versions}; {setting}; median of {args.repeats} epochs")
    s = args.seeds
    print(f"| model | PyTorch, 1 seed | ib_jax, 1 seed | ratio | {s} x PyTorch | {s} x ib_jax single | "
          f"ib_jax, {s} seeds as one program | vs {s} x PyTorch | compile (1 / {s} seeds) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models.split(","):
        config = train.TrainConfig(**{**MODELS[name].__dict__, **OPTIMISER})
        _, torch_s = torch_epoch(name, config, dataset, args.repeats)
        first1, one = ib_jax_epoch(config, dataset, 1, args.repeats)
        first_s, many = ib_jax_epoch(config, dataset, s, args.repeats)
        print(
            f"| {name} | {torch_s:.2f} s | {one:.2f} s | {torch_s / one:.2f}x | {s * torch_s:.1f} s | {s * one:.1f} s "
            f"| {many:.1f} s | {s * torch_s / many:.2f}x | {first1 - one:.1f} / {first_s - many:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
