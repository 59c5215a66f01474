"""The store's read side: runs, range tests, trials and metrics as records and arrays.

A mixin of :class:`lrscope.study.store.sqlite.Store` (which documents the whole contract), kept
apart so that each module stays short; it only reads ``self._db``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from lrscope.study.store.records import RangeTestRecord, RunRecord, TrialRecord, array_from_blob


class StoreReads:
    """Queries over an open store connection (``self._db``; ``self.path`` names it in errors)."""

    _db: sqlite3.Connection
    path: Path
    owner: str

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def owns(self, trial_id: int) -> bool:
        """Whether this store's owner still holds ``trial_id`` (no other process took it over)."""
        row = self._db.execute("SELECT owner FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return row is not None and row[0] == self.owner

    def runs(self, kind: str | None = None) -> list[RunRecord]:
        query = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if kind is not None:
            query, args = query + " WHERE kind = ?", (kind,)
        return [RunRecord.from_row(r) for r in self._rows(query + " ORDER BY id", args)]

    def run(self, run_id: int) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise KeyError(f"no run with id {run_id} in {self.path}")
        return RunRecord.from_row(rows[0])

    def find_run(self, name: str) -> RunRecord | None:
        rows = self._rows("SELECT * FROM runs WHERE name = ?", (name,))
        return RunRecord.from_row(rows[0]) if rows else None

    def range_test(self, run_id: int) -> RangeTestRecord | None:
        rows = self._rows("SELECT * FROM range_tests WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        r = rows[0]
        return RangeTestRecord(
            run_id=r["run_id"], lrs=array_from_blob(r["lrs"]), losses=array_from_blob(r["losses"]),
            smoothed=array_from_blob(r["smoothed"]) if r["smoothed"] is not None else None,
            val_losses=array_from_blob(r["val_losses"]) if r["val_losses"] is not None else None,
            suggestions=json.loads(r["suggestions"]), suggestion=r["suggestion"],
            stopped=r["stopped"], config=json.loads(r["config"]), created=r["created"],
        )

    def trials(self, run_id: int | None = None, *, status: str | None = None) -> list[TrialRecord]:
        clauses: list[str] = []
        args: list[Any] = []
        if run_id is not None:
            clauses.append("run_id = ?")
            args.append(run_id)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._rows(f"SELECT * FROM trials{where} ORDER BY run_id, id", tuple(args))
        return [TrialRecord.from_row(r) for r in rows]

    def trial(self, trial_id: int) -> TrialRecord:
        rows = self._rows("SELECT * FROM trials WHERE id = ?", (trial_id,))
        if not rows:
            raise KeyError(f"no trial with id {trial_id} in {self.path}")
        return TrialRecord.from_row(rows[0])

    def metric_series(self, trial_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps (ascending) and values of one metric; empty arrays when never logged."""
        rows = self._db.execute(
            "SELECT step, value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY step",
            (trial_id, name)).fetchall()
        steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        # SQLite stores NaN as NULL; None -> nan restores it.
        values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
        return steps, values

    def metric_names(self, trial_id: int) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT name FROM metrics WHERE trial_id = ? "
                                "ORDER BY name", (trial_id,)).fetchall()
        return [r[0] for r in rows]

    def _rows(self, query: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        cur = self._db.cursor()
        cur.row_factory = sqlite3.Row
        return list(cur.execute(query, args).fetchall())
