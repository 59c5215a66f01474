"""``--parallel auto``: time a few steps of each mode on this machine and model, run the fastest
that is clearly faster than ``none``.

Before the study's trials, each candidate mode trains a throwaway trial for
``PROBE_WARMUP + PROBE_STEPS`` steps (2 + 8) at a small constant LR, evaluating on one example
only, and the last ``PROBE_STEPS`` are timed. Every probe runs ``PROBE_ROUNDS`` (3) times, the
modes taking turns, and the fastest round counts: another job on the machine only ever slows a
probe down, so the minimum is the measurement least spoiled by it (one probe each swung 30x
between runs on a shared box, issue 19):

* ``none``: one trial in this process on the study's threads (1 on the CPU unless ``threads``
  says more: :mod:`lrscope.trials.runners.threads`) and, when no ``threads`` was given, also on
  all usable cores, a candidate of its own;
* ``batched``: K trials in one vmapped model, K the largest seed group (the trials that batch
  together), on the threads ``none`` settled on; only where the batched runner accepts the model,
  optimizer and options;
* ``processes``: the pool's time is ``none``'s step time on the per-worker threads for each wave
  of ``workers`` trials at once (:func:`~lrscope.trials.runners.processes.pool_shape`), plus
  ``WORKER_START_S`` to start the workers and the time to ship them the task. Estimated, not a
  pool measured: starting one costs seconds.

Each mode's projected time for the study's trial steps follows (:func:`project`; evaluations
cost about the same in every mode and are left out). :func:`decide` keeps ``none`` on the
study's threads (the simplest: it starts nothing and cannot oversubscribe) unless another
candidate is projected at least ``MARGIN`` (1.3x) faster, then takes the fastest of those: a
projection from a few steps on a shared machine is not exact, and a wrong switch costs more
than the margin (``batched`` at 136 s against ``none``'s 8.5 s, issue 19). The choice, with every
measurement and the reason, is one line (:attr:`Choice.line`) and a dict for the study's files
(:meth:`Choice.to_dict`).

Small studies are not measured: when the probes would cost more than ``MEASURE_SHARE`` (10%) of
the study's trial steps (a batched probe step counted as K trial steps), auto runs ``none``,
which starts nothing and whose cost a small study cannot win back. Where only one mode can run
(one core and no batching, a GPU and a model that does not batch), it is chosen unmeasured.

Measuring changes no result: the probes build their own models, run inside
:func:`lrscope.rng.preserved_rng`, and the torch thread count is put back.

>>> fast = Candidate("none", 0.010, 1, 24.0, "1 thread")
>>> slow = Candidate("batched", 0.009, 8, 21.6, "K=8")
>>> decide([slow, fast]).mode  # 1.11x faster: within the margin
'none'
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrscope.data.tasks.base import Task
from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.rng import preserved_rng
from lrscope.schedules.constant import Constant
from lrscope.trials.runners.base import NO_HOOKS, Hooks, Job, Runner, Started, TrialSetup
from lrscope.trials.runners.batched import BatchedRunner, batched_refusal
from lrscope.trials.runners.none import SequentialRunner
from lrscope.trials.runners.processes import ProcessesRunner, pickled_setup, pool_shape
from lrscope.trials.runners.threads import (
    ThreadOptions,
    in_process_threads,
    torch_threads,
    usable_cores,
)
from lrscope.trials.trial import TrialData, TrialResult, run_trial, seeded_model

PROBE_WARMUP = 2  # untimed steps first: the first ones allocate and warm caches
PROBE_STEPS = 8
PROBE_ROUNDS = 3  # each probe's fastest of 3: noise from other jobs only ever adds time
MARGIN = 1.3  # another mode must be projected this much faster than none to be chosen
MEASURE_SHARE = 0.10
WORKER_START_S = 3.0  # spawn a worker, import torch and lrscope (2.4 s measured on 2 cores)
PROBE_LR = 1e-4  # the probes' LR: the step's cost does not depend on it; small never diverges
ORDER = ("none", "batched", "processes")  # a tie goes to the simpler mode


def _threads_text(threads: int) -> str:
    return f"{threads} thread" + ("s" if threads > 1 else "")


@dataclass(frozen=True)
class Candidate:
    """One mode, measured: ``step_s`` seconds per step of ``trials_per_step`` trials at once
    (K for batched) on ``threads`` torch threads (per worker), and the study's projected time
    ``total_s``."""

    mode: str
    step_s: float
    trials_per_step: int
    total_s: float
    detail: str  # how it was measured: "2 threads", "K=8", "1 thread, 2 workers, +3.2 s start"
    threads: int = 1

    def describe(self) -> str:
        """E.g. ``batched 14.0 ms/step (K=8, 1.75 per trial)``."""
        per = "" if self.trials_per_step == 1 else (
            f", {self.step_s / self.trials_per_step * 1e3:.3g} per trial")
        return f"{self.mode} {self.step_s * 1e3:.3g} ms/step ({self.detail}{per})"


@dataclass(frozen=True)
class Choice:
    """What auto chose and why (see the module docstring): ``workers`` x ``threads`` torch
    threads each (one worker: this process)."""

    mode: str
    why: str
    candidates: tuple[Candidate, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # mode -> why it could not run
    workers: int = 1
    threads: int = 1

    @property
    def measured(self) -> bool:
        return bool(self.candidates)

    @property
    def line(self) -> str:
        """One line: the mode, why, every measurement, and the modes that could not run."""
        shape = (f"{self.workers} workers x " if self.mode == "processes" else ""
                 ) + _threads_text(self.threads)
        parts = [f"parallel auto: {self.mode} ({shape}): {self.why}"]
        if self.candidates:
            parts.append("measured " + ", ".join(c.describe() for c in self.candidates))
        parts += [f"{mode} not possible ({reason})" for mode, reason in self.refused.items()]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """For the study's files: the choice, the measurements, the refusals."""
        return {"mode": self.mode, "line": self.line, "measured": self.measured,
                "workers": self.workers, "threads": self.threads,
                "candidates": [dataclasses.asdict(c) for c in self.candidates],
                "refused": dict(self.refused)}


