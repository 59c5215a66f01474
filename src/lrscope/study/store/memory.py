"""A results store in memory: the :mod:`~lrscope.study.store.base` contract, nothing on disk.

For notebooks and tests: ``MemoryStore()`` is an empty store; ``MemoryStore(shares=store)`` is
another handle (another owner) on the same data, as a second process opening the same SQLite
file would be. Every call takes the data's lock, so a call is atomic and handles may be used
from several threads (the heartbeat's included). Records are built afresh for every read, and
configs make the JSON round trip the SQLite store makes, so both answer alike.

>>> store = MemoryStore()
>>> run = store.ensure_run("demo", config={"seeds": (0, 1)})
>>> t = store.start_trial(run.id, "constant/seed0", label="constant")
>>> store.add_metrics(t.trial_id, [(0, "train_loss", 2.3), (1, "train_loss", 2.1)])
2
>>> store.finish_trial(t.trial_id)
>>> store.run(run.id).config, store.start_trial(run.id, "constant/seed0", label="x").skip
({'seeds': [0, 1]}, True)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lrscope.study.store.base import (
    ResultsStore,
    check_finish,
    check_run,
    check_trial,
    range_test_arrays,
)
from lrscope.study.store.lease import (
    Heartbeat,
    claim_decision,
    closed,
    opened,
    owner_id,
)
from lrscope.study.store.lease import lease_timeout as lease_timeout_seconds
from lrscope.study.store.records import (
    RangeTestRecord,
    RunRecord,
    TrialRecord,
    TrialStart,
    dumps_config,
    now_utc,
)


@dataclass
class MemoryData:
    """What one in-memory store holds, shared by its handles; ``lock`` guards all of it."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    runs: dict[int, RunRecord] = field(default_factory=dict)
    range_tests: dict[int, RangeTestRecord] = field(default_factory=dict)
    trials: dict[int, TrialRecord] = field(default_factory=dict)
    metrics: dict[int, dict[str, dict[int, float]]] = field(default_factory=dict)  # trial: name:
    next_id: dict[str, int] = field(default_factory=dict)                          # step: value

    def new_id(self, table: str) -> int:
        self.next_id[table] = self.next_id.get(table, 0) + 1
        return self.next_id[table]


