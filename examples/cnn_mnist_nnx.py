"""The example of examples/cnn_mnist.py with the network written in Flax NNX: the same layers,
flags, loop and outputs; `capture.apply(model, x, layers=...)` takes the NNX module as it is.

  python -m examples.cnn_mnist_nnx --data_dir ../shared/data --output_dir runs/cnn_nnx_true
  python -m examples.cnn_mnist_nnx --data_dir ../shared/data --random_labels --output_dir runs/cnn_nnx_random

Network: conv 5x5, 8 channels, stride 2 -> ReLU -> conv 3x3, 16 channels, stride 2 -> ReLU ->
dense 64 -> ReLU -> dense 10 (logits), as the Linen example. The layers measured: the values
sown after each ReLU (`self.sow(nnx.Intermediate, "conv1", x)`, ...) and the `logits`
submodule's output, named by its attribute path. Adam on minibatches of the mean cross-entropy,
with `nnx.Optimizer` and `nnx.jit`.
"""

import jax
import jax.numpy as jnp
import optax
from absl import app
from flax import nnx

from examples import cnn_mnist as linen  # its flags, checks, data, recorder and loop
from ib_jax import capture

LAYERS = linen.LAYERS  # "conv1", "conv2", "dense": sown values; "logits": a submodule's path


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        # The sown names (conv1, ...) cannot be attributes too: the submodules are named apart.
        self.conv_a = nnx.Conv(1, 8, (5, 5), strides=2, rngs=rngs)
        self.conv_b = nnx.Conv(8, 16, (3, 3), strides=2, rngs=rngs)
        self.hidden = nnx.Linear(16 * 7 * 7, 64, rngs=rngs)
        self.logits = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.conv_a(x))
        self.sow(nnx.Intermediate, "conv1", x)  # after the nonlinearity
        x = jax.nn.relu(self.conv_b(x))
        self.sow(nnx.Intermediate, "conv2", x)
        x = jax.nn.relu(self.hidden(x.reshape(x.shape[0], -1)))
        self.sow(nnx.Intermediate, "dense", x)
        return self.logits(x)


def loss_and_accuracy(model, x, y):
    # Called under `nnx.capture` with no collection, the sown values are dropped (a bare call
    # would keep them on the module, growing at every step: deprecated in NNX).
    logits = nnx.capture(model)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


evaluate = nnx.jit(loss_and_accuracy)


@nnx.jit
def train_epoch(model, optimizer, key, x, y):
    """One epoch of shuffled minibatches (the last incomplete one dropped)."""
    size = linen.flags.FLAGS.batch_size
    batches = x.shape[0] // size
    perm = jax.random.permutation(key, x.shape[0])[: batches * size].reshape(batches, size)

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def step(carry, idx):
        model, optimizer = carry
        grads = nnx.grad(lambda m: loss_and_accuracy(m, x[idx], y[idx])[0])(model)
        optimizer.update(model, grads)
        return model, optimizer

    step((model, optimizer), perm)


def main(argv):
    rec, x, y, x_test, y_test, ds = linen.setup(argv, "CNN (Flax NNX)", "cnn_nnx")
    x_flat, x_test_flat = jnp.asarray(ds.x_train), jnp.asarray(ds.x_test)  # [N, 784]: for renyi and edge
    init_key, shuffle_key = jax.random.split(jax.random.key(linen.flags.FLAGS.seed))
    model = CNN(nnx.Rngs(init_key))
    optimizer = nnx.Optimizer(model, optax.adam(linen.flags.FLAGS.learning_rate), wrt=nnx.Param)

    def measure(epoch):  # the information plane of the network entering `epoch`
        _, acts = capture.apply(model, x, layers=LAYERS)
        _, acts_test = capture.apply(model, x_test, layers=LAYERS)
        rec.record(epoch, (acts, y, x_flat), (acts_test, y_test, x_test_flat))
        rec.save()  # atomic; an interrupted run keeps every measured epoch

    def log(epoch):  # loss and accuracy of the network entering `epoch`, on both whole subsets
        (train_loss, train_accuracy), (test_loss, test_accuracy) = (
            evaluate(model, x, y),
            evaluate(model, x_test, y_test),
        )
        rec.log(epoch, train_loss=train_loss, train_accuracy=train_accuracy, test_loss=test_loss,
                test_accuracy=test_accuracy)  # fmt: skip

    def epoch_fn(epoch):
        train_epoch(model, optimizer, jax.random.fold_in(shuffle_key, epoch), x, y)

    linen.loop(rec, measure, log, epoch_fn, lambda: evaluate(model, x, y))


if __name__ == "__main__":
    app.run(main, flags_parser=linen._parse_flags)  # pylint: disable=protected-access
