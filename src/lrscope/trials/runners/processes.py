"""``--parallel processes``: a study's pending trials in a pool of spawned worker processes.

The task is shipped once per worker, not once per trial: the parent pickles the
:class:`~lrscope.trials.runners.local.TrialSetup` (task with its tensors, budget, optimizer
factory) once, each worker unpickles it in its initializer and keeps it for the pool's life, and
a submitted trial carries only its :class:`~lrscope.trials.runners.local.Job` (key, schedule,
seed). For Fashion-MNIST that is 220 MB per worker instead of 220 MB per trial.

Workers x threads (:func:`pool_shape`): ``cores`` is the CPUs this process may use
(:func:`lrscope.trials.runners.threads.usable_cores`: affinity and cgroup quota); each worker runs
``threads`` torch threads (default 1, :mod:`lrscope.trials.runners.threads`) and
``workers = min(pending trials, cores // threads)``, so the pool never runs more threads than
there are cores. Each worker runs :func:`lrscope.trials.trial.run_trial`, the same
arithmetic as ``--parallel none``: the same results (bitwise on the CPU where a thread count does
not change a reduction's order, as for the tested models).

Workers are spawned, not forked: a forked child of a process that already ran OpenMP can
deadlock. Results come back to the parent, which alone writes the store.

>>> pool_shape(3, cores=2), pool_shape(2, cores=16), pool_shape(8, cores=16, threads=4)
((2, 1), (2, 1), (4, 4))
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

import torch

from lrscope.errors import InputError
from lrscope.trials.runners.threads import trial_threads, usable_cores
from lrscope.trials.trial import TrialResult

if TYPE_CHECKING:  # local.py imports this module at run time; these are its types
    from lrscope.trials.runners.local import Job, TrialSetup

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
    """``plan`` pickled, once, for every worker; InputError when it cannot cross a process."""
    try:
        return pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:  # closures and lambdas cannot be pickled
        raise InputError(f"parallel: 'processes' needs a picklable task and optimizer ({err}); "
                         "use module-level functions, or --parallel none") from None


def run_in_processes(jobs: Sequence[Job], plan: TrialSetup, blob: bytes | None = None,
                     threads: int | None = None) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs`` in a spawned pool, yielding each with its result as it finishes.

    ``blob``: ``plan`` already pickled (by :func:`pickled_setup`), to skip pickling it again;
    ``threads``: torch threads per worker (see :func:`pool_shape`).
    """
    if not jobs:
        return
    blob = pickled_setup(plan) if blob is None else blob
    workers, threads = pool_shape(len(jobs), threads=threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(blob, threads)) as pool:
        futures = {pool.submit(_run_job, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _start_worker(blob: bytes, threads: int) -> None:
    """A worker's initializer: its torch threads, and the setup every trial it runs shares."""
    global _SETUP
    torch.set_num_threads(threads)
    _SETUP = pickle.loads(blob)


def _run_job(job: Job) -> TrialResult:
    assert _SETUP is not None, "the pool's initializer sets the setup"
    return _SETUP.run(job)
