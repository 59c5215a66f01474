"""How a study's pending trials are run: one after another, in worker processes, or batched.

Every mode gives each trial exactly :func:`lrscope.trials.trial.run_trial`'s semantics; they differ
only in where the arithmetic happens. Results come back to the caller (the study), which alone
writes the store, so workers never contend for the SQLite file.

* ``none``: in this process, through the study's engine (the only mode for ColossalAI).
* ``processes``: a pool of spawned workers, one trial each, one torch thread per worker.
* ``batched``: all schedules of one seed in one vmapped model (:mod:`lrscope.trials.batched.run`).
* ``ray``: one Ray task per trial, on a local or joined cluster (:mod:`lrscope.trials.runners.ray`);
  never chosen by ``auto``.
* ``auto``: batched where the model and optimizer allow it (no BatchNorm or dropout; SGD,
  Adam or AdamW), else processes on a multi-core machine, else none.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lrscope.data.tasks.base import Task
from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.schedules import Schedule
from lrscope.trials.trial import (
    Evaluation,
    OptimizerFactory,
    TrainOptions,
    TrialData,
    TrialResult,
    run_trial,
    sgd,
)

if TYPE_CHECKING:
    from lrscope.trials.runners.ray import RayOptions

PARALLEL_MODES = ("none", "batched", "processes", "ray", "auto")


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a study shares: the task, the budget and the optimizer factory."""

    task: TrialData
    steps: int
    eval_every: int
    make_optimizer: OptimizerFactory = dataclasses.field(default_factory=sgd)
    options: TrainOptions = dataclasses.field(default_factory=TrainOptions)

    def run(self, job: Job, engine: Engine | None = None,
            on_eval: Callable[[Evaluation], None] | None = None) -> TrialResult:
        return run_trial(self.task, job.schedule, seed=job.seed, steps=self.steps,
                         eval_every=self.eval_every, make_optimizer=self.make_optimizer,
                         engine=engine, on_eval=on_eval, options=self.options)


@dataclass(frozen=True)
class Job:
    key: str
    label: str
    schedule: Schedule
    seed: int
    index: int


def resolve_mode(mode: str, plan: TrialSetup, engine: Engine) -> str:
    """The concrete mode for ``mode`` (``auto`` decided here); errors say what to use instead."""
    if mode not in PARALLEL_MODES:
        raise InputError(f"parallel: {mode!r} is not one of {', '.join(PARALLEL_MODES)}")
    if mode == "ray":
        from lrscope.trials.runners.ray import require_ray

        require_ray()
    if engine.name != "local":
        if mode in ("batched", "processes", "ray"):
            raise InputError(f"parallel: {mode!r} runs on the local engine only; with "
                             f"--engine {engine.name} use --parallel none (ranks share each trial)")
        return "none"
    if mode == "processes" and engine.device.type != "cpu":
        raise InputError(f"parallel: 'processes' runs on the CPU only, not on {engine.device}; "
                         "use --parallel none or batched on a GPU")
    return mode


def _fallback(plan: TrialSetup, engine: Engine) -> str:
    cores = (os.cpu_count() or 1) > 1 and engine.device.type == "cpu"
    return "processes" if cores and _picklable(plan) is None else "none"


def _picklable(plan: TrialSetup) -> str | None:
    """None when ``plan`` can cross a process boundary, else why not."""
    try:
        pickle.dumps(plan)
    except Exception as err:  # closures and lambdas cannot be pickled
        return str(err)
    return None


def run_jobs(jobs: Sequence[Job], plan: TrialSetup, mode: str, engine: Engine,
             on_eval: Callable[[Job, Evaluation], None] | None = None,
             ray: RayOptions | None = None) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs``, yielding each with its result as soon as it is done.

    ``on_eval(job, evaluation)`` hears each evaluation as it happens (for a progress display)
    in the in-process modes; worker processes report only their results. ``ray``: the cluster
    and each trial's resources in mode ``ray`` (None: the defaults).
    """
    if not jobs:
        return
    if mode == "none":
        for job in jobs:
            hear = None if on_eval is None else functools.partial(on_eval, job)
            yield job, plan.run(job, engine, hear)
    elif mode == "processes":
        yield from _in_processes(jobs, plan)
    elif mode == "ray":  # imported here: Ray is an optional extra
        from lrscope.trials.runners.ray import RayOptions, run_on_ray

        yield from run_on_ray(jobs, plan, engine.device, ray or RayOptions())
    elif mode in ("batched", "auto"):
        groups = _batched(jobs, plan, engine.device, on_eval)
        if mode == "auto":
            # The batched runner refuses a model or optimizer it cannot run exactly (BatchNorm,
            # dropout, RMSprop, ...) before it computes anything: then fall back.
            try:
                first = next(groups)
            except InputError:
                yield from run_jobs(jobs, plan, _fallback(plan, engine), engine, on_eval)
                return
            except StopIteration:
                return
            yield from first
        for group in groups:
            yield from group
    else:
        raise InputError(f"parallel: {mode!r} is not one of {', '.join(PARALLEL_MODES)}")


def _batched(jobs: Sequence[Job], plan: TrialSetup, device: torch.device,
             on_eval: Callable[[Job, Evaluation], None] | None,
             ) -> Iterator[list[tuple[Job, TrialResult]]]:
    """Per seed, all its schedules in one vmapped model; one list of results per seed."""
    from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE
    from lrscope.trials.batched.run import run_trials_batched

    if not isinstance(plan.task, Task):  # refused before anything runs: auto falls back
        raise InputError("data: batched runs read a lrscope Task's in-memory tensors; "
                         f"{UNSUPPORTED_ADVICE}")
    if not plan.options.plain:  # refused before anything runs, so that auto falls back
        raise InputError("options: batched runs train in full precision without clipping or "
                         f"accumulation; {UNSUPPORTED_ADVICE}")
    for seed in dict.fromkeys(job.seed for job in jobs):
        group = [job for job in jobs if job.seed == seed]

        def hear(i: int, ev: Evaluation, group: list[Job] = group) -> None:
            if on_eval is not None:
                on_eval(group[i], ev)

        results = run_trials_batched(plan.task, [job.schedule for job in group], seed=seed,
                                     steps=plan.steps, eval_every=plan.eval_every,
                                     make_optimizer=plan.make_optimizer, device=device,
                                     on_eval=hear)
        yield list(zip(group, results, strict=True))


def _in_processes(jobs: Sequence[Job], plan: TrialSetup) -> Iterator[tuple[Job, TrialResult]]:
    problem = _picklable(plan)
    if problem is not None:
        raise InputError(f"parallel: 'processes' needs a picklable task and optimizer "
                         f"({problem}); use module-level functions, or --parallel none")
    workers = min(len(jobs), os.cpu_count() or 1)
    # spawn, not fork: a forked child of a process that already ran OpenMP can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        futures = {pool.submit(_run_job, plan, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_job(plan: TrialSetup, job: Job) -> TrialResult:
    return plan.run(job)
