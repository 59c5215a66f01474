"""``--parallel processes``: a study's pending trials in a pool of spawned worker processes.

The task is shipped once per worker, not once per trial: the parent pickles the
:class:`~lrscope.trials.runners.base.TrialSetup` (task with its tensors, budget, optimizer
factory) once, each worker unpickles it in its initializer and keeps it for the pool's life, and
a submitted trial carries only its :class:`~lrscope.trials.runners.base.Job` (key, schedule,
seed). For Fashion-MNIST that is 220 MB per worker instead of 220 MB per trial.

Workers x threads (:func:`pool_shape`): ``cores`` is the CPUs this process may use
(:func:`lrscope.trials.runners.threads.usable_cores`: affinity and cgroup quota); each worker runs
``threads`` torch threads (default 1, :mod:`lrscope.trials.runners.threads`) and
``workers = min(pending trials, cores // threads)``, so the pool never runs more threads than
there are cores. Each worker runs :func:`lrscope.trials.trial.run_trial`, the same
arithmetic as ``--parallel none``: the same results (bitwise on the CPU where a thread count does
not change a reduction's order, as for the tested models).

Workers are spawned, not forked: a forked child of a process that already ran OpenMP can
deadlock. Results come back to the parent, which alone writes the store. The setup travels with
cloudpickle (as Ray ships its tasks), so lambdas, closures and functions of a notebook reach the
workers by value; what cannot be sent at all (an open file, a generator, a lock) is named.

A pool lives for one batch of trials, or, under :func:`held` (a predict study's many small
batches: lrscope.trials.runners.held), for every batch of the same setup.

When a trial fails (or the caller stops listening, or Ctrl-C), the trials that have not started
are cancelled; those already running finish and are yielded (the study records them), then the
first error is raised.

>>> pool_shape(3, cores=2), pool_shape(2, cores=16), pool_shape(8, cores=16, threads=4)
((2, 1), (2, 1), (4, 4))
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import pickle
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import torch

from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.trials.runners.base import NO_HOOKS, Hooks, Job, Started, TrialSetup, local_engine_only
from lrscope.trials.runners.threads import ThreadOptions, trial_threads, usable_cores
from lrscope.trials.trial import TrialResult

# The worker's copy of the study's setup, set once by _start_worker (one per process).
_SETUP: TrialSetup | None = None


def pool_shape(pending: int, cores: int | None = None, threads: int | None = None,
               ) -> tuple[int, int]:
    """``(workers, torch threads per worker)`` for ``pending`` trials on ``cores`` cores, each
    trial on ``threads`` threads (default 1): see the module docstring."""
    cores = usable_cores() if cores is None else max(1, cores)
    threads = trial_threads(threads, cores)
    return max(1, min(pending, cores // threads)), threads


def pickled_setup(plan: TrialSetup) -> bytes:
    """``plan`` pickled, once, for every worker; InputError naming what cannot cross a process."""
    try:
        return _dumps(plan)
    except Exception as err:
        raise InputError(f"parallel: 'processes' cannot send {_unsendable(plan)} to a worker "
                         f"process ({type(err).__name__}: {err}); use --parallel none "
                         "(parallel=\"none\")") from None


def _dumps(thing: object) -> bytes:
    try:
        import cloudpickle  # lambdas and closures by value (Ray's pickler; installed with it)
    except ImportError:  # plain pickle: module-level functions only
        return pickle.dumps(thing, protocol=pickle.HIGHEST_PROTOCOL)
    return bytes(cloudpickle.dumps(thing, protocol=pickle.HIGHEST_PROTOCOL))


def _unsendable(plan: TrialSetup) -> str:
    """The first part of ``plan`` that cannot be pickled, by the name the user gave it."""
    parts: list[tuple[str, object]] = []
    if dataclasses.is_dataclass(plan.task):  # a compare() Problem: the user's own pieces
        parts += [(f.name, getattr(plan.task, f.name)) for f in dataclasses.fields(plan.task)]
    parts += [("the task", plan.task), ("the optimizer factory", plan.make_optimizer),
              ("the training options", plan.options)]
    for name, part in parts:
        try:
            _dumps(part)
        except Exception:
            return name
    return "the study's setup"


def run_in_processes(jobs: Sequence[Job], plan: TrialSetup, blob: bytes | None = None,
                     threads: int | None = None) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs`` in a spawned pool, yielding each with its result as it finishes.

    ``blob``: ``plan`` already pickled (by :func:`pickled_setup`), to skip pickling it again;
    ``threads``: torch threads per worker (see :func:`pool_shape`).
    A failed trial cancels those not started; the running ones are yielded, then it is raised.
    """
    if not jobs:
        return
    blob = pickled_setup(plan) if blob is None else blob
    workers, threads = pool_shape(len(jobs), threads=threads)
    with _pool(plan, blob, workers, threads) as pool:
        futures = {pool.submit(_run_job, job): job for job in jobs}
        waiting = set(futures)
        failure: BaseException | None = None
        try:
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: futures[f].index):
                    error = future.exception()
                    if error is None:
                        yield futures[future], future.result()
                    elif failure is None:
                        failure = error
                        waiting = {f for f in waiting if not f.cancel()}  # not started: dropped
        finally:  # the caller stopped (an error of its own, Ctrl-C): start nothing more
            for future in futures:
                future.cancel()
        if failure is not None:
            raise failure


