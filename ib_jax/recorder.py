"""Record the information plane of one's own training loop into the results contract of the
mains, so that `ib_jax.plotting` and `experiments.compare` read it unchanged.

    rec = recorder.Recorder("runs/cnn", num_classes=10, layer_names=LAYERS)
    for epoch in range(epochs):
        ...                                    # the user's own steps
        if epoch % k == 0:
            _, acts = capture.apply(model, {"params": params}, x_train, layers=LAYERS)
            _, acts_test = capture.apply(model, {"params": params}, x_test, layers=LAYERS)
            rec.record(epoch, (acts, y_train), (acts_test, y_test))
            rec.save()                          # atomic: an interrupted run keeps what it measured
        rec.log(epoch, train_loss=loss, train_accuracy=acc)
    rec.save(complete=True, figures=True)

`record` measures on the device (one jitted call for every estimator and layer of both
splits) and keeps the few numbers it returns as device arrays: no activation is copied to the
host, and nothing waits for the device until `save`. Inside one's own `jax.jit`, call the pure
`rec.measure(...)` there and hand its result to `rec.add(epoch, measured)` instead.

Rows: activations [N, D] make one row (one network); [S, N, D], with labels [N] or [S, N],
make S rows (seeds vmapped by the user), as the mains' seeds. The estimators that need the
inputs X (`renyi`, `edge`) take them as a split's third element, flattened: (acts, labels,
x [N, Dx] or [S, N, Dx]).
"""

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ib_jax import errors, results, workdir
from ib_jax import estimators as estimators_lib

DEFAULT_BINNING = estimators_lib.Binning(bin_size=0.5)  # the MNIST main's
METRICS = results.METRICS
# (one [..., N, D_l] array per layer, labels [N] or [..., N]), and optionally the inputs [..., N, Dx]
Split = tuple[Sequence[jax.Array], jax.Array] | tuple[Sequence[jax.Array], jax.Array, jax.Array]


def _entropy_bits(labels: jax.Array, num_classes: int) -> jax.Array:
    common = estimators_lib.common
    return common.entropy_bits(common.label_distribution(labels, num_classes)).astype(jnp.float32)


