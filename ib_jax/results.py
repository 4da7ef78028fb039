"""Results and checkpoints on disk, always written atomically (temporary file, fsync, rename).

`results.npz` layout (a contract other tools read):
  mi_epochs [E]                       epochs at which information was measured
  i_xt_train, i_ty_train [S, E, L]    bits, on the training split
  i_xt_test, i_ty_test [S, E, L]      bits, on the test split
  train_loss, train_accuracy [S, T]   per epoch run (the network entering that epoch)
  test_loss, test_accuracy [S, T]
  layer_widths [L]
plus `seeds` [S], `h_y_train`, `h_y_test`, `n_train`, `n_test` (for the figures' reference
lines) and `complete` (False while a run is in progress or stopped early).
"""

import json
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ib_jax import errors

RESULTS = "results.npz"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.msgpack"
REQUIRED = (
    "mi_epochs", "i_xt_train", "i_ty_train", "i_xt_test", "i_ty_test",
    "train_loss", "train_accuracy", "test_loss", "test_accuracy", "layer_widths",
)  # fmt: skip


def atomic_write(path: str | os.PathLike, write) -> None:
    """Calls `write(file)` on a temporary file beside `path`, then renames it over `path`:
    readers see the old file or the new one, never a partial one."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_results(output_dir: str | os.PathLike, arrays: Mapping[str, Any]) -> pathlib.Path:
    path = pathlib.Path(output_dir) / RESULTS
    atomic_write(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))
    return path


def save_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def load_results(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a run's results.npz, checking the contract's keys and shapes."""
    path = pathlib.Path(run_dir) / RESULTS
    if not path.is_file():
        raise errors.DataError(f"no {RESULTS} in {run_dir}: not a finished or checkpointed run")
    try:
        with np.load(path) as f:
            out = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise errors.DataError(f"{path} is unreadable ({e})") from None
    missing = [k for k in REQUIRED if k not in out]
    if missing:
        raise errors.DataError(f"{path} lacks {', '.join(missing)}")
    s, e, num_layers = out["i_xt_train"].shape
    if out["mi_epochs"].shape != (e,) or out["layer_widths"].shape != (num_layers,) or out["train_loss"].shape[0] != s:
        raise errors.DataError(f"{path} has inconsistent shapes")
    return out


def load_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = pathlib.Path(run_dir) / CONFIG
    if not path.is_file():
        return {}
    return json.loads(path.read_text())
