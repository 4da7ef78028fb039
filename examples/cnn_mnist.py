"""The information plane of a small convolutional network on MNIST, trained by its own optax
loop, as a Flax user writes one; ib_jax only captures the layers and records the plane.

  python -m examples.cnn_mnist --data_dir ../shared/data --output_dir runs/cnn_true
  python -m examples.cnn_mnist --data_dir ../shared/data --random_labels --output_dir runs/cnn_random
  python -m experiments.compare runs/cnn_true runs/cnn_random --layout headline --output cnn.png

Network: conv 5x5, 8 channels, stride 2 -> ReLU -> conv 3x3, 16 channels, stride 2 -> ReLU ->
dense 64 -> ReLU -> dense 10 (logits). Adam on minibatches of the mean cross-entropy. The
information plane of the two convolutional layers (flattened: 1,568 and 784 units), the dense
layer and the logits is measured on the training and test subsets every --mi_every epochs and
after the last one. Outputs in --output_dir: results.npz, config.json and the mains' figures.
"""

import logging
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from absl import logging as absl_logging
from flax.training import train_state

from ib_jax import capture, data, errors, estimators, recorder

_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    None,
    "Folder with MNIST/raw/*.gz (default: $IB_JAX_DATA or ~/.cache/ib_jax; downloaded there when missing).",
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Folder for results and figures (default runs/cnn_true or runs/cnn_random)."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a finished run in --output_dir.")
_TRAIN_SIZE = flags.DEFINE_integer("train_size", 1000, "Stratified training subset size; 0 = all 60,000.")
_TEST_SIZE = flags.DEFINE_integer("test_size", 1000, "Stratified test subset size; 0 = all 10,000.")
_EPOCHS = flags.DEFINE_integer("epochs", 300, "Epochs to train.")
_RANDOM_LABELS = flags.DEFINE_bool("random_labels", False, "Train on a random permutation of the training labels.")
_MI_EVERY = flags.DEFINE_integer("mi_every", 10, "Measure the information plane every k epochs (and at the end).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 100, "Minibatch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the initialisation and the batch order.")
_DATA_SEED = flags.DEFINE_integer("data_seed", 0, "Seed of the subsets and the random labels.")
_ESTIMATORS = flags.DEFINE_list(
    "estimators",
    ["kde_upper", "binned"],
    f"Estimators, from {', '.join(estimators.ESTIMATORS)}; the first is the main one.",
)
_BIN_SIZE = flags.DEFINE_float("bin_size", 0.5, "Bin size of the binned estimator.")
_KDE_NOISE_VARIANCE = flags.DEFINE_float(
    "kde_noise_variance",
    100.0,
    "Noise variance of the KDE bounds (at 0.1, every layer of this network reads ~log2 N by epoch 20).",
)

_OWN_FLAGS = (
    "train_size",
    "test_size",
    "epochs",
    "random_labels",
    "mi_every",
    "batch_size",
    "learning_rate",
    "seed",
    "data_seed",
    "estimators",
    "bin_size",
    "kde_noise_variance",
    "data_dir",
)  # in config.json

LAYERS = ("conv1", "conv2", "dense", "logits")  # three sown values and one submodule's output


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (5, 5), strides=2)(x))
        self.sow("intermediates", "conv1", x)  # after the nonlinearity
        x = nn.relu(nn.Conv(16, (3, 3), strides=2)(x))
        self.sow("intermediates", "conv2", x)
        x = nn.relu(nn.Dense(64)(x.reshape(x.shape[0], -1)))
        self.sow("intermediates", "dense", x)
        return nn.Dense(10, name="logits")(x)


