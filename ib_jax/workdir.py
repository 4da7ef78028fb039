"""The output folder of a run: checked before anything is created, locked (one run per folder),
and cleared of a finished run only on request. The mains and `Recorder` share it."""

import os
import pathlib
from typing import Any

from ib_jax import errors, results

LOCK = ".lock"
_HELD: dict[pathlib.Path, Any] = {}  # output folders this process has locked (open files)


def check_output_dir(output_dir: str | os.PathLike) -> pathlib.Path:
    """Whether `output_dir` can be used, creating nothing: not a file, no file on its path, and
    its nearest existing folder writable. ConfigError otherwise."""
    out = pathlib.Path(output_dir)
    if not str(output_dir).strip():
        raise errors.ConfigError("--output_dir is empty")
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"--output_dir {out} exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise errors.ConfigError(f"--output_dir {out} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise errors.ConfigError(f"--output_dir {out} cannot be written ({existing} is not writable)")
    return out


def _lock(out: pathlib.Path) -> None:
    """Takes an exclusive OS lock (flock) on `out/.lock` for the life of this process: a second
    run on the same folder is refused, naming the process that holds it; the OS releases it when
    that process ends, however it ends."""
    import fcntl  # pylint: disable=g-import-not-at-top  # POSIX only, like the lock itself

    key = out.resolve()
    if key in _HELD:
        return
    handle = open(out / LOCK, "a+")  # noqa: SIM115  # held open on purpose: the lock lives with it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise errors.ConfigError(
            f"{out} is in use by another run (process {holder}); wait for it or choose another --output_dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[key] = handle


def prepare_output_dir(output_dir: str | os.PathLike, overwrite: bool, lock: bool = True) -> pathlib.Path:
    """Checks the folder (`check_output_dir`), creates it and, with `lock` (the writing process
    of a run; the other processes of a multi-host run pass False), locks it: one run per
    folder. Then refuses to touch a finished run unless `overwrite`; with it, removes the old
    outputs."""
    out = check_output_dir(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.ConfigError(f"--output_dir {out} cannot be created ({e.strerror})") from None
    if lock:
        _lock(out)
    finished = (out / results.RESULTS).is_file() and not (out / results.CHECKPOINT).is_file()
    if overwrite:
        for name in (results.RESULTS, results.CONFIG, results.CHECKPOINT, results.SUMMARY):
            (out / name).unlink(missing_ok=True)
        for figure in (*out.glob("*.png"), *out.glob("*.gif")):
            figure.unlink()
    elif finished:
        raise errors.ConfigError(f"{out} holds a finished run; pass --overwrite to replace it")
    return out