def decide(candidates: Sequence[Candidate], refused: dict[str, str] | None = None,
           workers: int = 1, margin: float = MARGIN) -> Choice:
    """``none`` on the fewest threads measured, unless a candidate is projected ``margin`` times
    faster: then the fastest such (a tie: the simpler mode). Without a ``none`` candidate, the
    fastest.

    >>> none, procs = Candidate("none", .01, 1, 10.0, ""), Candidate("processes", .01, 1, 7.0, "")
    >>> decide([none, procs]).mode, decide([none, procs], margin=1.5).mode
    ('processes', 'none')
    """
    ranked = sorted(candidates, key=lambda c: (c.total_s, ORDER.index(c.mode), c.threads))
    base = min((c for c in candidates if c.mode == "none"), key=lambda c: c.threads, default=None)
    clear = [c for c in ranked if base is None or c is base or base.total_s >= margin * c.total_s]
    best = clear[0]
    others = ", ".join(f"{c.mode} ({_threads_text(c.threads)}) {c.total_s:.3g} s"
                       for c in ranked if c is not best)
    vs = f" vs {others}" if others else ""
    if base is None or (best is base and len(ranked) == 1):
        why = f"fastest projected, {best.total_s:.3g} s{vs}"
    elif best is base:
        why = (f"no mode projected {margin:g}x faster than none's {base.total_s:.3g} s{vs} "
               "(the margin over measuring noise)")
    else:
        why = (f"fastest projected, {best.total_s:.3g} s, {base.total_s / best.total_s:.2g}x "
               f"none's {base.total_s:.3g} s (over the {margin:g}x margin){vs}")
    return Choice(best.mode, why, tuple(candidates), dict(refused or {}),
                  workers if best.mode == "processes" else 1, best.threads)


def project(trials: int, steps: int, groups: int, *, sequential_s: float, threads: int = 1,
            more_threads: tuple[int, float] | None = None,
            batched: tuple[int, float] | None = None, batched_threads: int = 1,
            worker_s: float | None = None, workers: int = 1, start_s: float = WORKER_START_S,
            ) -> list[Candidate]:
    """The candidates' projected times for ``trials`` trials of ``steps`` steps in ``groups``
    seed groups, from measured step times: ``sequential_s`` on ``threads`` threads,
    ``more_threads`` ``(T, seconds per step)`` on T, ``batched`` ``(K, seconds per step)`` on
    ``batched_threads``, ``worker_s`` a worker's step (on ``threads``).

    >>> [round(c.total_s, 6) for c in project(4, 100, 2, sequential_s=0.01, batched=(2, 0.012),
    ...                                       worker_s=0.011, workers=2, start_s=3.0)]
    [4.0, 2.4, 5.2]
    """
    out = [Candidate("none", sequential_s, 1, trials * steps * sequential_s,
                     _threads_text(threads), threads)]
    if more_threads is not None:
        many, step_s = more_threads
        out.append(Candidate("none", step_s, 1, trials * steps * step_s, _threads_text(many),
                             many))
    if batched is not None:
        k, step_s = batched
        out.append(Candidate("batched", step_s, k, groups * steps * step_s,
                             f"K={k}, {_threads_text(batched_threads)}", batched_threads))
    if worker_s is not None:
        waves = math.ceil(trials / workers)
        out.append(Candidate("processes", worker_s, 1, start_s + waves * steps * worker_s,
                             f"{_threads_text(threads)}; {worker_s / workers * 1e3:.3g} per trial "
                             f"with {workers} workers, +{start_s:.2g} s start", threads))
    return out


