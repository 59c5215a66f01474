"""The results store's interface: what the study, the statistics and the report rely on.

Backends: :class:`lrscope.study.store.sqlite.Store` (one SQLite file per folder,
``DIR/study.sqlite``: what ``lrscope compare``, ``import-tb`` and ``report`` use) and
:class:`lrscope.study.store.memory.MemoryStore` (one process, nothing on disk: notebooks and
tests). ``tests/study/store/test_store_contract.py`` runs the same suite on both; a new backend
passes it.

The contract::

    run = store.ensure_run(name, kind="study", config={...}, recipe=None) -> RunRecord
        # the run called ``name`` if there is one (its stored config is NOT changed: compare
        # run.config yourself), else a new one. kind: "study" | "import".
    store.update_run(run_id, config=None, recipe=None)          # replace what is given
    store.merge_run_config(run_id, merge) -> dict    # config = merge(config), atomically
    store.save_range_test(run_id, lrs=..., losses=..., smoothed=None, val_losses=None,
                          suggestions={}, suggestion=None, stopped="completed", config={})
        # one range test per run; saving again replaces it
    t = store.start_trial(run_id, key, label=..., spec=None, family="", seed=0, config={})
        -> TrialStart(trial_id, skip, restarted, busy)       # the lease: see below
    with store.heartbeat(): ...                   # keep this owner's running trials fresh
    store.add_metrics(trial_id, [(step, name, value), ...]) -> rows written
        # one atomic write per call: buffer rows (MetricBuffer) rather than call once per step.
        # (trial, name, step) is unique: logging a step again replaces its value. NaN is kept.
    store.finish_trial(trial_id, status="finished" | "diverged" | "failed",
                       diverged_at_step=None, wall_time=None, error=None)
    store.owns(trial_id) -> bool                  # this owner still holds the trial's lease

    store.runs(kind=None) -> [RunRecord]; store.run(run_id); store.find_run(name) -> RunRecord|None
    store.trials(run_id=None, status=None) -> [TrialRecord]; store.trial(trial_id)
    store.range_test(run_id) -> RangeTestRecord | None
    store.metric_series(trial_id, name) -> (steps int64 array, values float64 array)
    store.metric_names(trial_id) -> [str]
    store.close(); with store: ...

An unknown run or trial id raises KeyError (run, trial, update_run, merge_run_config,
save_range_test, finish_trial); bad names, kinds and statuses raise InputError. Configs are JSON:
what comes back is ``json.loads(json.dumps(config, sort_keys=True, default=str))``. Records are
frozen snapshots: changing the store later does not change a record already returned.

Who may write: any handle (a store object, with its ``owner``) may create and grow runs and
range tests; a trial's metrics and status are written by the owner that claimed it, and it
checks :meth:`ResultsStore.owns` before recording a result (another owner may have taken the
trial over). Many handles may share one store: processes and threads on one SQLite file, or
handles on one in-memory store (``MemoryStore(shares=other)``), each with its own owner.

What a lease guarantees (:meth:`ResultsStore.start_trial`; the rule is
:func:`lrscope.study.store.lease.claim_decision`): a claim is atomic, so two owners never both
run one trial. Finished or diverged -> skip. Running under another owner whose heartbeat is
younger than the lease timeout and that is not provably gone -> skip, busy. Otherwise (new,
failed, this owner's, stale, or its owner is a closed store of this process or a dead process
of this host) -> taken, from nothing: its metrics are deleted, its owner and heartbeat set,
``claims`` counted, ``restarted=True`` when it existed. While ``store.heartbeat()`` is entered,
a thread refreshes the owner's running trials every ``lease_timeout / 4`` seconds.

What is durable when: every write call is one transaction, visible whole to every handle when
it returns and never half. SQLite: committed on return (a killed process loses at most the call
in flight; WAL lets readers read while one writer writes). Memory: nothing outlives the process.

Metric names used across lrscope (:data:`METRIC_NAMES`, what the study writes): ``lr`` and
``train_loss`` (every step), ``test_loss`` and ``test_accuracy`` (a fraction in [0, 1], at each
evaluation), and ``val_loss`` and ``val_accuracy`` (the same on the validation split, when the
study holds one out). ``lrscope import-tb`` writes the same names for the seed's TensorBoard
tags and keeps any other tag under its own name. Steps count optimizer steps from 0. Times are
ISO 8601 UTC strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from lrscope.errors import InputError
from lrscope.study.store.records import (
    METRIC_NAMES,
    RUN_KINDS,
    TRIAL_STATUSES,
    RangeTestRecord,
    RunRecord,
    TrialRecord,
    TrialStart,
)

__all__ = ["METRIC_NAMES", "ResultsStore"]


class ResultsStore(ABC):
    """Runs, range tests, trials and metrics (see the module docstring for the contract)."""

    owner: str  # whose claims this handle makes (lrscope.study.store.lease.owner_id)
    lease_timeout: float  # seconds without a heartbeat after which a claim is stale

    # -- runs ----------------------------------------------------------------------------------
    @abstractmethod
    def ensure_run(self, name: str, *, kind: str = "study",
                   config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> RunRecord:
        """The run called ``name``, created with ``kind``, ``config`` and ``recipe`` if new."""

    @abstractmethod
    def update_run(self, run_id: int, *, config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> None:
        """Replace the run's config and/or recipe text (what is None stays)."""

    @abstractmethod
    def merge_run_config(self, run_id: int,
                         merge: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Replace the run's config by ``merge(stored config)`` atomically (two owners growing
        one run do not lose each other's growth); returns the new config. An exception from
        ``merge`` leaves the config as it was."""

    @abstractmethod
    def runs(self, kind: str | None = None) -> list[RunRecord]:
        """Every run (of ``kind``), oldest first."""

    @abstractmethod
    def run(self, run_id: int) -> RunRecord: ...

    @abstractmethod
    def find_run(self, name: str) -> RunRecord | None: ...

    # -- range tests ---------------------------------------------------------------------------
    @abstractmethod
    def save_range_test(self, run_id: int, *, lrs: Any, losses: Any, smoothed: Any = None,
                        val_losses: Any = None, suggestions: Mapping[str, float] | None = None,
                        suggestion: float | None = None, stopped: str = "completed",
                        config: Mapping[str, Any] | None = None) -> None:
        """Store (or replace) the run's range test; arrays are kept as exact float64."""

    @abstractmethod
    def range_test(self, run_id: int) -> RangeTestRecord | None: ...

    # -- trials --------------------------------------------------------------------------------
    @abstractmethod
    def start_trial(self, run_id: int, key: str, *, label: str, spec: str | None = None,
                    family: str = "", seed: int = 0,
                    config: Mapping[str, Any] | None = None) -> TrialStart:
        """Claim trial ``key`` of a run, or say it is done or busy (the lease, above)."""

    @abstractmethod
    def heartbeat(self) -> AbstractContextManager[Any]:
        """A context manager: while entered, this owner's running trials' leases stay fresh."""

    @abstractmethod
    def owns(self, trial_id: int) -> bool:
        """Whether this owner still holds ``trial_id`` (no other owner took it over)."""

    @abstractmethod
    def finish_trial(self, trial_id: int, status: str = "finished", *,
                     diverged_at_step: int | None = None, wall_time: float | None = None,
                     error: str | None = None) -> None:
        """Mark a trial finished, diverged (at ``diverged_at_step``) or failed (with ``error``)."""

    @abstractmethod
    def trials(self, run_id: int | None = None, *,
               status: str | None = None) -> list[TrialRecord]:
        """The trials (of a run, with a status), by run then in the order they were created."""

    @abstractmethod
    def trial(self, trial_id: int) -> TrialRecord: ...

    # -- metrics -------------------------------------------------------------------------------
    @abstractmethod
    def add_metrics(self, trial_id: int, rows: Iterable[tuple[int, str, float]]) -> int:
        """Write ``(step, name, value)`` rows in one atomic write; returns how many."""

    @abstractmethod
    def metric_series(self, trial_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps (ascending, int64) and values (float64, NaN kept) of one metric; empty arrays
        when never logged."""

    @abstractmethod
    def metric_names(self, trial_id: int) -> list[str]:
        """The names logged for a trial, sorted."""

    # -- lifetime ------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release the handle; its owner's leases are void at once for this process."""

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The checks every backend makes, written once.

def check_run(name: str, kind: str) -> None:
    if kind not in RUN_KINDS:
        raise InputError(f"run kind={kind!r} is not one of {', '.join(RUN_KINDS)}")
    if not name:
        raise InputError("run name is empty; give a non-empty name")


def check_trial(key: str, label: str) -> None:
    if not key or not label:
        raise InputError(f"trial key={key!r} and label={label!r} must be non-empty")


def check_finish(status: str) -> None:
    if status not in TRIAL_STATUSES or status == "running":
        raise InputError(f"trial status={status!r} must be finished, diverged or failed")


def range_test_arrays(lrs: Any, losses: Any) -> tuple[np.ndarray, np.ndarray]:
    """``lrs`` and ``losses`` as float64 arrays; ValueError unless 1-D and of equal length."""
    lr_arr, loss_arr = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lr_arr.shape != loss_arr.shape or lr_arr.ndim != 1:
        raise ValueError(f"range test: lrs {lr_arr.shape} and losses {loss_arr.shape} must "
                         "be 1-D and of equal length")
    return lr_arr, loss_arr
