"""What a ``strategy="predict"`` study keeps beside its store: DIR/predictions.json.

One entry per study name (as DIR/parallel.json): the law that was fitted and on which trials,
the self-check, every candidate's prediction (and whether it was trained), the cost, and the
lines the study printed. The file is derived: a rerun recomputes it from the trials in the store
(deterministically), so a kill at any point loses nothing; it is replaced whole, never
half-written. The report and :func:`lrscope.compare` read it here.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> record = PredictionRecord(law="multi_power", fit_trials=("constant(lr=0.1)/seed0",),
...     candidates={"cosine(lr=0.1)": Prediction(0.25, 0.2, 0.3, trained=False)},
...     cost=Cost(steps=500, full_steps=2500, range_test_steps=100, run_steps=100, budget=0.2))
>>> _ = save_predictions(out, "study", record)
>>> load_predictions(out, "study") == record, load_predictions(out, "other")
(True, None)
>>> round(record.cost.fraction, 3), record.cost.runs, record.cost.full_runs
(0.2, 5.0, 24.0)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREDICTIONS_FILE = "predictions.json"
# where a predict study's record goes once a full study on the same folder supersedes it
RETIRED_FILE = "predictions-before-full.json"


@dataclass(frozen=True)
class Prediction:
    """A candidate's predicted final selection metric, in the metric's own direction (an
    accuracy reads 0.95), with the interval that includes the fit's error and the seed noise.
    ``trained``: whether the candidate was also trained (its row is then measured).
    ``curve``: the predicted metric at ``curve_steps`` (for the report's figures)."""

    value: float
    low: float
    high: float
    trained: bool = False
    curve_steps: tuple[int, ...] = ()
    curve: tuple[float, ...] = ()


@dataclass(frozen=True)
class SelfCheck:
    """The law's test on a trial it was not fitted on: the held-out ``trial`` key, what it
    predicted and what was measured (both in the metric's own direction), the error beside the
    gap the study must resolve, and whether the law passed (else the study trained instead)."""

    trial: str
    predicted: float
    measured: float
    error: float
    gap: float
    passed: bool
    why: str = ""


@dataclass(frozen=True)
class Cost:
    """Trial steps trained by this study (the range test included) and what the full study
    (every candidate at every seed) would train, under ``budget`` (a fraction of ``full_steps``).
    ``run_steps``: the steps of one trial, the unit of ``runs``."""

    steps: int
    full_steps: int
    range_test_steps: int
    run_steps: int
    budget: float

    @property
    def fraction(self) -> float:
        return self.steps / self.full_steps if self.full_steps else 0.0

    @property
    def runs(self) -> float:
        """Steps trained, in runs of the study's length."""
        return self.steps / self.run_steps if self.run_steps else 0.0

    @property
    def full_runs(self) -> float:
        return (self.full_steps - self.range_test_steps) / self.run_steps if self.run_steps else 0.0


@dataclass(frozen=True)
class PredictionRecord:
    """One predict study's record (see the module docstring). ``stopped``: why the race ended
    ("separated", "budget", "all trained", "fallback"); ``tie``: the candidates it could not
    separate from the best, best first; ``optimised``: the spec of the schedule found by
    minimising the law (trained like any candidate), if any; ``lines``: what the study said."""

    law: str
    fit_trials: tuple[str, ...]
    candidates: dict[str, Prediction]
    cost: Cost
    self_check: SelfCheck | None = None
    stopped: str = ""
    tie: tuple[str, ...] = ()
    optimised: str | None = None
    lines: tuple[str, ...] = ()
    law_params: dict[str, float] = field(default_factory=dict)
    # the probes' compression k (lrscope.study.predict.probes), None when nothing was probed
    probe_factor: int | None = None
    # each candidate's probe: its final selection value, in the metric's own direction (None:
    # the probe did not finish); {} when nothing was probed
    probes: dict[str, float | None] = field(default_factory=dict)
    # the candidates left untrained, the one the study would train next first, and by what
    # (lrscope.study.predict.probes.BY_LAW and the rest: the law's prediction, its order when
    # its values failed the self-check, the probes when no law was fitted; "" when every
    # candidate was trained after the law failed)
    untrained: tuple[str, ...] = ()
    untrained_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionRecord:
        check = data.get("self_check")
        return cls(
            law=data["law"], fit_trials=tuple(data["fit_trials"]),
            candidates={label: Prediction(**{**p, "curve_steps": tuple(p.get("curve_steps", ())),
                                             "curve": tuple(p.get("curve", ()))})
                        for label, p in data["candidates"].items()},
            cost=Cost(**data["cost"]),
            self_check=SelfCheck(**check) if check else None,
            stopped=data.get("stopped", ""), tie=tuple(data.get("tie", ())),
            optimised=data.get("optimised"), lines=tuple(data.get("lines", ())),
            law_params=dict(data.get("law_params", {})),
            probe_factor=data.get("probe_factor"), probes=dict(data.get("probes", {})),
            untrained=tuple(data.get("untrained", ())),
            untrained_by=data.get("untrained_by", ""))


def save_predictions(out: str | Path, name: str, record: PredictionRecord,
                     file: str = PREDICTIONS_FILE) -> Path:
    """Write ``record`` as the study ``name``'s entry of ``out``/predictions.json (or ``file``;
    replaced whole, so a reader never sees half of it)."""
    path = Path(out) / file
    saved = _entries(path)
    saved[name] = record.to_dict()
    _write(path, saved)
    return path


def load_predictions(out: str | Path, name: str,
                     file: str = PREDICTIONS_FILE) -> PredictionRecord | None:
    """The study ``name``'s record in ``out``/predictions.json (or ``file``), or None (a full
    study)."""
    entry = _entries(Path(out) / file).get(name)
    return PredictionRecord.from_dict(entry) if isinstance(entry, dict) else None


def retire_predictions(out: str | Path, name: str) -> Path | None:
    """Move the study ``name``'s record from ``out``/predictions.json to
    :data:`RETIRED_FILE`, and return where, or None when there was none: a
    ``strategy="full"`` study on the same folder trains every pair, after which the record
    (its untrained candidates, its tie, its cost) no longer describes the study, and the
    report, the leaderboard's predicted rows and the verdict would read it as if it did.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> record = PredictionRecord("multi_power", (), {}, Cost(5, 25, 1, 1, 0.2))
    >>> _ = save_predictions(out, "study", record)
    >>> retire_predictions(out, "study").name, load_predictions(out, "study")
    ('predictions-before-full.json', None)
    >>> retire_predictions(out, "study") is None  # nothing left to move
    True
    """
    path, kept = Path(out) / PREDICTIONS_FILE, Path(out) / RETIRED_FILE
    saved = _entries(path)
    entry = saved.pop(name, None)
    if not isinstance(entry, dict):
        return None
    _write(kept, {**_entries(kept), name: entry})
    _write(path, saved)
    return kept


def _entries(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _write(path: Path, saved: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.stem}.{os.getpid()}.json")
    temp.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    temp.replace(path)