class Recorder:
    """Accumulates the information plane (every estimator, layer and split) at chosen epochs,
    and per-epoch loss and accuracy, and writes them as `results.npz` and `config.json`.

    Args:
      output_dir: the run's folder, checked and locked as the mains do (one run per folder; a
        finished run is replaced only with `overwrite`).
      num_classes: number of classes of the labels.
      layer_names: a name per measured layer, for the figures and `results.npz`
        (`layer_names`); default "layer 1", ...
      estimators: names from `ib_jax.estimators.ESTIMATORS` or estimator objects; the first is
        the main one (the unprefixed keys of results.npz).
      binning, kde_noise_variance, adaptive_bins, renyi_alpha, renyi_batch: the settings of
        estimators given by name.
      name: the run's title in figures and in `experiments.compare`.
      config: anything JSON-serialisable to keep in config.json (the user's settings, under
        "config", as the mains keep theirs).
      seeds: the rows' seeds, for `results.npz` (default 0, 1, ...).
      test_name: what the second split is called in the figures ("test").
      bootstrap, null_permutations: each value's bootstrap standard error over B resamples, and
        I(T;Y) under P shuffles of the labels (`estimators.common.Confidence`; 0 = off), written
        as the mains write them (`<estimator>.i_xt_train_se`, ...).

    Raises:
      errors.ConfigError: a bad setting or an unusable output folder.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        *,
        num_classes: int,
        layer_names: Sequence[str] | None = None,
        estimators: Sequence[str | estimators_lib.Estimator] = ("binned",),
        binning: estimators_lib.Binning = DEFAULT_BINNING,
        kde_noise_variance: float = 0.1,
        adaptive_bins: int = 30,
        renyi_alpha: float = 1.01,
        renyi_batch: int = 200,
        name: str = "",
        config: Mapping[str, Any] | None = None,
        seeds: Sequence[int] | None = None,
        test_name: str = "test",
        overwrite: bool = False,
        bootstrap: int = 0,
        null_permutations: int = 0,
    ):
        if not isinstance(num_classes, int | np.integer) or num_classes < 1:
            raise errors.ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
        try:
            settings = {
                "binning": binning,
                "noise_variance": kde_noise_variance,
                "num_bins": adaptive_bins,
                "renyi_alpha": renyi_alpha,
                "renyi_batch": renyi_batch,
            }
            chosen = [
                e if isinstance(e, estimators_lib.Estimator) else estimators_lib.by_name(e, **settings)
                for e in estimators
            ]
            self.confidence = estimators_lib.common.Confidence(bootstrap, null_permutations)
            if bootstrap:
                for e in chosen:
                    if not e.resamples:
                        raise ValueError(f"bootstrap does not apply to the {e.name} estimator: {e.resamples_why}")
        except ValueError as e:
            raise errors.ConfigError(str(e)) from None
        names = [e.name for e in chosen]
        if not names or len(set(names)) != len(names):
            raise errors.ConfigError(f"give one or more distinct estimators, got {names}")
        self.estimators = tuple(chosen)
        self.num_classes = int(num_classes)
        self.layer_names = None if layer_names is None else tuple(str(n) for n in layer_names)
        self.name, self.test_name = name, test_name
        self.seeds = None if seeds is None else np.asarray(seeds, np.int64)
        self.config = dict(config or {})
        self.out = workdir.prepare_output_dir(output_dir, overwrite, overwrite_hint="pass overwrite=True")
        self._epochs: list[int] = []
        self._measured: list[dict[str, jax.Array]] = []
        self._logged: dict[int, dict[str, jax.Array]] = {}
        self._jit_measure = jax.jit(self.measure)

    def measure(self, train: Split, test: Split) -> dict[str, jax.Array]:
        """Pure and jittable: every estimator on every layer of both splits. `train` and `test`
        are (activations, labels) with activations [..., N, D_l] per layer, or (activations,
        labels, inputs) for the estimators that need the inputs. Returns a dict of
        arrays for `add`: "information" [..., M + X, 4, L] (I(X;T), I(T;Y) of train, then of
        test, in bits, then the estimators' diagnostics: `estimators.channels.measure_splits`),
        "h_y" [..., 2], "n" [2] and "widths" [L]."""
        splits = [(tuple(acts), labels, (inputs or [None])[0]) for acts, labels, *inputs in (train, test)]
        information = estimators_lib.channels.measure_splits(
            self.estimators, splits, self.num_classes, confidence=self.confidence
        )
        lead = information.shape[:-3]
        h_y = [jnp.broadcast_to(_entropy_bits(split[1], self.num_classes), lead) for split in (train, test)]
        h_y = jnp.stack(h_y, axis=-1)
        n = jnp.array([train[1].shape[-1], test[1].shape[-1]], jnp.int32)
        widths = jnp.array([a.shape[-1] for a in train[0]], jnp.int32)
        return {"information": information, "h_y": h_y, "n": n, "widths": widths}

    def record(self, epoch: int, train: Split, test: Split) -> None:
        """Measures (on the device, asynchronously) and keeps the information plane of epoch
        `epoch`. The arguments are checked first (ValueError: shapes, labels)."""
        for what, split in (("train", train), ("test", test)):
            if len(split) not in (2, 3):
                raise ValueError(f"{what}: give (activations, labels) or (activations, labels, inputs)")
            acts, labels, *inputs = split
            if not inputs and any(e.needs_inputs for e in self.estimators):
                needing = ", ".join(e.name for e in self.estimators if e.needs_inputs)
                raise ValueError(f"{what}: {needing} need the inputs X: give (activations, labels, inputs)")
            try:
                estimators_lib.common.check_inputs(tuple(acts), labels, self.num_classes, (inputs or [None])[0])
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from None
        if len(train[0]) != len(test[0]) or [np.shape(a)[-1] for a in train[0]] != [np.shape(a)[-1] for a in test[0]]:
            raise ValueError("train and test must give the same layers, of the same widths")
        self.add(epoch, self._jit_measure((tuple(train[0]), *train[1:]), (tuple(test[0]), *test[1:])))

    def add(self, epoch: int, measured: Mapping[str, jax.Array]) -> None:
        """Keeps what `measure` returned for epoch `epoch` (epochs strictly increasing)."""
        epoch = int(epoch)
        if self._epochs and epoch <= self._epochs[-1]:
            raise ValueError(f"epoch {epoch} is not after the last recorded epoch {self._epochs[-1]}")
        info = measured["information"]
        extra = estimators_lib.channels.extra_channels(self.estimators, self.confidence.active)
        channels = len(self.estimators) + len(extra)
        if info.ndim not in (3, 4) or info.shape[-3:-1] != (channels, 4):
            raise ValueError(f"expected information [S?, {channels}, 4, L] from measure, got {info.shape}")
        if self.layer_names is not None and info.shape[-1] != len(self.layer_names):
            raise ValueError(f"{info.shape[-1]} layers measured, but {len(self.layer_names)} layer_names given")
        if self._measured and info.shape != self._measured[0]["information"].shape:
            raise ValueError(
                f"information of shape {info.shape} differs from the first record's "
                f"{self._measured[0]['information'].shape}"
            )
        self._epochs.append(epoch)
        self._measured.append(dict(measured))

    def log(self, epoch: int, **metrics: jax.Array) -> None:
        """Loss and accuracy of epoch `epoch` (any of `METRICS`; a scalar, or [S] per row).
        Device arrays are kept as they are, without waiting for them."""
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {', '.join(unknown)}; log any of {', '.join(METRICS)}")
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._logged.setdefault(int(epoch), {}).update(metrics)

    def results(self, complete: bool = False) -> dict[str, np.ndarray]:
        """The results.npz arrays of what was recorded so far (fetched from the device now)."""
        if not self._measured:
            raise ValueError("nothing recorded yet: call record (or add) first")
        measured, logged = jax.device_get((self._measured, self._logged))
        info = np.stack([np.asarray(m["information"], np.float32) for m in measured])  # [E, S?, M, 4, L]
        h_y = np.asarray(measured[0]["h_y"], np.float32)
        if info.ndim == 4:  # one row
            info, h_y = info[:, None], h_y[None]
        rows, num_layers = info.shape[1], info.shape[-1]
        epochs = 1 + max([*self._epochs, *logged])
        curves = np.full((len(METRICS), rows, epochs), np.nan, np.float32)  # NaN: not logged
        diverged = np.full(rows, -1)  # the first logged training loss that is NaN or infinite
        for epoch, values in sorted(logged.items()):
            for k, key in enumerate(METRICS):
                if key in values:
                    curves[k, :, epoch] = np.broadcast_to(np.asarray(values[key], np.float32), (rows,))
            if "train_loss" in values:
                diverged = np.where((diverged < 0) & ~np.isfinite(curves[0, :, epoch]), epoch, diverged)
        seen = [np.flatnonzero(np.isfinite(c).any(axis=0)) for c in curves]
        final = np.stack([c[:, s[-1]] if s.size else np.full(rows, np.nan, np.float32) for c, s in zip(curves, seen)])
        seeds = np.arange(rows) if self.seeds is None else self.seeds
        if len(seeds) != rows:
            raise ValueError(f"{len(seeds)} seeds given for {rows} rows")
        n = np.asarray(measured[0]["n"])
        info = np.transpose(info, (2, 3, 1, 0, 4))  # [E, S, M + X, 4, L] -> [M + X, 4, S, E, L]
        return results.build_results(
            mi_epochs=np.asarray(self._epochs, np.int64),
            **estimators_lib.channels.unpack_channels(info, self.estimators, confidence=self.confidence.active),
            estimators=[e.name for e in self.estimators],
            metrics=curves,
            layer_widths=np.asarray(measured[0]["widths"], np.int64),
            seeds=seeds,
            h_y_train_rows=h_y[:, 0],
            h_y_test=float(h_y[:, 1].mean()),
            n_train=int(n[0]),
            n_test=int(n[1]),
            test_name=self.test_name,
            complete=complete,
            final_metrics=final,
            layer_names=self.layer_names or [f"layer {i + 1}" for i in range(num_layers)],
            num_classes=self.num_classes,
            diverged_epoch=diverged,
        )

    def save(self, complete: bool = False, figures: bool = False) -> list[pathlib.Path]:
        """Writes results.npz and config.json atomically (and, with `figures`, the mains' run
        figures); returns the paths written. `complete` marks the run finished (and removes the
        folder's lock file)."""
        res = self.results(complete)
        config = results.build_config(
            name=self.name,
            settings=self.config,
            estimators=self.estimators,
            complete=complete,
            recorder=True,
            layer_names=[str(n) for n in res["layer_names"]],
            num_classes=self.num_classes,
        )
        workdir.take_lock(self.out)  # held since __init__; taken again by a save after a complete one
        paths = [results.save_results(self.out, res)]
        results.save_json(self.out / results.CONFIG, config)
        paths.append(self.out / results.CONFIG)
        if figures:
            from ib_jax import plotting  # pylint: disable=g-import-not-at-top  (matplotlib: only when drawing)

            paths += plotting.save_run_figures(results.load_results(self.out), self.out, self.name)
        if complete:
            workdir.release(self.out)  # a finished run leaves no .lock behind
        return paths
