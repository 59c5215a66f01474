"""How a study's trials run: the registry of runners by name (``--parallel NAME``).

A package of its own above ``trials/`` and ``trials/batched/``, so that those two never import
each other's caller. The contract every runner keeps is :class:`~.base.Runner`
(lrscope.trials.runners.base); each runner is a module with its options:

* ``none``: one after another in this process (:mod:`.none`; the only one for ColossalAI);
* ``batched``: all schedules of a seed in one vmapped model (:mod:`.batched`);
* ``processes``: a pool of spawned workers on the CPU (:mod:`.processes`);
* ``ray``: one Ray task per trial, on a local or joined cluster (:mod:`.ray`); never chosen
  by ``auto``;
* ``auto``: measures none, batched and processes here and runs the fastest (:mod:`.auto`).

Every runner trains each trial on the torch threads :mod:`.threads` sets. A new runner is a
module (a class keeping the contract, with a ``from_settings`` that builds its options), an
entry here (:func:`register`), and its options' settings if it has any.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.trials.runners import processes, ray
from lrscope.trials.runners.auto import AutoRunner
from lrscope.trials.runners.base import EvalHook, Hooks, Job, Runner, Started, TrialSetup
from lrscope.trials.runners.batched import BatchedRunner
from lrscope.trials.runners.none import SequentialRunner
from lrscope.trials.runners.processes import ProcessesRunner
from lrscope.trials.runners.ray import RayOptions  # Ray itself is imported only to run
from lrscope.trials.runners.threads import ThreadOptions
from lrscope.trials.trial import TrialResult

# make(settings, threads) -> the runner: ``settings`` the study's runner settings by name (the
# config's and the CLI's, e.g. ray_address), ``threads`` the study's torch threads per trial.
RunnerFactory = Callable[[Mapping[str, Any], "int | None"], Runner]


@dataclass(frozen=True)
class Registered:
    """A runner in the registry: how to make it, and the settings it reads (name -> default)."""

    make: RunnerFactory
    settings: Mapping[str, Any] = field(default_factory=dict)


RUNNERS: dict[str, Registered] = {}


def register(name: str, make: RunnerFactory, settings: Mapping[str, Any] | None = None) -> None:
    """Add the runner ``name`` (``--parallel name``); ``settings``: the runner settings only it
    reads, with their defaults."""
    RUNNERS[name] = Registered(make, dict(settings or {}))


register("none", lambda settings, threads: SequentialRunner(ThreadOptions(threads)))
register("batched", lambda settings, threads: BatchedRunner(ThreadOptions(threads)))
register("processes", lambda settings, threads: ProcessesRunner(ThreadOptions(threads)))
register("ray", ray.RayRunner.from_settings, ray.SETTINGS)
register("auto", lambda settings, threads: AutoRunner(ThreadOptions(threads)))


def runner_names() -> tuple[str, ...]:
    """The names ``--parallel`` accepts, in the registry's order."""
    return tuple(RUNNERS)


def runner_settings() -> tuple[str, ...]:
    """Every runner setting's name (e.g. ray_address): what a front end passes through."""
    return tuple(dict.fromkeys(key for entry in RUNNERS.values() for key in entry.settings))


def check_name(name: str) -> str:
    """``name`` when a runner has it; else InputError, one line listing the names."""
    if name not in RUNNERS:
        raise InputError(f"parallel={name!r} is not one of {', '.join(RUNNERS)}")
    return name


def make_runner(name: str, settings: Mapping[str, Any] | None = None,
                threads: int | None = None) -> Runner:
    """The runner ``name`` with its options built from ``settings`` (by name; None values are
    unset) and ``threads``. InputError, before any work: an unknown name, a setting that
    another runner reads given a value of its own (it would be silently unused), the runner's
    own refusals (its options' values, a missing extra)."""
    given = {key: value for key, value in (settings or {}).items() if value is not None}
    chosen = RUNNERS[check_name(name)]
    for other, entry in RUNNERS.items():
        unused = [key for key in entry.settings if key not in chosen.settings
                  and key in given and given[key] != entry.settings[key]]
        if unused:
            raise InputError(
                f"{other}: {', '.join(f'{key}={given[key]!r}' for key in unused)} given but "
                f"parallel is {name!r}; add --parallel {other} (parallel=\"{other}\") or drop it")
    return chosen.make(given, threads)


def held(runner: Runner) -> contextlib.AbstractContextManager[None]:
    """What ``runner`` starts for each batch of trials and ends after it, held instead across
    the batches run inside (a predict study's phases, a confirmation after the study): a local
    Ray cluster or a pool of processes, started by the first batch that needs it, takes seconds
    to start against a fraction of a second for a predict study's one-run batch. Nothing for
    the runners that start nothing.

    >>> with held(make_runner("none")):
    ...     pass
    """
    if isinstance(runner, ray.RayRunner):
        return ray.held()
    if isinstance(runner, (ProcessesRunner, AutoRunner)):  # auto may choose processes
        return processes.held()
    return contextlib.nullcontext()


def run_jobs(jobs: Sequence[Job], setup: TrialSetup, name: str, engine: Engine,
             on_eval: EvalHook | None = None, threads: int | None = None,
             settings: Mapping[str, Any] | None = None) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs`` on the runner ``name`` (checked ``on`` the engine), yielding each with its
    result as soon as it is done: for scripts and benchmarks; the study drives its runner
    itself (lrscope.study.run)."""
    runner = make_runner(name, settings, threads).on(engine)
    yield from runner.run(jobs, setup, engine, Hooks(on_eval=on_eval))


__all__ = ["Hooks", "Job", "RayOptions", "Registered", "Runner", "Started", "TrialSetup",
           "check_name", "held", "make_runner", "register", "run_jobs", "runner_names",
           "runner_settings"]
