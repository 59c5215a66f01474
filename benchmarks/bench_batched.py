"""Batched trials: K schedules at one seed run one after another with ``run_trial`` vs at once
with ``run_trials_batched`` (default), or through every parallel mode (``--modes``).

Every way produces the same K TrialResults (same initial weights, same batches, same schedules,
same evaluations); the benchmark prints how far each way's train losses are from the
sequential ones before anyone trusts a timing. For each K the ways alternate (the order rotates
every repetition) within one process, so that load from other processes on the machine hits all
alike; the ratio printed is the median of per-repetition ratios of wall times, way / sequential
(< 1: faster than the sequential loop). On CUDA every timing ends with a device sync, and the
peak GPU memory of each way is printed.

    .venv/bin/python benchmarks/bench_batched.py [--task digits-mlp|digits-lenet|fashion-lenet5]
        [--device cpu|cuda] [--data-dir DIR] [--ks 8 32] [--steps 300] [--eval-every 100] [--reps 3]
        [--threads 1] [--optimizer sgd|adam] [--modes none batched processes auto] [--tiny]

``--modes`` runs the K trials as one study's jobs through ``run_jobs`` (lrscope's runner) in
each mode named; ``auto`` is timed as a mode too (its own measuring included), and the mode it
chose is printed (its one line, with what it measured) for each K.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from lrscope.data.tasks import get_task
from lrscope.data.tasks.base import Task
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError
from lrscope.schedules import Schedule
from lrscope.schedules.constant import Constant
from lrscope.schedules.cosine import Cosine
from lrscope.schedules.onecycle import OneCycle
from lrscope.schedules.step import ExponentialDecay, StepDecay
from lrscope.trials.batched.run import run_trials_batched
from lrscope.trials.runners import Hooks, Job, Started, TrialSetup, make_runner
from lrscope.trials.trial import OptimizerFactory, TrialResult, run_trial, sgd

# --task name -> (lrscope task, model): the three problems issue 11 measures.
TASKS = {
    "digits-mlp": ("digits", "mlp"),
    "digits-lenet": ("digits", "lenet"),
    "fashion-lenet5": ("fashion-mnist", "lenet5"),
}
Way = Callable[[list[Schedule]], list[TrialResult]]


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


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)


def optimizer(name: str) -> tuple[OptimizerFactory, float]:
    """A picklable factory (``processes`` ships it to workers) and the suite's LR scale."""
    if name == "adam":
        return functools.partial(_adam, lr=1e-3), 2e-3
    return sgd(), 0.05


def load_task(name: str, device: torch.device, tiny: bool, data_dir: str | None) -> Task:
    """The task, cut down for ``--tiny``, moved to ``device`` once (as a study does)."""
    task_name, model = TASKS[name]
    limits = {"limit_train": 512, "limit_test": 256} if tiny else {}
    return get_task(task_name, model=model, data_dir=data_dir, **limits).to(device)


def timed(way: Way, schedules: list[Schedule], device: torch.device) -> tuple[float, list]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    results = way(schedules)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, results


def peak_mb(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f}" if device.type == "cuda" \
        else "-"


