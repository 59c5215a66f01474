"""What the results store holds: its SQL schema, the records its readers return, a buffer.

Kept apart from :mod:`lrscope.study.store.sqlite` (the behaviour) so that the schema can be read
in one
place. Records are frozen dataclasses of plain Python values and numpy arrays; configs come
back as dicts (they are stored as JSON text).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

# Bump when the schema changes; a store made by a newer lrscope is refused, not misread.
SCHEMA_VERSION = 2  # 2: trials.owner, heartbeat, claims (the lease; see lease.py)
RUN_KINDS = ("study", "import")
TRIAL_STATUSES = ("running", "finished", "diverged", "failed")
# The metric names lrscope writes, the one list its writers use and its docs name: per optimizer
# step, and at each evaluation (lrscope.study.run; import-tb maps the seed's TensorBoard tags
# onto the same names).
STEP_METRICS = ("lr", "train_loss")
EVAL_METRICS = ("test_loss", "test_accuracy")
VAL_METRICS = ("val_loss", "val_accuracy")  # with a validation split: what a study selects on
METRIC_NAMES = STEP_METRICS + EVAL_METRICS + VAL_METRICS

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL CHECK (kind IN ('study', 'import')),
    created TEXT NOT NULL,
    config  TEXT NOT NULL DEFAULT '{}',   -- JSON
    recipe  TEXT                          -- how the schedule suite was made, as prose/code
);
CREATE TABLE IF NOT EXISTS range_tests (
    run_id      INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    lrs         BLOB NOT NULL,            -- float64 little-endian arrays, one value per step
    losses      BLOB NOT NULL,
    smoothed    BLOB,
    val_losses  BLOB,
    suggestions TEXT NOT NULL DEFAULT '{}',  -- JSON {rule: lr}
    suggestion  REAL,
    stopped     TEXT NOT NULL,            -- completed | diverged
    config      TEXT NOT NULL DEFAULT '{}',
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key              TEXT NOT NULL,       -- unique in its run, e.g. "<label>/seed<k>"
    label            TEXT NOT NULL,       -- the schedule as shown, e.g. its spec
    spec             TEXT,                -- parseable schedule spec; NULL for imports
    family           TEXT NOT NULL DEFAULT '',
    seed             INTEGER NOT NULL,
    config           TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'failed')),
    diverged_at_step INTEGER,
    wall_time        REAL,                -- seconds
    started          TEXT NOT NULL,
    finished         TEXT,
    error            TEXT,
    owner            TEXT,                -- the process that claimed it: host:pid:random
    heartbeat        REAL,                -- its owner's last sign of life, Unix seconds
    claims           INTEGER NOT NULL DEFAULT 0,  -- how many times a process took it
    UNIQUE (run_id, key)
);
CREATE INDEX IF NOT EXISTS trials_by_label ON trials (run_id, label, seed);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    step     INTEGER NOT NULL,
    value    REAL,                        -- NULL is NaN (SQLite cannot store NaN)
    PRIMARY KEY (trial_id, name, step)
) WITHOUT ROWID;
"""

# What turns a store of version v into one of version v + 1 (run in one write transaction).
MIGRATIONS = {
    1: "ALTER TABLE trials ADD COLUMN owner TEXT; "
       "ALTER TABLE trials ADD COLUMN heartbeat REAL; "
       "ALTER TABLE trials ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;",
}
assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def dumps_config(config: Mapping[str, Any] | None) -> str:
    """A config as the store keeps it: JSON text (keys sorted; what JSON lacks, as str)."""
    return json.dumps(dict(config or {}), sort_keys=True, default=str)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def blob_from_array(values: Any) -> bytes | None:
    """float64 little-endian bytes: exact (NaN and inf included) and compact."""
    if values is None:
        return None
    return np.asarray(values, dtype="<f8").ravel().tobytes()


def array_from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    kind: str
    created: str
    config: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        return cls(id=row["id"], name=row["name"], kind=row["kind"], created=row["created"],
                   config=json.loads(row["config"]), recipe=row["recipe"])


@dataclass(frozen=True)
class TrialRecord:
    id: int
    run_id: int
    key: str
    label: str
    spec: str | None
    family: str
    seed: int
    config: dict[str, Any]
    status: str
    diverged_at_step: int | None
    wall_time: float | None
    started: str
    finished: str | None
    error: str | None
    owner: str | None = None
    heartbeat: float | None = None
    claims: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TrialRecord:
        values = {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row is not a dict)
        values["config"] = json.loads(values["config"])
        return cls(**values)


@dataclass(frozen=True)
class TrialStart:
    """What :meth:`Store.start_trial` decided: run trial ``trial_id`` unless ``skip``."""

    trial_id: int
    skip: bool
    restarted: bool
    busy: bool = False  # skip because another live process holds it (its lease is fresh)


@dataclass(frozen=True, eq=False)
class RangeTestRecord:
    run_id: int
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray | None
    val_losses: np.ndarray | None
    suggestions: dict[str, float]
    suggestion: float | None
    stopped: str
    config: dict[str, Any]
    created: str


class MetricSink(Protocol):
    def add_metrics(self, trial_id: int, rows: Iterable[tuple[int, str, float]]) -> int: ...


class MetricBuffer:
    """Collects ``(step, name, value)`` rows and writes them in batches of ``flush_every``.

    Leaving the ``with`` block normally flushes what is left; an exception does not (the trial
    is unfinished anyway and will restart).

    >>> import tempfile
    >>> from lrscope.study.store import Store
    >>> with tempfile.TemporaryDirectory() as d, Store.in_dir(d) as store:
    ...     t = store.start_trial(store.ensure_run("r").id, "k", label="k")
    ...     with MetricBuffer(store, t.trial_id, flush_every=100) as buf:
    ...         for step in range(250):
    ...             buf.add_many(step, {"train_loss": 1.0 / (step + 1), "lr": 0.1})
    ...     len(store.metric_series(t.trial_id, "lr")[0])
    250
    """

    def __init__(self, store: MetricSink, trial_id: int, flush_every: int = 1000) -> None:
        self.store, self.trial_id, self.flush_every = store, trial_id, flush_every
        self._rows: list[tuple[int, str, float]] = []

    def add(self, step: int, name: str, value: float) -> None:
        self._rows.append((step, name, value))
        if len(self._rows) >= self.flush_every:
            self.flush()

    def add_many(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.add(step, name, value)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        self.store.add_metrics(self.trial_id, rows)

    def __enter__(self) -> MetricBuffer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.flush()
