"""Runs a main (`python -m MODULE ARGS...`) for many argument lists, each in a child forked from
one process that has already imported JAX, Flax and ib_jax: the exit status, stdout and stderr
of each are those of its own `python -m` process (the module runs as `__main__` in the child,
its flags defined there), without starting an interpreter and importing JAX per case.

  python -m tests.fork_main MODULE < cases.json > results.json

cases.json: a list of argument lists, or of {"module": OTHER, "args": [...]} for a case that runs
another module, or {"path": FILE, "cwd": FOLDER} for a script run in FOLDER (`runpy.run_path`);
results.json: a list of {"code", "stdout", "stderr"}.
The parent never starts a JAX backend, so forking is safe.
"""

import json
import os
import runpy
import sys
import tempfile

from absl import flags

import experiments.common  # noqa: F401  # the heavy imports, once: jax, flax, optax, ib_jax
import ib_jax.plotting  # noqa: F401  # and matplotlib, which the mains import only to draw


def _child(case: dict, out_fd: int, err_fd: int) -> None:
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    code = 0
    try:
        if "path" in case:
            os.chdir(case.get("cwd", "."))
            sys.argv = [case["path"]]
            runpy.run_path(case["path"], run_name="__main__")
        else:
            sys.argv = [case["module"], *case["args"]]
            runpy.run_module(case["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:  # pylint: disable=broad-except  # a traceback, as the interpreter would print it
        import traceback  # pylint: disable=g-import-not-at-top

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    module = sys.argv[1]
    cases = json.load(sys.stdin)
    assert not flags.FLAGS.is_parsed()
    results = []
    for case in cases:
        case = case if isinstance(case, dict) else {"module": module, "args": case}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(case, out.fileno(), err.fileno())
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            results.append(
                {
                    "code": os.waitstatus_to_exitcode(status),
                    "stdout": out.read().decode(),
                    "stderr": err.read().decode(),
                }
            )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