def ways(args: argparse.Namespace, task: Task, device: torch.device,
         make_optimizer: OptimizerFactory) -> dict[str, Way]:
    """sequential first, then batched (default) or each of ``--modes`` through run_jobs."""
    engine = LocalEngine(device)
    plan = TrialSetup(task, args.steps, args.eval_every, make_optimizer)

    def sequential(schedules: list[Schedule]) -> list[TrialResult]:
        return [run_trial(task, s, seed=0, steps=args.steps, eval_every=args.eval_every,
                          make_optimizer=make_optimizer, engine=engine) for s in schedules]

    def batched(schedules: list[Schedule]) -> list[TrialResult]:
        return run_trials_batched(task, schedules, seed=0, steps=args.steps,
                                  eval_every=args.eval_every, make_optimizer=make_optimizer,
                                  device=device)

    said: set[int] = set()

    def through(mode: str) -> Way:
        def run(schedules: list[Schedule]) -> list[TrialResult]:
            jobs = [Job(f"k{i}", f"s{i}", s, 0, i) for i, s in enumerate(schedules)]

            def started(how: Started) -> None:  # auto measures inside the timing, as a study
                if how.why and len(jobs) not in said:  # once per K
                    said.add(len(jobs))
                    print(f"  K={len(jobs)}: {how.why}")

            runner = make_runner(mode).on(engine)
            done = dict(runner.run(jobs, plan, engine, Hooks(on_start=started)))
            return [done[job] for job in jobs]
        return run

    if not args.modes:
        return {"sequential": sequential, "batched": batched}
    found: dict[str, Way] = {"sequential": sequential}
    for mode in args.modes:
        try:
            make_runner(mode).on(engine)
        except InputError as err:
            print(f"  {mode}: skipped ({err})")
            continue
        found[mode] = through(mode)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits-mlp", choices=sorted(TASKS))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:i")
    parser.add_argument("--data-dir", help="Fashion-MNIST's IDX files (default: Debian's)")
    parser.add_argument("--ks", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: steadier numbers on a shared machine)")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--modes", nargs="+", choices=["none", "batched", "processes", "auto"],
                        help="time these parallel modes (run_jobs) against sequential")
    parser.add_argument("--tiny", action="store_true",
                        help="512 training examples, 20 steps, 1 repetition: proves it runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.eval_every, args.reps = 20, 10, 1
    torch.set_num_threads(args.threads)
    device = LocalEngine(args.device).device  # an absent CUDA device is one clear line
    task = load_task(args.task, device, args.tiny, args.data_dir)
    make_optimizer, scale = optimizer(args.optimizer)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"{args.task} on {device}, {args.optimizer}, {args.steps} steps, eval every "
          f"{args.eval_every}, torch threads {torch.get_num_threads()}, {args.reps} reps per K")
    compared = ways(args, task, device, make_optimizer)
    compared["batched" if "batched" in compared else "sequential"](suite(2, scale))  # warm-up
    for k in args.ks:
        measure(k, suite(k, scale), compared, args.reps, device)
    return 0


def measure(k: int, schedules: list[Schedule], compared: dict[str, Way], reps: int,
            device: torch.device) -> None:
    """One line per way for K trials: median wall time, median ratio to sequential, peak GPU
    memory and the largest relative difference of its train losses from sequential's."""
    names = list(compared)
    times: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    error = dict.fromkeys(names, 0.0)
    peaks = dict.fromkeys(names, "-")
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]  # rotate: interleaved
        results: dict[str, list[TrialResult]] = {}
        for name in order:
            seconds, results[name] = timed(compared[name], schedules, device)
            times[name].append(seconds)
            peaks[name] = peak_mb(device)
        for name in names:
            ratios[name].append(times[name][-1] / times["sequential"][-1])
            for a, b in zip(results["sequential"], results[name], strict=True):
                n = min(len(a.train_loss), len(b.train_loss))
                rel = np.abs(a.train_loss[:n] - b.train_loss[:n]) / np.abs(a.train_loss[:n])
                error[name] = max(error[name], float(np.nanmax(rel)) if n else 0.0)
    print(f"K={k:<3} {'way':<11} {'median s':>9} {'x sequential':>13} {'peak MB':>8}  "
          "max |dloss| rel")
    for name in names:
        print(f"      {name:<11} {statistics.median(times[name]):>9.2f} "
              f"{statistics.median(ratios[name]):>12.2f}x {peaks[name]:>8}  {error[name]:.1e}")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except InputError as err:  # e.g. --device cuda on a machine without one: one line
        print(f"bench_batched: {err}", file=sys.stderr)
        raise SystemExit(2) from None