def loss_and_accuracy(params, apply_fn, x, y):
    logits = apply_fn({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


evaluate = jax.jit(loss_and_accuracy, static_argnums=1)


@jax.jit
def train_step(state, x, y):
    grads = jax.grad(lambda p: loss_and_accuracy(p, state.apply_fn, x, y)[0])(state.params)
    return state.apply_gradients(grads=grads)


@jax.jit
def train_epoch(state, key, x, y):
    """One epoch of shuffled minibatches (the last incomplete one dropped) under lax.scan."""
    batches = x.shape[0] // _BATCH_SIZE.value
    perm = jax.random.permutation(key, x.shape[0])[: batches * _BATCH_SIZE.value].reshape(batches, -1)

    def step(state, idx):
        return train_step(state, x[idx], y[idx]), None

    return jax.lax.scan(step, state, perm)[0]


def _check_flags() -> None:
    for name in ("epochs", "mi_every", "batch_size"):
        if flags.FLAGS[name].value < 1:
            raise errors.ConfigError(f"--{name} must be >= 1, got {flags.FLAGS[name].value}")
    if _TRAIN_SIZE.value < 0 or _TEST_SIZE.value < 0:
        raise errors.ConfigError("--train_size and --test_size must be >= 0 (0 = all)")
    if not _LEARNING_RATE.value > 0:
        raise errors.ConfigError(f"--learning_rate must be positive, got {_LEARNING_RATE.value}")


def setup(argv, title: str, folder: str):
    """The flags checked, the data and the `Recorder` of a run titled `title` ("CNN"), written to
    --output_dir or runs/<folder>_true (_random): (recorder, images, labels, test images, test
    labels, the data set); a bad input is one line and exit 2. The NNX example
    (examples/cnn_mnist_nnx.py) shares it."""
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # JAX's backend probing, at INFO
    if len(argv) > 1:
        _fail(f"error: unexpected arguments {argv[1:]}", 2)
    kind = "random" if _RANDOM_LABELS.value else "true"
    output_dir = _OUTPUT_DIR.value or f"runs/{folder}_{kind}"
    try:
        _check_flags()
        ds = data.prepare(
            data.load_mnist(_DATA_DIR.value),
            train_size=_TRAIN_SIZE.value,
            test_size=_TEST_SIZE.value,
            random_labels=_RANDOM_LABELS.value,
            seed=_DATA_SEED.value,
        )
        if _BATCH_SIZE.value > len(ds.y_train):
            raise errors.ConfigError(f"--batch_size {_BATCH_SIZE.value} exceeds the {len(ds.y_train)} training images")
        rec = recorder.Recorder(
            output_dir,
            num_classes=10,
            layer_names=LAYERS,
            estimators=_ESTIMATORS.value,
            binning=estimators.Binning(bin_size=_BIN_SIZE.value),
            kde_noise_variance=_KDE_NOISE_VARIANCE.value,
            name=f"{title}, MNIST, {kind} labels",
            config={k: flags.FLAGS[k].value for k in _OWN_FLAGS},
            overwrite=_OVERWRITE.value,
        )
    except (errors.ConfigError, errors.DataError, ValueError) as e:
        _fail(f"error: {e}", 2)
    images = lambda x: jnp.asarray(x.reshape(-1, 28, 28, 1))  # noqa: E731
    return rec, images(ds.x_train), jnp.asarray(ds.y_train), images(ds.x_test), jnp.asarray(ds.y_test), ds


def loop(rec, measure, log, epoch_fn, evaluate_train) -> None:
    """The run: every epoch logged, the plane measured every --mi_every epochs and of the final
    network, the figures drawn and the outputs named. `measure(epoch)` and `log(epoch)` record
    the network entering `epoch`, `epoch_fn(epoch)` trains one epoch, `evaluate_train()` gives
    the training loss and accuracy of the network now."""
    start = time.perf_counter()
    what = f"{', '.join(e.name for e in rec.estimators)} on {len(LAYERS)} layers x 2 splits"
    absl_logging.info("compiling and running the first measurement (%s) and training epoch ...", what)
    for epoch in range(_EPOCHS.value):
        log(epoch)
        if epoch % _MI_EVERY.value == 0:
            measure(epoch)
        epoch_fn(epoch)
        if epoch % _MI_EVERY.value == 0 or epoch == _EPOCHS.value - 1:
            loss, accuracy = evaluate_train()  # waits for the device: progress
            absl_logging.info(
                "epoch %d/%d: the network after %d epochs: train loss %.4f, accuracy %.4f (%.0f s)",
                *(epoch + 1, _EPOCHS.value, epoch + 1, float(loss), float(accuracy), time.perf_counter() - start),
            )
    log(_EPOCHS.value)  # the final network
    absl_logging.info("measuring the final network (%s)", what)
    measure(_EPOCHS.value)
    paths = rec.save(complete=True, figures=True)
    res = rec.results()
    print(
        f"{rec.name}: {_EPOCHS.value} epochs in {time.perf_counter() - start:.0f} s: final train accuracy "
        f"{res['final_train_accuracy'][0]:.4f}, test accuracy {res['final_test_accuracy'][0]:.4f}"
    )
    for path in paths:  # the mains' wording: "results: ...", "figure: ..."
        print(f"{ {'.npz': 'results', '.json': 'config'}.get(path.suffix, 'figure') }: {path}")


def main(argv):
    rec, x, y, x_test, y_test, ds = setup(argv, "CNN", "cnn")
    x_flat, x_test_flat = jnp.asarray(ds.x_train), jnp.asarray(ds.x_test)  # [N, 784]
    model = CNN()
    init_key, shuffle_key = jax.random.split(jax.random.key(_SEED.value))
    params = model.init(init_key, x[:1])["params"]
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(_LEARNING_RATE.value))

    def measure(epoch):  # the information plane of the network entering `epoch`
        _, acts = capture.apply(model, {"params": state.params}, x, layers=LAYERS)
        _, acts_test = capture.apply(model, {"params": state.params}, x_test, layers=LAYERS)
        rec.record(epoch, (acts, y, x_flat), (acts_test, y_test, x_test_flat))  # inputs: for renyi and edge
        rec.save()  # atomic; an interrupted run keeps every measured epoch

    def log(epoch):  # loss and accuracy of the network entering `epoch`, on both whole subsets
        train_loss, train_accuracy = evaluate(state.params, state.apply_fn, x, y)
        test_loss, test_accuracy = evaluate(state.params, state.apply_fn, x_test, y_test)
        rec.log(
            epoch,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
        )

    def epoch_fn(epoch):
        nonlocal state
        state = train_epoch(state, jax.random.fold_in(shuffle_key, epoch), x, y)

    loop(rec, measure, log, epoch_fn, lambda: evaluate(state.params, state.apply_fn, x, y))


def _fail(message: str, code: int) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(code)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except SystemExit as e:  # --help and its kin print their text and exit 0 (absl exits 1)
        if e.code == 1 and any(a.split("=")[0] in ("--help", "-?", "--helpshort", "--helpfull") for a in argv[1:]):
            sys.exit(0)
        raise
    except flags.Error as e:
        _fail(f"error: {str(e).splitlines()[0]}", 2)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
