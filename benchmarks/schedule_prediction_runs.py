"""The studies of benchmarks/schedule_prediction.py, each one :func:`lrscope.compare` call.

Every study writes its own lrscope folder WORK/<problem>/<arm>/ (the store: a rerun resumes and
trains only what is missing) and, once finished, a summary WORK/<problem>/<arm>.json read back
instead of calling compare again: nothing is recomputed. The arms:

* ``full`` / ``full-scales``: the default study (smith recipe, the study seeds), and the same
  with ``lr_scales``; their pick is the leaderboard's first row. Once per order of the study
  seeds (:meth:`Settings.seed_orders`; the first seed runs the range test, which sets the
  suite's peak), the first as ``full``, the others as ``full-s<first seed>``.
* ``oracle``: one schedule per family x the peak-LR factors, at the oracle seeds.
* ``truth``: every candidate of both suites and the oracle's pick, at fresh seeds.
* ``predict`` / ``predict-scales``: ``strategy="predict"`` in fresh folders (see
  :func:`run_predict`; it needs the ``predict`` branch's ``compare(strategy=...)``); as the
  full study, once per order of the study seeds (predict trains its first seed).
"""

from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from schedule_prediction_problems import (
    PARALLEL,
    Settings,
    budget,
    lrscope_task,
    make_optimizer,
    oracle_specs,
)

import lrscope
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.study.stats.leaderboard import origins, outcomes_from_store, run_metric
from lrscope.study.store.sqlite import Store

NAME = "study"  # compare's default study name


def predict_available() -> bool:
    """Whether this lrscope's compare takes ``strategy=`` (the predict branch merged)."""
    return "strategy" in inspect.signature(lrscope.compare).parameters


def read_study(out: Path) -> dict[str, Any]:
    """Every trial of the study in ``out``: label, seed, status, final selection metric (val,
    lower is better) and final test loss; the range test's steps; label -> (base, scale)."""
    with Store.in_dir(out, create=False) as store:
        run = store.find_run(NAME)
        assert run is not None, f"no study {NAME!r} in {out}"
        range_test = store.range_test(run.id)
        trials = store.trials(run.id)
        outcomes = outcomes_from_store(store, run.id, run_metric(store, run.id))
        found = origins(trials)
    return {"range_steps": 0 if range_test is None else len(range_test.lrs),
            "origins": {k: list(v) for k, v in found.items()},
            "trials": [{"label": o.label, "seed": o.seed, "status": o.status,
                        "val": _number(o.final_val_loss), "test": _number(o.final_test_loss)}
                       for o in outcomes]}


def _number(value: float | None) -> float:
    return math.inf if value is None or not math.isfinite(value) else float(value)


def per_candidate(study: dict[str, Any], key: str, how: str = "median") -> dict[str, float]:
    """label -> the median (the leaderboard's rank statistic) or mean of ``key`` over its
    seeds; a diverged, failed or unfinished seed counts as inf."""
    values: dict[str, list[float]] = {}
    for t in study["trials"]:
        value = t[key] if t["status"] == "finished" else math.inf
        values.setdefault(t["label"], []).append(value)
    reduce = np.median if how == "median" else np.mean
    return {label: float(reduce(v)) for label, v in values.items()}


def pick_of(result: Any, study: dict[str, Any]) -> str | None:
    """The concrete candidate (schedule at its scale) the leaderboard's first row names: what a
    user who must choose takes, also when the study names a tie group (``result.best`` None);
    None when nothing finished. The first row is always a trained one."""
    if not result.leaderboard or not result.leaderboard[0].n_finished:
        return None
    row = result.leaderboard[0]
    if row.lr_scale is None:
        return str(row.label)
    return next((label for label, (base, scale) in study["origins"].items()
                 if (base, scale) == (row.label, row.lr_scale) or label == row.label), row.label)


def arm_name(strategy: str, scales: bool, first_seed: int, study_seeds: tuple[int, ...]) -> str:
    """The arm of a ``strategy`` ("full" or "predict") study whose first seed is ``first_seed``
    (its range test and, for predict, every trial it trains first run at that seed).

    >>> arm_name("predict", True, 0, (0, 1, 2)), arm_name("full", False, 2, (0, 1, 2))
    ('predict-scales', 'full-s2')
    """
    arm = f"{strategy}-scales" if scales else strategy
    return arm if first_seed == study_seeds[0] else f"{arm}-s{first_seed}"


