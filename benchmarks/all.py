"""Every benchmark in one command, one markdown table with the device's name.

Run by hand: `python -m benchmarks.all` (add `--quick` for short runs; about 30 minutes in full
on a 2-core CPU). Runs `information_bench`, `estimators_bench`, `gradients_bench` and
`seeds_bench` in turn, each in its own process, and gathers their rows into one table whose
last column names the device (`jax.devices()[0]`), so that the README's performance table can
gain a column per device from the same command.
"""

import argparse
import subprocess
import sys

import jax

BENCHMARKS = ("information_bench", "estimators_bench", "gradients_bench", "seeds_bench")


def rows(module: str, quick: bool) -> list[dict[str, str]]:
    """The markdown rows a benchmark prints, as dicts keyed by its header."""
    command = [sys.executable, "-m", f"benchmarks.{module}", *(["--quick"] if quick else [])]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"case": f"failed: {tail}"}]
    table = [line for line in proc.stdout.splitlines() if line.startswith("|") and "---" not in line]
    if not table:
        return [{"case": "printed no table"}]
    split = lambda line: [cell.strip() for cell in line.strip("|").split("|")]  # noqa: E731
    header = split(table[0])
    return [dict(zip(header, split(line))) for line in table[1:]]


def pick(row: dict[str, str], *words: str) -> str:
    """The first cell whose header starts with one of `words`."""
    for word in words:
        for key, value in row.items():
            if key.startswith(word):
                return value
    return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test of the benchmarks)")
    parser.add_argument("--only", default="", help="comma-separated benchmark modules (default: all)")
    args = parser.parse_args()
    device = jax.devices()[0]
    name = f"{device.platform}: {device.device_kind}"
    print("| benchmark | case | ib_jax s | baseline s | ratio | device |")
    print("| --- | --- | --- | --- | --- | --- |")
    for module in [m for m in args.only.split(",") if m] or BENCHMARKS:
        for row in rows(module, args.quick):
            case = " / ".join(v for k, v in row.items() if k in ("case", "estimator", "task", "S", "epochs") and v)
            ours = pick(row, "ib_jax", "with statistics")
            baseline = pick(row, "numpy", "PyTorch", "without statistics")
            ratio = pick(row, "speed-up", "vs PyTorch", "overhead")
            print(f"| {module} | {case} | {ours} | {baseline} | {ratio} | {name} |", flush=True)


if __name__ == "__main__":
    main()
