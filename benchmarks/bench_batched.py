"""Batched trials: K schedules at one seed run one after another with ``run_trial`` vs at once
with ``run_trials_batched``.

Both produce the same K TrialResults (same initial weights, same batches, same schedules, same
evaluations); the benchmark checks that the final train losses agree before it trusts a timing.
For each K the two ways alternate (sequential, batched, batched, sequential, ...) within one
process so that load from other processes on the machine hits both alike; the ratio printed is
the median of per-pair ratios of wall times (sequential / batched: > 1 means batched is faster).

    .venv/bin/python benchmarks/bench_batched.py [--model mlp|lenet] [--ks 4 8 16] [--steps 300]
        [--eval-every 100] [--reps 3] [--threads 1] [--optimizer sgd|adam]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from lrscope.data.tasks import get_task
from lrscope.schedules import Schedule
from lrscope.schedules.constant import Constant
from lrscope.schedules.cosine import Cosine
from lrscope.schedules.onecycle import OneCycle
from lrscope.schedules.step import ExponentialDecay, StepDecay
from lrscope.trials.batched.run import run_trials_batched
from lrscope.trials.trial import OptimizerFactory, TrialResult, run_trial, sgd


def suite(k: int, scale: float) -> list[Schedule]:
    """K different schedules: the families a study compares, at spread-out LRs."""
    makers: list[Callable[[float], Schedule]] = [
        lambda lr: Constant(lr=lr),
        lambda lr: ExponentialDecay(lr=lr, gamma=0.995),
        lambda lr: OneCycle(max_lr=2 * lr),
        lambda lr: Cosine(lr=lr),
        lambda lr: StepDecay(lr=lr, step_size=100, gamma=0.5),
    ]
    return [makers[i % len(makers)](scale * (0.5 + i / k)) for i in range(k)]


def optimizer(name: str) -> tuple[OptimizerFactory, float]:
    if name == "adam":
        return (lambda model: torch.optim.Adam(model.parameters(), lr=1e-3)), 2e-3
    return sgd(), 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "lenet"])
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: steadier numbers on a shared machine)")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = get_task("digits", model=args.model)
    make_optimizer, scale = optimizer(args.optimizer)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"digits/{args.model}, {args.optimizer}, {args.steps} steps, eval every "
          f"{args.eval_every}, torch threads {torch.get_num_threads()}, {args.reps} pairs per K")
    print(f"{'K':>4} {'sequential s':>13} {'batched s':>10} {'speed-up':>9}  max |dloss| rel")

    def sequential(schedules: list[Schedule]) -> list[TrialResult]:
        return [run_trial(task, s, seed=0, steps=args.steps, eval_every=args.eval_every,
                          make_optimizer=make_optimizer) for s in schedules]

    def batched(schedules: list[Schedule]) -> list[TrialResult]:
        return run_trials_batched(task, schedules, seed=0, steps=args.steps,
                                  eval_every=args.eval_every, make_optimizer=make_optimizer)

    batched(suite(2, scale))  # warm-up: imports, vmap's first trace, allocator
    for k in args.ks:
        schedules = suite(k, scale)
        seq_times, bat_times, ratios = [], [], []
        error = 0.0
        for rep in range(args.reps):
            order = (sequential, batched) if rep % 2 == 0 else (batched, sequential)
            timed: dict[str, float] = {}
            results: dict[str, list[TrialResult]] = {}
            for run in order:
                start = time.perf_counter()
                results[run.__name__] = run(schedules)
                timed[run.__name__] = time.perf_counter() - start
            seq_times.append(timed["sequential"])
            bat_times.append(timed["batched"])
            ratios.append(timed["sequential"] / timed["batched"])
            for a, b in zip(results["sequential"], results["batched"], strict=True):
                error = max(error, float(np.max(np.abs(a.train_loss - b.train_loss)
                                                / np.abs(a.train_loss))))
        print(f"{k:>4} {statistics.median(seq_times):>13.2f} {statistics.median(bat_times):>10.2f}"
              f" {statistics.median(ratios):>8.2f}x  {error:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
