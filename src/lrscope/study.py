"""A schedule study: range test -> suite of schedules -> every (schedule, seed) trial -> store.

The study is resumable by construction: every result goes to the store as soon as it exists,
and a rerun asks the store before doing anything. The range test is kept with the run and
reused; finished trials are skipped; a trial cut off mid-run starts again from step 0 (its
partial metrics and TensorBoard events are dropped first), so nothing is duplicated.

Under a distributed engine every rank runs every trial (data parallel); only the main rank
writes the store and TensorBoard, and it tells the others which trials to skip.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrscope.engines import Engine, LocalEngine
from lrscope.errors import InputError
from lrscope.recipes import Anchors, Suite, build_suite, explicit
from lrscope.store import Store
from lrscope.tasks.base import Task
from lrscope.train import OptimizerFactory, TrialResult, run_trial, sgd


@dataclass(frozen=True)
class RangeTestPlan:
    start_lr: float = 1e-5
    end_lr: float = 10.0
    num_steps: int = 200
    mode: str = "exp"


@dataclass(frozen=True)
class StudyPlan:
    """Everything a study needs, resolved: what the CLI or the API builds from a config."""

    name: str
    task: Task
    config: dict[str, Any]  # the resolved config, stored with the run; a rerun must match it
    seeds: tuple[int, ...]
    steps: int
    eval_every: int
    make_optimizer: OptimizerFactory = dataclasses.field(default_factory=sgd)
    schedules: tuple[str, ...] = ()  # explicit specs; empty: use the recipe
    recipe: str = "smith"
    range_test: RangeTestPlan | None = RangeTestPlan()


@dataclass(frozen=True)
class TrialEvent:
    """What a progress display hears about: a trial started, skipped or ended."""

    key: str
    index: int
    total: int
    state: str  # "skipped" | "running" | "finished" | "diverged"
    result: TrialResult | None = None


def tb_dir(out: Path, key: str) -> Path:
    """TensorBoard folder of one trial: DIR/tb/<key with unsafe characters replaced>."""
    safe = "".join(c if c.isalnum() or c in "._=-" else "_" for c in key)
    return out / "tb" / safe


def run_study(plan: StudyPlan, out: str | Path, engine: Engine | None = None,
              progress: Callable[[TrialEvent], None] | None = None) -> Suite:
    """Run (or resume) the study into ``out``; return the suite of schedules it compared."""
    engine = engine or LocalEngine()
    out = Path(out)
    # Only the main rank touches files; the others hear from it through engine.mean.
    store = Store.in_dir(out) if engine.is_main else None
    try:
        run_id = _ensure_run(store, plan) if engine.is_main else None
        suite = _suite(plan, store, run_id, engine)
        if store is not None and run_id is not None and engine.is_main:
            store.update_run(run_id, recipe=f"{suite.recipe}: {suite.rules}")
        _run_trials(plan, suite, store, run_id, out, engine, progress)
    finally:
        if store is not None:
            store.close()
    return suite


def _ensure_run(store: Store | None, plan: StudyPlan) -> int:
    assert store is not None
    run = store.ensure_run(plan.name, kind="study", config=plan.config)
    if dict(run.config) != plan.config:
        raise InputError(
            f"out: the study in this folder was run with other settings ({_diff(run.config, plan.config)}); "
            "rerun with the same settings to resume, or choose a new --out"
        )
    return run.id


def _diff(old: Any, new: Any) -> str:
    keys = sorted(set(old) | set(new))
    changed = [k for k in keys if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:3])


def _suite(plan: StudyPlan, store: Store | None, run_id: int | None, engine: Engine) -> Suite:
    if plan.schedules:
        return explicit(list(plan.schedules), plan.steps)
    anchors = _anchors(plan, store, run_id, engine) if plan.recipe != "seed" else None
    return build_suite(plan.recipe, anchors, plan.steps)


def _anchors(plan: StudyPlan, store: Store | None, run_id: int | None, engine: Engine) -> Anchors:
    """The range test's anchors: from the store when this run already has one, else measured."""
    if plan.range_test is None:
        raise InputError(f"recipe: {plan.recipe!r} needs the range test; enable it or list schedules")
    saved = store.range_test(run_id) if store is not None and run_id is not None else None
    if saved is not None and engine.world_size == 1:
        return anchors_from_curve(saved.lrs, saved.smoothed, saved.suggestion)
    from lrscope.rangetest import range_test  # the loop is only needed when measuring

    import torch

    torch.manual_seed(plan.seeds[0])
    model = plan.task.make_model()
    optimizer = plan.make_optimizer(model)
    rt = plan.range_test
    result = range_test(model, optimizer, plan.task.loss_fn, plan.task.train_batches(plan.seeds[0]),
                        start_lr=rt.start_lr, end_lr=rt.end_lr, num_steps=rt.num_steps,
                        mode=rt.mode, engine=engine)
    if store is not None and run_id is not None and engine.is_main:
        store.save_range_test(run_id, lrs=result.lrs, losses=result.losses,
                              smoothed=result.smoothed, suggestions=result.suggestions,
                              suggestion=result.suggestion, stopped=result.stopped,
                              config=dataclasses.asdict(rt))
    return anchors_from_curve(result.lrs, result.smoothed, result.suggestion)