def choose(jobs: Sequence[Job], plan: TrialSetup, engine: Engine,
           threads: int | None = None) -> Choice:
    """Measure the modes that can run ``jobs`` here and decide (see the module docstring);
    ``threads``: the torch threads per trial asked for (None: the rule's default)."""
    cores = usable_cores()
    base = in_process_threads(threads, engine.device.type, cores)
    groups = [sum(1 for job in jobs if job.seed == seed)
              for seed in dict.fromkeys(job.seed for job in jobs)]
    k = max(groups, default=1)
    workers, _ = pool_shape(len(jobs), cores, threads)
    refused: dict[str, str] = {}
    if (reason := _batched_refusal(plan, engine)) is not None or k < 2:
        refused["batched"] = reason or "one trial per seed"
    blob: bytes | None = None
    ship_s = 0.0
    if engine.device.type != "cpu":
        refused["processes"] = f"CPU only, not {engine.device}"
    elif workers < 2:
        refused["processes"] = "one core" if cores < 2 else "one trial"
    else:
        try:
            dumped = time.perf_counter()
            blob = pickled_setup(plan)
            ship_s = 2 * (time.perf_counter() - dumped)  # pickled here, unpickled in each worker
        except InputError as err:
            refused["processes"] = _short(err)
    del blob
    modes = [m for m in ORDER if m not in refused]
    # all the cores for one trial: a candidate when no threads were asked for (CPU only)
    more = cores if threads is None and engine.device.type == "cpu" and cores > base else None
    if len(modes) == 1 and more is None:
        return Choice(modes[0], "the only mode that can run here", (), refused, threads=base)
    probe_units = PROBE_ROUNDS * (PROBE_WARMUP + PROBE_STEPS) * (
        1 + int(more is not None) + (k if "batched" in modes else 0))
    trial_steps = len(jobs) * plan.steps
    if probe_units > MEASURE_SHARE * trial_steps:
        return Choice("none", f"not measured: a small study ({trial_steps} trial steps; "
                      f"measuring costs {probe_units}, over {MEASURE_SHARE:.0%})", (), refused,
                      threads=base)
    seed = jobs[0].seed
    sequential = _fastest({t: (lambda: _time_probe(plan, seed, engine))
                           for t in (base, more) if t is not None})
    batched_threads = more if more is not None and (
        sequential[more] * MARGIN <= sequential[base]) else base
    batched = None
    if "batched" in modes:
        try:
            batched = (k, _fastest({batched_threads: lambda: _time_batched(
                plan, seed, engine, k)})[batched_threads])
        except InputError as err:  # refused before training (optimizer, memory, dropout)
            refused["batched"] = _short(err)
    candidates = project(len(jobs), plan.steps, len(groups), sequential_s=sequential[base],
                         threads=base,
                         more_threads=None if more is None else (more, sequential[more]),
                         batched=batched, batched_threads=batched_threads,
                         worker_s=sequential[base] if "processes" in modes else None,
                         workers=workers, start_s=WORKER_START_S + ship_s)
    return decide(candidates, refused, workers)


# The runners auto chooses among (never Ray: a cluster is asked for, not guessed), by mode.
CHOOSABLE: dict[str, Callable[[ThreadOptions], Runner]] = {
    "none": SequentialRunner, "batched": BatchedRunner, "processes": ProcessesRunner}
assert tuple(CHOOSABLE) == ORDER


