"""`python -m experiments.tishby` whose 5th atomic write runs out of disk space halfway through
the file (a checkpoint, in the failed-write test): `python -m tests.disk_full_main FLAGS...`."""

import errno
import sys

from absl import app

from experiments import tishby
from ib_jax import results

_calls, _real = [], results.atomic_write


def _failing(path, write):
    _calls.append(path)
    if len(_calls) == 5:

        def partial(f):
            f.write(b"PK half a file")
            raise OSError(errno.ENOSPC, "No space left on device")

        return _real(path, partial)
    return _real(path, write)


if __name__ == "__main__":
    results.atomic_write = _failing
    sys.argv = ["tishby", *sys.argv[1:]]
    app.run(tishby.main)
