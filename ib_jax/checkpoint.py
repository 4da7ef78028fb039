"""What a run has measured so far (`Record`), and its checkpoint: the rows' training states and
that record in one msgpack file, written atomically; and when a saved run can be taken up
(`check_continuation`): resumed with its own settings, or continued to a larger --epochs from a
finished run's final state (`can_continue`, `prepare_run_dir`)."""

import dataclasses
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import flax.serialization
import jax
import numpy as np

from ib_jax import config as config_lib
from ib_jax import errors, results, sharding, workdir


@dataclasses.dataclass
class Record:
    """What a run has measured so far (host numpy)."""

    epoch: int = 0  # epochs trained
    metrics: list = dataclasses.field(default_factory=list)  # [4, R] per epoch
    mi: list = dataclasses.field(default_factory=list)  # [M, 4, R, L] per measured epoch (M estimators)
    grads: list = dataclasses.field(default_factory=list)  # [3, R, L] per measured epoch
    final_metrics: np.ndarray | None = None  # [4, R] of the final network, once it is measured

    def information(self, num_estimators: int, num_rows: int, num_layers: int) -> np.ndarray:
        """[M, 4, R, E, L] the information measured so far (M channels; an epoch measured by
        an older ib_jax, with fewer channels, has NaN in those added since, which come last)."""
        if self.mi:
            width = max(num_estimators, *(m.shape[0] for m in self.mi))
            padded = [np.pad(m, ((0, width - m.shape[0]),) + ((0, 0),) * 3, constant_values=np.nan) for m in self.mi]
            return np.stack(padded, axis=3)
        return np.zeros((num_estimators, 4, num_rows, 0, num_layers), np.float32)

    def metric_curves(self, num_rows: int) -> np.ndarray:
        """[4, R, T] loss and accuracy of every epoch run so far."""
        return np.stack(self.metrics, axis=2) if self.metrics else np.zeros((4, num_rows, 0), np.float32)

    def gradients(self, num_rows: int, num_layers: int) -> np.ndarray:
        """[3, R, E, L] the gradient statistics measured so far."""
        return np.stack(self.grads, axis=2) if self.grads else np.zeros((3, num_rows, 0, num_layers), np.float32)


def save(path: pathlib.Path, config_json: str, states, record: Record) -> None:
    """Writes the states (gathered to the host) and the record to `path`, atomically."""
    payload = {
        "config": config_json,
        "epoch": record.epoch,
        "states": flax.serialization.to_state_dict(jax.tree.map(sharding.host, states)),
        "metrics": np.stack(record.metrics, axis=-1) if record.metrics else np.zeros(0),
        "mi": np.stack(record.mi, axis=3) if record.mi else np.zeros(0),
        "grads": np.stack(record.grads, axis=2) if record.grads else np.zeros(0),
    }
    results.atomic_write(path, lambda f: f.write(flax.serialization.msgpack_serialize(payload)))


def read(path: pathlib.Path, check: Callable[[str, int], None]) -> dict:
    """The checkpoint at `path`, read and decoded but not yet laid out (`restore`). DataError for
    a corrupt file; `check(saved_config_json, epoch)` raises ConfigError for a checkpoint the run
    cannot take up (other settings). Both come before the run compiles anything."""
    try:
        payload = flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # pylint: disable=broad-except  # any decoding failure means corrupt.
        raise errors.DataError(f"{path} is corrupt ({type(e).__name__}); delete it or pass --overwrite") from None
    check(payload["config"], int(payload["epoch"]))
    return payload


def restore(payload: dict, template_states, state_sharding) -> tuple:
    """(states shaped as `template_states`, laid out by `state_sharding`; Record) of a `read`
    checkpoint."""
    states = flax.serialization.from_state_dict(template_states, payload["states"])
    record = Record(epoch=int(payload["epoch"]))
    if payload["metrics"].size:
        record.metrics = list(np.moveaxis(payload["metrics"], -1, 0))
    if payload["mi"].size:
        record.mi = list(np.moveaxis(payload["mi"], 3, 0))
    if payload["grads"].size:
        record.grads = list(np.moveaxis(payload["grads"], 2, 0))
    return sharding.put(states, state_sharding), record


def load(path: pathlib.Path, check: Callable[[str, int], None], template_states, state_sharding) -> tuple:
    """`restore(read(path, check), ...)`: (states, Record) of the checkpoint at `path`."""
    return restore(read(path, check), template_states, state_sharding)


def check_continuation(saved: Mapping[str, Any], config: config_lib.ExperimentConfig, trained: int, where) -> None:
    """ConfigError unless a run with settings `saved` (`ExperimentConfig.to_dict()`), trained
    for `trained` epochs, can be continued by `config`: the same settings, its --epochs no
    smaller than `trained` (a finished run: larger), and, where --epochs changed, measured every
    --mi_every epochs (a log-spaced schedule is spread over --epochs: a longer run measures other
    epochs). The message names each setting that differs."""
    diffs = config_lib.differences(saved, config.to_dict(), ignore=("epochs",))
    if diffs:
        raise errors.ConfigError(
            f"{where} holds a run with other settings ({'; '.join(diffs)}): rerun with its settings, another "
            "--output_dir, or --overwrite"
        )
    before = int(saved.get("epochs", config.epochs))
    if before == config.epochs:
        return
    if config.mi_log_points:
        raise errors.ConfigError(
            f"{where} holds a run of {before} epochs measured at --mi_log_points epochs spread over them: a run "
            f"of --epochs {config.epochs} measures other epochs, so it cannot continue it; pass --overwrite"
        )
    if config.epochs < trained:
        raise errors.ConfigError(
            f"{where} holds a run trained for {trained} epochs: --epochs {config.epochs} cannot shorten it; pass "
            "--overwrite, or another --output_dir"
        )


def can_continue(output_dir: str | os.PathLike, config: config_lib.ExperimentConfig) -> bool:
    """Whether the finished run in `output_dir` continues to `config.epochs` (larger than its
    own, every other setting the same, its final state kept); ConfigError, naming why, where a
    larger --epochs cannot continue it; False where --epochs is not larger (then the run is
    simply finished)."""
    out = pathlib.Path(output_dir)
    saved = results.load_config(out).get("config")
    if saved is None or int(saved.get("epochs", 0)) >= config.epochs:
        return False
    if not (out / results.FINAL_STATE).is_file():
        raise errors.ConfigError(
            f"{out} holds a finished run of {saved['epochs']} epochs without its final state ({results.FINAL_STATE}, "
            "not kept by --keep_final_state=false or older versions), so it cannot continue; pass --overwrite"
        )
    check_continuation(saved, config, int(saved["epochs"]), out)
    return True


def prepare_run_dir(
    output_dir: str | os.PathLike, config: config_lib.ExperimentConfig, overwrite: bool, lock: bool = True
) -> pathlib.Path:
    """`workdir.prepare_output_dir` for a run of `config`: a finished run in the folder is
    continued when `config` asks for more epochs and nothing else (`can_continue`)."""
    return workdir.prepare_output_dir(output_dir, overwrite, lock=lock, continues=lambda out: can_continue(out, config))
