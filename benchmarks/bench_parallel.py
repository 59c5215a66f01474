"""A study's trials in each ``--parallel`` mode, vs ``none`` (one after another), and what
``auto`` chooses on this machine.

The same jobs (S schedules x seeds) run through :func:`lrscope.trials.runners.run_jobs` in each
mode; the modes alternate within each repetition, in a rotating order, so that load from other
processes hits all of them alike. Printed: each mode's median wall time and its ratio to
``none`` (< 1: faster), then ``auto``'s one-line choice, what its measuring cost as a share of
``none``'s time, and whether it chose the mode that was fastest here. Before any timing is
trusted, every mode's first train losses (and statuses) are checked against ``none``'s.

    .venv/bin/python benchmarks/bench_parallel.py [--task digits] [--model mlp|lenet]
        [--schedules 8] [--seeds 1] [--steps 300] [--eval-every 100] [--reps 2]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import numpy as np

from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.schedules import parse
from lrscope.trials.runners import Job, TrialSetup, run_jobs
from lrscope.trials.runners.auto import choose
from lrscope.trials.trial import TrialResult

MODES = ("none", "batched", "processes")


def jobs(schedules: int, seeds: int, steps: int) -> list[Job]:
    specs = [f"onecycle(max_lr={0.1 + 0.05 * i:g})" if i % 2 else f"cosine(lr={0.05 + 0.02 * i:g})"
             for i in range(schedules)]
    pairs = [(spec, seed) for spec in specs for seed in range(seeds)]
    return [Job(f"{spec}/seed{seed}", spec, parse(spec, total_steps=steps), seed, i)
            for i, (spec, seed) in enumerate(pairs)]


def timed(mode: str, todo: list[Job], setup: TrialSetup) -> tuple[float, dict[str, TrialResult]]:
    start = time.perf_counter()
    results = {job.key: result for job, result in run_jobs(todo, setup, mode, LocalEngine())}
    return time.perf_counter() - start, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits")
    parser.add_argument("--model", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--schedules", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    print("$ " + shlex.join(["python", "benchmarks/bench_parallel.py", *sys.argv[1:]]))

    options = {"model": args.model} if args.model else {}
    if args.data_dir:
        options["data_dir"] = args.data_dir
    setup = TrialSetup(get_task(args.task, **options), args.steps, args.eval_every)
    todo = jobs(args.schedules, args.seeds, args.steps)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    reference: dict[str, TrialResult] = {}
    for rep in range(args.reps):
        for mode in MODES[rep % len(MODES):] + MODES[:rep % len(MODES)]:
            seconds, results = timed(mode, todo, setup)
            times[mode].append(seconds)
            if mode == "none":
                reference = results
            elif reference:
                for key, ref in reference.items():
                    assert results[key].status == ref.status, (mode, key)
                    # the first steps: vmapped convolutions round differently, and a long run
                    # amplifies any rounding (processes match none to the bit)
                    np.testing.assert_allclose(results[key].train_loss[:10],
                                               ref.train_loss[:10], rtol=1e-4,
                                               err_msg=f"{mode} {key}")
    base = statistics.median(times["none"])
    print(f"{len(todo)} trials x {args.steps} steps, {args.task} {args.model or ''}".rstrip())
    for mode in MODES:
        median = statistics.median(times[mode])
        print(f"  {mode:<10} {median:8.2f} s  {median / base:5.2f}x none")
    start = time.perf_counter()
    choice = choose(todo, setup, LocalEngine())
    measuring = time.perf_counter() - start
    seconds, _ = timed(choice.mode, todo, setup)
    fastest = min(MODES, key=lambda mode: statistics.median(times[mode]))
    print(choice.line)
    print(f"  auto: measuring {measuring:.2f} s ({measuring / base:.1%} of none), then "
          f"{seconds:.2f} s ({seconds / base:.2f}x none); fastest here: {fastest}"
          f"{'' if fastest == choice.mode else ' (auto chose otherwise)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