@dataclass(frozen=True)
class AutoRunner:
    """Measures, then runs the jobs on the runner :func:`choose` picks, announcing the choice
    and why through ``Hooks.on_start`` (lrscope.trials.runners.base.Runner)."""

    options: ThreadOptions = field(default_factory=ThreadOptions)
    name = "auto"
    sequential = False

    def on(self, engine: Engine) -> Runner:
        """Itself on the local engine; ``none`` on a distributed one (its ranks share each
        trial: nothing to choose)."""
        return self if engine.name == "local" else SequentialRunner(self.options)

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        if not jobs:
            return
        choice = choose(jobs, setup, engine, self.options.threads)
        chosen = CHOOSABLE[choice.mode](ThreadOptions(choice.threads)).on(engine)

        def started(how: Started) -> None:  # the chosen runner's shape, with auto's why
            hooks.start(dataclasses.replace(how, why=choice.line, facts=choice.to_dict()))

        yield from chosen.run(jobs, setup, engine, dataclasses.replace(hooks, on_start=started))


def _fastest(probes: dict[int, Callable[[], float]]) -> dict[int, float]:
    """Each probe's fastest of ``PROBE_ROUNDS`` runs on its torch threads (the key), the probes
    taking turns so that a burst of load elsewhere hits them alike."""
    best = {threads: math.inf for threads in probes}
    for _ in range(PROBE_ROUNDS):
        for threads, probe in probes.items():
            with torch_threads(threads):
                best[threads] = min(best[threads], probe())
    return best


def _short(err: Exception) -> str:
    """An InputError's reason without its advice (what comes after the first '; ')."""
    return str(err).split("; ")[0]


def _batched_refusal(plan: TrialSetup, engine: Engine) -> str | None:
    """Why the batched runner would refuse this plan before it runs (None: it may accept it)."""
    from lrscope.trials.batched.run import check_batchable

    reason = batched_refusal(plan)
    if reason is not None:
        return _short(InputError(reason))
    with preserved_rng():
        try:
            check_batchable(seeded_model(plan.task, 0, engine.device))
        except InputError as err:
            return _short(err)
    return None


def _probe_task(task: TrialData) -> TrialData:
    """``task`` evaluating on one example (a probe times training steps, not evaluations)."""
    if isinstance(task, Task):
        one = dataclasses.replace(task, test_x=task.test_x[:1], test_y=task.test_y[:1])
        if task.val_x is None or task.val_y is None:
            return one
        return dataclasses.replace(one, val_x=task.val_x[:1], val_y=task.val_y[:1])
    return dataclasses.replace(task, evaluate=None, val_data=None, test_data=None)


def _seconds_per_step(run: Callable[[Callable[[int], None]], float]) -> float:
    """``run(mark)`` calls ``mark(step)`` at each evaluation (after warm-up and at the end) and
    returns its wall time: the timed steps' mean time (the whole run's if it stopped early)."""
    stamps: dict[int, float] = {}
    wall = run(lambda step: stamps.__setitem__(step, time.perf_counter()))
    end = PROBE_WARMUP + PROBE_STEPS
    if PROBE_WARMUP in stamps and end in stamps:
        return (stamps[end] - stamps[PROBE_WARMUP]) / PROBE_STEPS
    return wall / end


def _time_probe(plan: TrialSetup, seed: int, engine: Engine) -> float:
    task, schedule = _probe_task(plan.task), Constant(lr=PROBE_LR)

    def run(mark: Callable[[int], None]) -> float:
        with preserved_rng():
            return run_trial(task, schedule, seed=seed, steps=PROBE_WARMUP + PROBE_STEPS,
                             eval_every=PROBE_WARMUP, make_optimizer=plan.make_optimizer,
                             engine=engine, on_eval=lambda ev: mark(ev.step),
                             options=plan.options).wall_time
    return _seconds_per_step(run)


def _time_batched(plan: TrialSetup, seed: int, engine: Engine, k: int) -> float:
    from lrscope.trials.batched.run import run_trials_batched

    task = _probe_task(plan.task)
    assert isinstance(task, Task)

    def run(mark: Callable[[int], None]) -> float:
        with preserved_rng():
            results = run_trials_batched(task, [Constant(lr=PROBE_LR)] * k, seed=seed,
                                         steps=PROBE_WARMUP + PROBE_STEPS,
                                         eval_every=PROBE_WARMUP,
                                         make_optimizer=plan.make_optimizer,
                                         device=engine.device, on_eval=lambda i, ev: mark(ev.step))
        return sum(r.wall_time for r in results)
    return _seconds_per_step(run)
