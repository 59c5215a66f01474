"""A study on a busy machine (issue 19 item 5): each ``--parallel`` mode idle, then beside one
CPU-bound busy loop per usable core, back to back; the ratio contended / idle per mode.

Runs ``lrscope compare`` (the digits default suite) in a fresh interpreter for each timing, with
``--src`` first on its path: this checkout's ``src`` (after) or another one's, e.g. main's
(before). The busy loops are started here and killed after each contended run.

    .venv/bin/python benchmarks/contention.py [--src DIR] [--seeds 2] [--steps 150]
        [--modes none,batched,processes,auto] [--timeout 600]

Target: no mode slower than 3x its idle time. On a machine that others use too, "idle" is only
this benchmark's own load: compare the ratios, which are measured back to back.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _busy() -> None:
    while True:
        pass


def cores() -> int:
    sys.path.insert(0, str(HERE / "src"))
    from lrscope.trials.runners.threads import usable_cores

    return usable_cores()


def timed(src: str, mode: str, seeds: int, steps: int, timeout: float) -> float:
    """Seconds for one study in a fresh interpreter (inf: past ``timeout``)."""
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lrscope", "compare", "--task", "digits", "--seeds",
               str(seeds), "--steps", str(steps), "--parallel", mode, "--out", out]
        start = time.perf_counter()
        try:
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.perf_counter() - start


def contended(src: str, mode: str, seeds: int, steps: int, timeout: float, loops: int) -> float:
    """The same study with ``loops`` busy-loop processes beside it (killed after)."""
    context = multiprocessing.get_context("spawn")
    busy = [context.Process(target=_busy, daemon=True) for _ in range(loops)]
    for process in busy:
        process.start()
    try:
        return timed(src, mode, seeds, steps, timeout)
    finally:
        for process in busy:
            process.kill()
            process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(HERE / "src"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--modes", default="none,batched,processes,auto")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    loops = cores()
    print("$ " + shlex.join(["python", "benchmarks/contention.py", *sys.argv[1:]]))
    print(f"src {args.src}; {loops} usable cores, {loops} busy loop(s) when contended; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print("| mode | idle (s) | contended (s) | ratio |\n|---|---|---|---|")
    for mode in args.modes.split(","):
        idle = timed(args.src, mode, args.seeds, args.steps, args.timeout)
        busy = contended(args.src, mode, args.seeds, args.steps, args.timeout, loops)
        print(f"| {mode} | {idle:.1f} | {busy:.1f} | {busy / idle:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
