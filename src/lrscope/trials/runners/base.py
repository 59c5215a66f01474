"""The runner contract: what every way of running a study's trials receives, yields and
promises. The registry of runners by name is :mod:`lrscope.trials.runners` (``__init__``).

A runner runs a study's pending trials, each with exactly
:func:`lrscope.trials.trial.run_trial`'s semantics; runners differ only in where the arithmetic
happens (this process, worker processes, one vmapped model, a Ray cluster).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.schedules import Schedule
from lrscope.trials.runners.threads import usable_cores
from lrscope.trials.trial import (
    Evaluation,
    OptimizerFactory,
    TrainOptions,
    TrialData,
    TrialResult,
    run_trial,
    sgd,
)


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
    """One trial to run: its key in the study, its schedule's label, the schedule and seed, and
    its place in the study's order (``index``)."""

    key: str
    label: str
    schedule: Schedule
    seed: int
    index: int


@dataclass(frozen=True)
class Started:
    """How a runner runs the jobs it was given, told once before its first trial: ``workers``
    at once (0: the cluster's to decide) on ``threads`` torch threads each. A runner that chose
    (``auto``) says what and why in ``why`` (one line, for the terminal) and its measurements in
    ``facts`` (for DIR/parallel.json)."""

    mode: str
    workers: int
    threads: int
    why: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For DIR/parallel.json: the facts, then the mode and its shape on this machine."""
        return {**self.facts, "mode": self.mode, "workers": self.workers,
                "threads": self.threads, "usable_cores": usable_cores()}


EvalHook = Callable[[Job, Evaluation], None]


@dataclass(frozen=True)
class Hooks:
    """What a runner tells its caller while it runs (each may be None: nobody listens).

    ``on_start(started)``: once, before the first trial, when there are jobs.
    ``on_eval(job, evaluation)``: each evaluation as it happens, where the runner can hear it
    (the in-process runners; workers in other processes report only their results)."""

    on_eval: EvalHook | None = None
    on_start: Callable[[Started], None] | None = None

    def start(self, started: Started) -> None:
        if self.on_start is not None:
            self.on_start(started)


NO_HOOKS = Hooks()  # nobody listens


class Runner(Protocol):
    """A way to run a study's trials: the contract every runner keeps.

    **Made** by its module from one options object of its own (``ThreadOptions``,
    ``RayOptions``, ...), through the registry (:func:`lrscope.trials.runners.make_runner`),
    which also refuses a name it does not know and settings meant for another runner. A runner
    whose extra is missing (Ray) refuses when it is made: before any work.

    **Checked** with ``on(engine)`` before its first run: the runner that really runs on
    ``engine`` (itself, or the one it stands for there: ``auto`` on a distributed engine is
    ``none``), or InputError, one line saying what to use instead (a runner that needs the
    local engine, the CPU, a cluster that answers).

    **Receives** in ``run``: the pending ``jobs`` (already claimed in the store by the study),
    the :class:`TrialSetup` every trial shares, the engine, and :class:`Hooks`.

    **Yields** ``(job, result)`` for each job, as soon as its result exists, in any order; every
    job exactly once when nothing fails. Results are plain data: the runner never writes the
    store nor any file. The study's driver alone records them (lrscope.study.run), so workers
    never contend for the SQLite file, and a trial run twice (a Ray retry) is recorded once.

    **A failure** of a trial (its own exception: an InputError stays one line) is raised by the
    generator, as it is. Trials already running may finish and be yielded first; trials not
    started are not started.

    **Cancellation**: the caller stopping early (an error of its own, Ctrl-C, closing the
    generator) cancels the trials not yet started; workers, pools and clusters the runner started
    are ended, those it joined are left as found.

    **Threads**: every trial runs on the torch threads
    :mod:`lrscope.trials.runners.threads` sets (never more threads than usable cores at once);
    a runner that trains in this process puts the caller's thread count back when done.

    ``sequential``: True when the study should hand it one job at a time, claiming each just
    before it runs (``none``); else all pending jobs at once.
    """

    name: str
    sequential: bool

    def on(self, engine: Engine) -> Runner: ...

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = ...) -> Iterator[tuple[Job, TrialResult]]: ...


def local_engine_only(name: str, engine: Engine) -> None:
    """InputError unless ``engine`` is the local one (a distributed engine's ranks share each
    trial: they cannot also run trials side by side)."""
    if engine.name != "local":
        raise InputError(f"parallel: {name!r} runs on the local engine only; with "
                         f"--engine {engine.name} use --parallel none (ranks share each trial)")
