"""The output folder of a run: checked before anything is created, locked (one run per folder;
the lock file is removed when the run finishes), and cleared of a finished run only on request.
The mains and `Recorder` share it."""

import os
import pathlib
from collections.abc import Callable
from typing import Any

from ib_jax import errors, outcome, results

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


def take_lock(out: pathlib.Path) -> None:
    """Takes an exclusive OS lock (flock) on `out/.lock` for the life of this process (or until
    `release`): a second run on the same folder is refused, naming the process that holds it;
    the OS releases it when that process ends, however it ends. A finished run removes the file
    (`release`): a lock taken on a file that was removed meanwhile is taken again on the new one."""
    import fcntl  # pylint: disable=g-import-not-at-top  # POSIX only, like the lock itself

    key = out.resolve()
    if key in _HELD:
        return
    while True:
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
        try:
            same = os.stat(out / LOCK).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # the holder removed the file between our open and our lock: lock the new one
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[key] = handle


def release(output_dir: str | os.PathLike) -> None:
    """Removes `output_dir/.lock` and releases it, if this process holds it (a finished run)."""
    out = pathlib.Path(output_dir)
    handle = _HELD.pop(out.resolve(), None)
    if handle is not None:
        (out / LOCK).unlink(missing_ok=True)  # before the lock goes: no other process holds it meanwhile
        handle.close()


def prepare_output_dir(
    output_dir: str | os.PathLike,
    overwrite: bool,
    lock: bool = True,
    *,
    continues: Callable[[pathlib.Path], bool] | None = None,
    overwrite_hint: str = "pass --overwrite",
) -> pathlib.Path:
    """Checks the folder (`check_output_dir`), creates it and, with `lock` (the writing process
    of a run; the other processes of a multi-host run pass False), locks it: one run per
    folder. With `overwrite`, removes the old outputs. Otherwise refuses (ConfigError) a folder
    whose run diverged (a non-finite loss: it cannot be resumed), and a finished run unless
    `continues(folder)` says the new run continues it (a larger --epochs). `overwrite_hint` is
    how the caller turns `overwrite` on ("pass --overwrite"; `Recorder`: "pass overwrite=True")."""
    out = check_output_dir(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.ConfigError(f"--output_dir {out} cannot be created ({e.strerror})") from None
    if lock:
        take_lock(out)
    if overwrite:
        for name in (results.RESULTS, results.CONFIG, results.CHECKPOINT, results.FINAL_STATE, results.SUMMARY):
            (out / name).unlink(missing_ok=True)
        for figure in (*out.glob("*.png"), *out.glob("*.gif")):
            figure.unlink()
        return out
    if not (out / results.RESULTS).is_file():
        return out
    status = _status(out)
    if status.startswith("diverged"):
        raise errors.ConfigError(
            f"{out} holds a run that {status}: it cannot be resumed; {overwrite_hint} to start again"
        )
    if (out / results.CHECKPOINT).is_file():
        return out  # an unfinished run: resumed
    if continues is not None and continues(out):
        return out
    if status:
        raise errors.ConfigError(
            f"{out} holds an unfinished run without a checkpoint ({status}): it cannot be resumed; {overwrite_hint} "
            "to replace it"
        )
    more = ", or a larger --epochs to continue it" if (out / results.FINAL_STATE).is_file() else ""
    raise errors.ConfigError(f"{out} holds a finished run; {overwrite_hint} to replace it{more}")


def _status(out: pathlib.Path) -> str:
    """`outcome.run_status` of the folder's results ("" if finished or unreadable: the run
    itself then reports what it finds)."""
    try:
        return outcome.run_status(results.load_results(out))
    except errors.DataError:
        return ""