def anchors_from_curve(lrs: Any, smoothed: Any, suggestion: float | None) -> Anchors:
    """Anchors from a range-test curve: the LR at the lowest finite smoothed loss, and where it ended."""
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    finite = np.isfinite(smoothed)
    if not finite.any():
        raise InputError("range test: no finite loss at any LR; lower start_lr or check the task")
    best = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    lr_at_min = float(lrs[best])
    headline = suggestion if suggestion is not None and np.isfinite(suggestion) else lr_at_min / 10
    return Anchors(suggestion=float(headline), lr_at_min_loss=lr_at_min,
                   diverged_lr=float(lrs[-1]))


def _run_trials(plan: StudyPlan, suite: Suite, store: Store | None, run_id: int | None, out: Path,
                engine: Engine, progress: Callable[[TrialEvent], None] | None) -> None:
    from lrscope.tensorboard import TrialWriter

    jobs = [(label, schedule, seed) for label, schedule in suite.schedules for seed in plan.seeds]
    for index, (label, schedule, seed) in enumerate(jobs):
        key = f"{label}/seed{seed}"
        trial_id, skip = None, False
        if engine.is_main:
            assert store is not None and run_id is not None
            start = store.start_trial(run_id, key, label=label, spec=schedule.spec(),
                                      family=schedule.family, seed=seed,
                                      config={"steps": plan.steps, "eval_every": plan.eval_every})
            trial_id, skip = start.trial_id, start.skip
        # The main rank decides; the mean of (main's vote, zeros) is non-zero exactly when it skips.
        if engine.mean(1.0 if skip else 0.0) > 0:
            if progress:
                progress(TrialEvent(key, index, len(jobs), "skipped"))
            continue
        if progress:
            progress(TrialEvent(key, index, len(jobs), "running"))
        writer = None
        if engine.is_main:
            shutil.rmtree(tb_dir(out, key), ignore_errors=True)  # a restart must not append
            writer = TrialWriter(tb_dir(out, key))
        try:
            result = run_trial(plan.task, schedule, seed=seed, steps=plan.steps,
                               eval_every=plan.eval_every, make_optimizer=plan.make_optimizer,
                               engine=engine)
            if engine.is_main:
                assert store is not None and trial_id is not None and writer is not None
                _record(store, trial_id, result, writer)
        finally:
            if writer is not None:
                writer.close()
        if progress:
            progress(TrialEvent(key, index, len(jobs), result.status, result))


def _record(store: Store, trial_id: int, result: TrialResult, writer: Any) -> None:
    rows: list[tuple[int, str, float]] = []
    for step, (lr, loss) in enumerate(zip(result.lr, result.train_loss, strict=True)):
        rows += [(step, "lr", float(lr)), (step, "train_loss", float(loss))]
    for ev in result.evaluations:
        rows += [(ev.step, "test_loss", ev.loss), (ev.step, "test_accuracy", ev.accuracy)]
    store.add_metrics(trial_id, rows)
    writer.write_trial(result)
    store.finish_trial(trial_id, status=result.status, diverged_at_step=result.diverged_at,
                       wall_time=result.wall_time)
