"""How a study's pending trials are run: one after another, in worker processes, or batched.

Every mode gives each trial exactly :func:`lrscope.trials.trial.run_trial`'s semantics; they differ
only in where the arithmetic happens. Results come back to the caller (the study), which alone
writes the store, so workers never contend for the SQLite file.

* ``none``: in this process, through the study's engine (the only mode for ColossalAI).
* ``processes``: a pool of spawned workers, each sent the task once
  (:mod:`lrscope.trials.runners.processes`).
* ``batched``: all schedules of one seed in one vmapped model (:mod:`lrscope.trials.batched.run`).
* ``ray``: one Ray task per trial, on a local or joined cluster (:mod:`lrscope.trials.runners.ray`);
  never chosen by ``auto``.
* ``auto``: the fastest of none, batched and processes on this machine and model, from a few
  timed steps of each (:mod:`lrscope.trials.runners.auto`).

Every mode runs each trial on ``threads`` torch threads (:mod:`lrscope.trials.runners.threads`:
default 1 on the CPU, never more threads than usable cores across workers); the in-process modes
put the caller's thread count back when they are done.

A mode is a name in :data:`PARALLEL_MODES` and a runner in :data:`RUNNERS` (what
:func:`run_jobs` dispatches to): a new mode adds both.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lrscope.data.tasks.base import Task
from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.schedules import Schedule
from lrscope.trials.runners.processes import run_in_processes
from lrscope.trials.runners.threads import in_process_threads, torch_threads
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
    """The mode ``mode`` runs as on ``engine`` (``auto`` stays ``auto`` on the local engine, decided
    by measuring when the trials are known; ``none`` on a distributed one); errors say what to
    use instead."""
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


EvalHook = Callable[[Job, Evaluation], None]
Runner = Callable[[Sequence[Job], TrialSetup, Engine, EvalHook | None],
                  Iterator[tuple[Job, TrialResult]]]


def run_jobs(jobs: Sequence[Job], plan: TrialSetup, mode: str, engine: Engine,
             on_eval: EvalHook | None = None,
             ray: RayOptions | None = None,
             threads: int | None = None) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs``, yielding each with its result as soon as it is done.

    ``on_eval(job, evaluation)`` hears each evaluation as it happens (for a progress display)
    in the in-process modes; worker processes report only their results. ``ray``: the cluster
    and each trial's resources in mode ``ray`` (None: the defaults). ``threads``: torch threads
    per trial (None: the rule's default; Ray's trials take theirs from ``ray``).
    """
    if mode not in RUNNERS:
        raise InputError(f"parallel: {mode!r} is not one of {', '.join(PARALLEL_MODES)}")
    runner = RUNNERS[mode]
    if mode == "ray":  # the one runner with settings of its own
        runner = functools.partial(_ray, options=ray)
    elif mode == "processes":  # and the two whose threads this call cannot set in-process
        runner = functools.partial(_processes, threads=threads)
    elif mode == "auto":
        runner = functools.partial(_auto, threads=threads)
    if not jobs:
        return
    if mode in ("none", "batched"):  # in this process: its threads, the caller's put back after
        with torch_threads(in_process_threads(threads, engine.device.type)):
            yield from runner(jobs, plan, engine, on_eval)
    else:
        yield from runner(jobs, plan, engine, on_eval)


def _sequential(jobs: Sequence[Job], plan: TrialSetup, engine: Engine,
                on_eval: EvalHook | None) -> Iterator[tuple[Job, TrialResult]]:
    for job in jobs:
        hear = None if on_eval is None else functools.partial(on_eval, job)
        yield job, plan.run(job, engine, hear)


def _processes(jobs: Sequence[Job], plan: TrialSetup, engine: Engine,
               on_eval: EvalHook | None, threads: int | None = None,
               ) -> Iterator[tuple[Job, TrialResult]]:
    return run_in_processes(jobs, plan, threads=threads)


def _ray(jobs: Sequence[Job], plan: TrialSetup, engine: Engine, on_eval: EvalHook | None,
         options: RayOptions | None = None) -> Iterator[tuple[Job, TrialResult]]:
    from lrscope.trials.runners.ray import RayOptions, run_on_ray  # Ray is an optional extra

    return run_on_ray(jobs, plan, engine.device, options or RayOptions())


def _auto(jobs: Sequence[Job], plan: TrialSetup, engine: Engine,
          on_eval: EvalHook | None, threads: int | None = None,
          ) -> Iterator[tuple[Job, TrialResult]]:
    """The mode and threads :func:`lrscope.trials.runners.auto.choose` measures fastest (the
    study calls ``choose`` itself, to report and keep the choice)."""
    from lrscope.trials.runners.auto import choose

    choice = choose(jobs, plan, engine, threads)
    return run_jobs(jobs, plan, choice.mode, engine, on_eval, threads=choice.threads)


def batched_refusal(plan: TrialSetup) -> str | None:
    """Why the batched runner refuses ``plan`` whatever its model (None: it may run it)."""
    from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE

    if not isinstance(plan.task, Task):
        return f"data: batched runs read a lrscope Task's in-memory tensors; {UNSUPPORTED_ADVICE}"
    if not plan.options.plain:
        return ("options: batched runs train in full precision without clipping or "
                f"accumulation; {UNSUPPORTED_ADVICE}")
    return None


def _batched(jobs: Sequence[Job], plan: TrialSetup, engine: Engine,
             on_eval: EvalHook | None) -> Iterator[tuple[Job, TrialResult]]:
    """Per seed, all its schedules in one vmapped model."""
    from lrscope.trials.batched.run import run_trials_batched

    refusal = batched_refusal(plan)
    if refusal is not None:  # refused before anything runs
        raise InputError(refusal)
    assert isinstance(plan.task, Task)
    for seed in dict.fromkeys(job.seed for job in jobs):
        group = [job for job in jobs if job.seed == seed]

        def hear(i: int, ev: Evaluation, group: list[Job] = group) -> None:
            if on_eval is not None:
                on_eval(group[i], ev)

        results = run_trials_batched(plan.task, [job.schedule for job in group], seed=seed,
                                     steps=plan.steps, eval_every=plan.eval_every,
                                     make_optimizer=plan.make_optimizer, device=engine.device,
                                     on_eval=hear)
        yield from zip(group, results, strict=True)


RUNNERS: dict[str, Runner] = {"none": _sequential, "batched": _batched,
                              "processes": _processes, "ray": _ray, "auto": _auto}
