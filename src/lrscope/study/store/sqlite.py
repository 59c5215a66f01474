"""The results store on disk: one SQLite file (``DIR/study.sqlite``) holding runs, trials, metrics.

Everything a report needs lives here, so ``lrscope report DIR`` reads nothing else. SQLite runs
in WAL mode: one writer process plus any number of readers (a report, a test) at the same time;
readers see whole transactions only. A SIGKILL loses at most the transaction in flight. The
contract it keeps is :mod:`lrscope.study.store.base`'s.

    store = Store(path, create=True)             # or Store.in_dir(DIR); create=False: must exist

Open one Store per process (a connection must not cross a fork); writes from several processes
queue on SQLite's lock (busy timeout 60 s).

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d, Store.in_dir(d) as store:
...     run = store.ensure_run("demo", config={"seeds": 1})
...     t = store.start_trial(run.id, "constant/seed0", label="constant", family="constant")
...     store.add_metrics(t.trial_id, [(0, "train_loss", 2.3), (1, "train_loss", 2.1)])
...     store.finish_trial(t.trial_id, wall_time=0.5)
...     steps, values = store.metric_series(t.trial_id, "train_loss")
...     again = store.start_trial(run.id, "constant/seed0", label="constant")
2
>>> steps.tolist(), values.tolist(), again.skip
([0, 1], [2.3, 2.1], True)
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lrscope.errors import InputError
from lrscope.study.store.base import (
    ResultsStore,
    check_finish,
    check_run,
    check_trial,
    range_test_arrays,
)
from lrscope.study.store.lease import (
    DONE_STATUSES,
    Heartbeat,
    claim_trial,
    closed,
    opened,
    owner_id,
    sqlite_beats,
)
from lrscope.study.store.lease import lease_timeout as lease_timeout_seconds
from lrscope.study.store.reads import StoreReads
from lrscope.study.store.records import (
    METRIC_NAMES,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    MetricBuffer,
    RangeTestRecord,
    RunRecord,
    TrialRecord,
    TrialStart,
    blob_from_array,
    dumps_config,
    now_utc,
)

STORE_FILENAME = "study.sqlite"

__all__ = [
    "DONE_STATUSES",
    "METRIC_NAMES",
    "STORE_FILENAME",
    "Heartbeat",
    "MetricBuffer",
    "RangeTestRecord",
    "RunRecord",
    "Store",
    "TrialRecord",
    "TrialStart",
]


class Store(StoreReads, ResultsStore):
    """Runs, range tests, trials and metrics in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, create: bool = True, owner: str | None = None,
                 lease_timeout: float | None = None) -> None:
        self.path = Path(path)
        self.owner = owner or owner_id()  # who this store's claims are for (lease.py)
        self.lease_timeout = lease_timeout_seconds(lease_timeout)
        if not create and not self.path.is_file():
            raise InputError(
                f"{self.path}: no results store here; make one with `lrscope compare --out DIR` "
                "or `lrscope import-tb LOGDIR --out DIR`"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write call.
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            self._open(create)
        except sqlite3.OperationalError:  # locked, read-only, disk full: not a format problem
            self._db.close()
            raise
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise InputError(f"{self.path}: not an lrscope results store ({err})") from None
        except BaseException:
            self._db.close()
            raise
        opened(self.owner)  # its leases are live until close (lease.died_here)

    @classmethod
    def in_dir(cls, directory: str | Path, *, create: bool = True,
               lease_timeout: float | None = None) -> Store:
        """The store of a run directory: ``directory/study.sqlite``."""
        directory = Path(directory)
        if not create and not directory.is_dir():
            raise InputError(f"{directory}: no such directory")
        return cls(directory / STORE_FILENAME, create=create, lease_timeout=lease_timeout)

    def _open(self, create: bool) -> None:
        db = self._db
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("BEGIN")  # one snapshot: another process may be creating the store right now
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        db.execute("COMMIT")
        if version > SCHEMA_VERSION:
            raise InputError(
                f"{self.path}: store schema version {version} is newer than this lrscope "
                f"understands ({SCHEMA_VERSION}); upgrade lrscope"
            )
        if version == 0 and tables:
            raise InputError(f"{self.path}: an SQLite file, but not an lrscope results store")
        if version == 0 and not create:
            raise InputError(f"{self.path}: empty file, not an lrscope results store")
        # WAL lets a report read while a study writes; NORMAL sync is still safe against a
        # killed process (only a power cut can lose the last commits).
        _set_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        if version == 0:
            # One script, one transaction: a store is created whole or not at all.
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION};"
                             " COMMIT;")
        elif version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring an older store up to SCHEMA_VERSION, one step per transaction; the version is
        read again under the write lock, so two processes opening it at once migrate it once."""
        while True:
            with self._write() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version >= SCHEMA_VERSION:
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        closed(self.owner)
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------------
    def ensure_run(self, name: str, *, kind: str = "study", config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> RunRecord:
        """The run called ``name``, created with ``kind``, ``config`` and ``recipe`` if new."""
        check_run(name, kind)
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (name, kind, created, config, recipe) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, kind, now_utc(), dumps_config(config), recipe),
            )
        found = self.find_run(name)
        assert found is not None
        return found

    def update_run(self, run_id: int, *, config: Mapping[str, Any] | None = None,
                   recipe: str | None = None) -> None:
        """Replace the run's config and/or recipe text (what is None stays)."""
        self.run(run_id)
        with self._write() as db:
            if config is not None:
                db.execute("UPDATE runs SET config = ? WHERE id = ?",
                           (dumps_config(config), run_id))
            if recipe is not None:
                db.execute("UPDATE runs SET recipe = ? WHERE id = ?", (recipe, run_id))

    def merge_run_config(self, run_id: int,
                         merge: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Replace the run's config by ``merge(stored config)`` in one write transaction (two
        processes growing one run do not lose each other's growth); returns the new config. An
        exception from ``merge`` leaves the config as it was."""
        with self._write() as db:
            row = db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"no run with id {run_id} in {self.path}")
            stored = json.loads(row[0])
            merged = merge(dict(stored))
            if merged != stored:
                db.execute("UPDATE runs SET config = ? WHERE id = ?",
                           (dumps_config(merged), run_id))
        return merged

    # -- range tests ---------------------------------------------------------------------------
    def save_range_test(self, run_id: int, *, lrs: Any, losses: Any, smoothed: Any = None,
                        val_losses: Any = None, suggestions: Mapping[str, float] | None = None,
                        suggestion: float | None = None, stopped: str = "completed",
                        config: Mapping[str, Any] | None = None) -> None:
        """Store (or replace) the run's range test; arrays are stored as exact float64."""
        lr_arr, loss_arr = range_test_arrays(lrs, losses)
        self.run(run_id)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO range_tests (run_id, lrs, losses, smoothed, val_losses, "
                "suggestions, suggestion, stopped, config, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, blob_from_array(lr_arr), blob_from_array(loss_arr),
                 blob_from_array(smoothed), blob_from_array(val_losses),
                 dumps_config(suggestions), suggestion, stopped, dumps_config(config),
                 now_utc()),
            )

    # -- trials --------------------------------------------------------------------------------
    def start_trial(self, run_id: int, key: str, *, label: str, spec: str | None = None,
                    family: str = "", seed: int = 0,
                    config: Mapping[str, Any] | None = None) -> TrialStart:
        """Claim trial ``key`` of a run, or say it is done or busy (see the module docstring)."""
        check_trial(key, label)
        return claim_trial(self._db, run_id, key, owner=self.owner, timeout=self.lease_timeout,
                           fields={"label": label, "spec": spec, "family": family, "seed": seed,
                                   "config": config})

    def heartbeat(self) -> Heartbeat:
        """A context manager: a thread keeps this owner's running trials' leases fresh."""
        return Heartbeat(self.lease_timeout, functools.partial(sqlite_beats, self.path, self.owner))

    def add_metrics(self, trial_id: int, rows: Iterable[tuple[int, str, float]]) -> int:
        """Write ``(step, name, value)`` rows in one transaction; returns how many."""
        data = [(trial_id, str(name), int(step), float(value)) for step, name, value in rows]
        if data:
            with self._write() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO metrics (trial_id, name, step, value) "
                    "VALUES (?, ?, ?, ?)", data)
        return len(data)

    def finish_trial(self, trial_id: int, status: str = "finished", *,
                     diverged_at_step: int | None = None, wall_time: float | None = None,
                     error: str | None = None) -> None:
        """Mark a trial finished, diverged (at ``diverged_at_step``) or failed (with ``error``)."""
        check_finish(status)
        with self._write() as db:
            cur = db.execute(
                "UPDATE trials SET status = ?, diverged_at_step = ?, wall_time = ?, error = ?, "
                "finished = ? WHERE id = ?",
                (status, diverged_at_step, wall_time, error, now_utc(), trial_id))
            if cur.rowcount != 1:
                raise KeyError(f"no trial with id {trial_id} in {self.path}")



def _set_wal(db: sqlite3.Connection, wait_s: float = 60.0) -> None:
    """``PRAGMA journal_mode = WAL``, retried: switching the mode needs the file to itself, and
    SQLite answers "database is locked" at once (no busy wait) while another process that opens
    the same new store holds it for a moment."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


