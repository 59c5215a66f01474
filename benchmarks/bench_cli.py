"""How long `lrscope find --task digits` takes end to end, against its floor.

Each command runs in a fresh interpreter, as a user types it:

* ``floor``: ``import torch`` and building one ``torch.optim.SGD`` (whose first construction
  imports ``torch._dynamo``): what any PyTorch script pays before it trains;
* ``version``: ``lrscope --version`` (the command's own start-up);
* ``find``: ``lrscope find --task digits --quiet`` (range test, table, two figures,
  TensorBoard events, result.json).

Repetitions alternate (floor, version, find, find, version, floor, ...) so that machine load
hits all alike; medians and minima are printed, and find's ratio to the floor (target: find
<= 4 s wall on 2 cores). ``--other SRC`` adds ``find`` run from another source tree (e.g. a
worktree of an older commit, put first on PYTHONPATH), measured in the same alternation.

    .venv/bin/python benchmarks/bench_cli.py [--reps 5] [--other ../old/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = ("import torch\n"
         "torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)\n")


def commands(out: Path, other: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    lrscope = [sys.executable, "-m", "lrscope"]
    find = ["find", "--task", "digits", "--quiet", "--out"]
    cmds = {
        "floor": ([sys.executable, "-c", FLOOR], {}),
        "version": ([*lrscope, "--version"], {}),
        "find": ([*lrscope, *find, str(out / "find")], {}),
    }
    if other is not None:
        cmds["find-other"] = ([*lrscope, *find, str(out / "other")], {"PYTHONPATH": other})
    return cmds


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **env})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--other", metavar="SRC", help="another tree's src/ to time find from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp), args.other)
        names = list(cmds)
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm the disk cache (and matplotlib's font cache) first
            timed(*cmds[name])
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else reversed(names):
                times[name].append(timed(*cmds[name]))
    for name in names:
        values = times[name]
        print(f"{name:>8}: median {statistics.median(values):.2f} s, min {min(values):.2f} s "
              f"({len(values)} runs)")
    ratio = statistics.median(times["find"]) / statistics.median(times["floor"])
    print(f"find / floor (medians): {ratio:.2f}; find minus floor: "
          f"{statistics.median(times['find']) - statistics.median(times['floor']):.2f} s")
    if "find-other" in times:
        pairs = [a / b for a, b in zip(times["find"], times["find-other"], strict=True)]
        print(f"find / find-other: median of pairs {statistics.median(pairs):.2f}, "
              f"ratio of minima {min(times['find']) / min(times['find-other']):.2f}")


if __name__ == "__main__":
    main()