def _json(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` as the store gives it back: through JSON, like the SQLite store."""
    return dict(json.loads(dumps_config(config)))


class MemoryStore(ResultsStore):
    """Runs, range tests, trials and metrics in this process's memory (see the module
    docstring)."""

    def __init__(self, *, shares: MemoryStore | None = None, owner: str | None = None,
                 lease_timeout: float | None = None) -> None:
        self.data: MemoryData = shares.data if shares is not None else MemoryData()
        self.owner = owner or owner_id()
        self.lease_timeout = lease_timeout_seconds(lease_timeout)
        opened(self.owner)  # its leases are live until close (lease.died_here)

    def close(self) -> None:
        closed(self.owner)

    # -- runs ----------------------------------------------------------------------------------
    def ensure_run(self, name: str, *, kind: str = "study",
                   config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> RunRecord:
        check_run(name, kind)
        with self.data.lock:
            found = self.find_run(name)
            if found is not None:
                return found
            run = RunRecord(self.data.new_id("runs"), name, kind, now_utc(), _json(config),
                            recipe)
            self.data.runs[run.id] = run
            return self.run(run.id)

    def update_run(self, run_id: int, *, config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> None:
        with self.data.lock:
            run = self.run(run_id)
            self.data.runs[run_id] = replace(
                run, config=_json(config) if config is not None else run.config,
                recipe=recipe if recipe is not None else run.recipe)

    def merge_run_config(self, run_id: int,
                         merge: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self.data.lock:
            run = self.run(run_id)
            merged = merge(run.config)  # a copy: an exception leaves the stored one as it was
            self.data.runs[run_id] = replace(run, config=_json(merged))
            return merged

    def runs(self, kind: str | None = None) -> list[RunRecord]:
        with self.data.lock:
            return [self.run(i) for i in sorted(self.data.runs)
                    if kind is None or self.data.runs[i].kind == kind]

    def run(self, run_id: int) -> RunRecord:
        with self.data.lock:
            if run_id not in self.data.runs:
                raise KeyError(f"no run with id {run_id} in this memory store")
            run = self.data.runs[run_id]
            return replace(run, config=_json(run.config))

    def find_run(self, name: str) -> RunRecord | None:
        with self.data.lock:
            found = [i for i, run in self.data.runs.items() if run.name == name]
            return self.run(found[0]) if found else None

    # -- range tests ---------------------------------------------------------------------------
    def save_range_test(self, run_id: int, *, lrs: Any, losses: Any, smoothed: Any = None,
                        val_losses: Any = None, suggestions: Mapping[str, float] | None = None,
                        suggestion: float | None = None, stopped: str = "completed",
                        config: Mapping[str, Any] | None = None) -> None:
        lr_arr, loss_arr = range_test_arrays(lrs, losses)
        with self.data.lock:
            self.run(run_id)
            self.data.range_tests[run_id] = RangeTestRecord(
                run_id, lr_arr.copy(), loss_arr.copy(), _copy(smoothed), _copy(val_losses),
                _json(suggestions), suggestion, stopped, _json(config), now_utc())

    def range_test(self, run_id: int) -> RangeTestRecord | None:
        with self.data.lock:
            saved = self.data.range_tests.get(run_id)
            if saved is None:
                return None
            return replace(saved, lrs=saved.lrs.copy(), losses=saved.losses.copy(),
                           smoothed=_copy(saved.smoothed), val_losses=_copy(saved.val_losses),
                           suggestions=_json(saved.suggestions), config=_json(saved.config))

    # -- trials --------------------------------------------------------------------------------
    def start_trial(self, run_id: int, key: str, *, label: str, spec: str | None = None,
                    family: str = "", seed: int = 0,
                    config: Mapping[str, Any] | None = None) -> TrialStart:
        check_trial(key, label)
        with self.data.lock:
            self.run(run_id)
            now = time.time()
            found = [t for t in self.data.trials.values() if t.run_id == run_id and t.key == key]
            if found:
                old = found[0]
                skip = claim_decision(old.id, old.status, old.owner, old.heartbeat,
                                      owner=self.owner, timeout=self.lease_timeout, now=now)
                if skip is not None:
                    return skip
            trial_id = found[0].id if found else self.data.new_id("trials")
            claims = found[0].claims + 1 if found else 1
            self.data.trials[trial_id] = TrialRecord(
                id=trial_id, run_id=run_id, key=key, label=label, spec=spec, family=family,
                seed=int(seed), config=_json(config), status="running", diverged_at_step=None,
                wall_time=None, started=now_utc(), finished=None, error=None, owner=self.owner,
                heartbeat=now, claims=claims)
            self.data.metrics[trial_id] = {}  # from nothing
            return TrialStart(trial_id=trial_id, skip=False, restarted=bool(found))

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.lease_timeout, self._beats)

    @contextmanager
    def _beats(self) -> Iterator[Callable[[], None]]:
        def beat() -> None:
            with self.data.lock:
                now = time.time()
                for trial in list(self.data.trials.values()):
                    if trial.owner == self.owner and trial.status == "running":
                        self.data.trials[trial.id] = replace(trial, heartbeat=now)

        yield beat

    def owns(self, trial_id: int) -> bool:
        with self.data.lock:
            trial = self.data.trials.get(trial_id)
            return trial is not None and trial.owner == self.owner

    def finish_trial(self, trial_id: int, status: str = "finished", *,
                     diverged_at_step: int | None = None, wall_time: float | None = None,
                     error: str | None = None) -> None:
        check_finish(status)
        with self.data.lock:
            trial = self.trial(trial_id)
            self.data.trials[trial_id] = replace(
                trial, status=status, diverged_at_step=diverged_at_step, wall_time=wall_time,
                error=error, finished=now_utc())

    def trials(self, run_id: int | None = None, *,
               status: str | None = None) -> list[TrialRecord]:
        with self.data.lock:
            chosen = [t for t in self.data.trials.values()
                      if (run_id is None or t.run_id == run_id)
                      and (status is None or t.status == status)]
            return [self.trial(t.id) for t in sorted(chosen, key=lambda t: (t.run_id, t.id))]

    def trial(self, trial_id: int) -> TrialRecord:
        with self.data.lock:
            if trial_id not in self.data.trials:
                raise KeyError(f"no trial with id {trial_id} in this memory store")
            trial = self.data.trials[trial_id]
            return replace(trial, config=_json(trial.config))

    # -- metrics -------------------------------------------------------------------------------
    def add_metrics(self, trial_id: int, rows: Iterable[tuple[int, str, float]]) -> int:
        data = [(str(name), int(step), float(value)) for step, name, value in rows]
        if data:
            with self.data.lock:
                if trial_id not in self.data.trials:
                    raise KeyError(f"no trial with id {trial_id} in this memory store")
                metrics = self.data.metrics.setdefault(trial_id, {})
                for name, step, value in data:
                    metrics.setdefault(name, {})[step] = value
        return len(data)

    def metric_series(self, trial_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        with self.data.lock:
            series = dict(self.data.metrics.get(trial_id, {}).get(name, {}))
        steps = sorted(series)
        return (np.array(steps, dtype=np.int64),
                np.array([series[s] for s in steps], dtype=np.float64))

    def metric_names(self, trial_id: int) -> list[str]:
        with self.data.lock:
            return sorted(name for name, series in self.data.metrics.get(trial_id, {}).items()
                          if series)


def _copy(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float64).ravel().copy()