@dataclass
class _Kept:
    """The pool a :func:`held` keeps (one at a time: a setup left behind, the probes', is not
    coming back, and each worker holds a copy of the task): the setup its workers hold and
    their torch threads."""

    setup: TrialSetup | None = None
    threads: int = 0
    pool: ProcessPoolExecutor | None = None

    def end(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = None


_HELD: list[_Kept] = []  # one per held() open, innermost last


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Batches run inside share a pool, started by the first batch with as many workers as the
    cores allow, until a batch of another setup comes (a predict study's probes have one of
    their own) and shut down when this ends: starting a pool and shipping it the task takes
    seconds, against a fraction of one for a predict study's one-run batch."""
    _HELD.append(_Kept())
    try:
        yield
    finally:
        _HELD.pop().end()


def _same(held: TrialSetup, setup: TrialSetup) -> bool:
    """Whether workers holding ``held`` run ``setup``'s trials as its own would: the same task
    and optimizer factory (the objects the study passes to every batch; pickles of closures
    differ from one pickling to the next), budget and options."""
    return (held.task is setup.task and held.make_optimizer is setup.make_optimizer
            and (held.steps, held.eval_every, held.options)
            == (setup.steps, setup.eval_every, setup.options))


def _start(blob: bytes, workers: int, threads: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(blob, threads))


@contextlib.contextmanager
def _pool(setup: TrialSetup, blob: bytes, workers: int, threads: int,
          ) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` holding ``blob`` (``setup`` pickled), ended after the batch;
    under :func:`held`, the one it keeps when that holds this setup (else one of as many
    workers as the cores allow, in place of the one before, kept for the next batches)."""
    if not _HELD:
        with _start(blob, workers, threads) as pool:
            yield pool
        return
    kept = _HELD[-1]
    if kept.pool is None or kept.setup is None or kept.threads != threads \
            or not _same(kept.setup, setup):
        kept.end()
        most, _ = pool_shape(usable_cores(), threads=threads)
        kept.setup, kept.threads, kept.pool = setup, threads, _start(blob, most, threads)
    try:
        yield kept.pool
    except BrokenProcessPool:  # a worker died: the next batch starts a pool afresh
        kept.end()
        raise


@dataclass(frozen=True)
class ProcessesRunner:
    """The trials in a pool of spawned workers, on the CPU (lrscope.trials.runners.base.Runner);
    ``options.threads`` torch threads per worker (:func:`pool_shape`)."""

    options: ThreadOptions = field(default_factory=ThreadOptions)
    name = "processes"
    sequential = False

    def on(self, engine: Engine) -> ProcessesRunner:
        local_engine_only(self.name, engine)
        if engine.device.type != "cpu":
            raise InputError(f"parallel: 'processes' runs on the CPU only, not on "
                             f"{engine.device}; use --parallel none or batched on a GPU")
        return self

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        if not jobs:
            return
        blob = pickled_setup(setup)  # what cannot reach a worker: refused before it starts
        hooks.start(Started(self.name, *pool_shape(len(jobs), threads=self.options.threads)))
        yield from run_in_processes(jobs, setup, blob, threads=self.options.threads)


def _start_worker(blob: bytes, threads: int) -> None:
    """A worker's initializer: its torch threads, and the setup every trial it runs shares."""
    global _SETUP
    torch.set_num_threads(threads)
    _SETUP = pickle.loads(blob)


def _run_job(job: Job) -> TrialResult:
    assert _SETUP is not None, "the pool's initializer sets the setup"
    return _SETUP.run(job)