class Runner:
    """Runs (or reads back) the arms of one problem under one configuration."""

    def __init__(self, problem: str, settings: Settings, work: Path) -> None:
        self.problem, self.settings = problem, settings
        self.dir = work / problem
        self.dir.mkdir(parents=True, exist_ok=True)
        self.task = lrscope_task(problem, settings.tiny)
        self.steps = budget(problem, settings.tiny)

    def _cached(self, arm: str) -> dict[str, Any] | None:
        path = self.dir / f"{arm}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _save(self, arm: str, data: dict[str, Any]) -> dict[str, Any]:
        (self.dir / f"{arm}.json").write_text(json.dumps(data, indent=1))
        return data

    def compare(self, arm: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        settings = self.settings
        range_test = (RangeTestSettings(steps=settings.range_steps)
                      if settings.range_steps else None)
        began = time.monotonic()
        result = lrscope.compare(self.task.make_model, make_optimizer(self.problem, settings.tiny),
                                 self.task, steps=self.steps,
                                 parallel=PARALLEL.get(self.problem, "batched"),
                                 out=self.dir / arm, quiet=True, range_test=range_test, **kwargs)
        study = read_study(self.dir / arm)
        study.update(wall_s=round(time.monotonic() - began, 1), steps=self.steps,
                     pick=pick_of(result, study), tie=list(result.tie),
                     suite=[label for label, _ in result.suite.schedules])
        return result, study

    def full(self, scales: bool, seeds: tuple[int, ...] | None = None) -> dict[str, Any]:
        """The full study at ``seeds`` (None: the study seeds)."""
        seeds = self.settings.study_seeds if seeds is None else seeds
        arm = arm_name("full", scales, seeds[0], self.settings.study_seeds)
        if (done := self._cached(arm)) is not None:
            return done
        lr_scales = list(self.settings.lr_scales) if scales else None
        _, study = self.compare(arm, seeds=list(seeds), lr_scales=lr_scales)
        return self._save(arm, study)

    def oracle(self, suite: list[str]) -> dict[str, Any]:
        if (done := self._cached("oracle")) is not None:
            return done
        specs = oracle_specs(suite, self.settings)
        _, study = self.compare("oracle", schedules=specs, seeds=list(self.settings.oracle_seeds))
        return self._save("oracle", study)

    def truth(self, labels: list[str]) -> dict[str, Any]:
        """Every label at the truth seeds (labels missing from a cached truth are trained)."""
        done = self._cached("truth")
        if done is not None and set(labels) <= {t["label"] for t in done["trials"]}:
            return done
        _, study = self.compare("truth", schedules=labels, seeds=list(self.settings.truth_seeds))
        return self._save("truth", study)

    def predict(self, scales: bool, seeds: tuple[int, ...] | None = None) -> dict[str, Any] | None:
        """``strategy="predict"`` in a fresh folder, at ``seeds`` (None: the study seeds);
        None when this lrscope has no predict."""
        seeds = self.settings.study_seeds if seeds is None else seeds
        arm = arm_name("predict", scales, seeds[0], self.settings.study_seeds)
        if (done := self._cached(arm)) is not None:
            return done
        if not predict_available():
            return None
        from lrscope.study.store.predictions import load_predictions

        lr_scales = list(self.settings.lr_scales) if scales else None
        try:
            result, study = self.compare(arm, seeds=list(seeds), lr_scales=lr_scales,
                                         strategy="predict")
        except Exception as err:  # a crash is a result: kept and shown, not fatal
            study = read_study(self.dir / arm)
            study.update(steps=self.steps, pick=None, tie=[], suite=[], record=None,
                         cost_steps=None, full_steps=None,
                         crashed=f"{type(err).__name__}: {err}")
            return self._save(arm, study)
        record = load_predictions(self.dir / arm, NAME)
        study["record"] = None if record is None else record.to_dict()
        cost = getattr(result, "cost", None)
        study["cost_steps"] = None if cost is None else cost.steps
        study["full_steps"] = getattr(result, "full_cost", None)
        return self._save(arm, study)
