"""Issue 18, the law's inputs: a stored trial's selection-metric curve and a schedule's LRs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrscope.data.tasks import get_task
from lrscope.schedules import parse
from lrscope.study.plan import StudyPlan
from lrscope.study.predict.curves import lr_sequence, trial_curve
from lrscope.study.predict.law import Curve
from lrscope.study.run import run_study
from lrscope.study.stats.leaderboard import run_metric
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.store.memory import MemoryStore
from lrscope.study.store.sqlite import Store


@pytest.mark.slow
def test_issue18_trial_curve_reads_the_selection_metric_of_a_real_study(tmp_path):
    task = get_task("digits", limit_train=256, limit_test=64).with_validation(0.25)
    specs = ("constant(lr=0.1)", "cosine(lr=0.1)")
    plan = StudyPlan(name="c", task=task, config={"c": 1}, seeds=(0,), steps=12, eval_every=4,
                     range_test=None, schedules=specs)
    run_study(plan, tmp_path)
    with Store.in_dir(tmp_path, create=False) as store:
        metric = run_metric(store, store.trials()[0].run_id)
        assert metric.stored == "val_loss"
        for trial in store.trials():
            lrs = lr_sequence(parse(trial.spec), plan.steps)
            curve = trial_curve(store, trial, metric, lrs)
            assert isinstance(curve, Curve)
            steps, loss = store.metric_series(trial.id, "val_loss")
            assert curve.steps.tolist() == [4, 8, 12] == steps.tolist()
            assert curve.values.tolist() == loss.tolist()
            _, lr = store.metric_series(trial.id, "lr")
            assert np.allclose(curve.lrs, lr)  # the LRs the trial applied, step by step
            accuracy = trial_curve(store, trial, RankingMetric.parse("accuracy").on("val"), lrs)
            _, acc = store.metric_series(trial.id, "val_accuracy")
            assert accuracy is not None and np.allclose(accuracy.values, 1 - acc)  # lower-better


def test_issue18_trial_curve_is_none_without_a_finite_evaluation():
    store = MemoryStore()
    run = store.ensure_run("s")
    lrs = np.full(10, 0.1)
    metric = RankingMetric().on("val")
    diverged = store.start_trial(run.id, "a/seed0", label="a").trial_id
    store.add_metrics(diverged, [(5, "val_loss", math.nan), (10, "val_loss", math.inf)])
    assert trial_curve(store, diverged, metric, lrs) is None
    failed = store.start_trial(run.id, "b/seed0", label="b").trial_id
    assert trial_curve(store, store.trial(failed), metric, lrs) is None
    tail = store.start_trial(run.id, "c/seed0", label="c").trial_id
    store.add_metrics(tail, [(5, "val_loss", 1.0), (8, "val_loss", math.nan),
                             (10, "val_loss", 0.5)])
    curve = trial_curve(store, tail, metric, lrs)
    assert curve is not None and curve.steps.tolist() == [5] and curve.values.tolist() == [1.0]


def test_issue18_lr_sequence_is_the_schedule_step_by_step():
    schedule = parse("onecycle(max_lr=1.0)")
    lrs = lr_sequence(schedule, 50)
    assert lrs.tolist() == parse("onecycle(max_lr=1.0)", total_steps=50).lrs(50)
    effective = lr_sequence(schedule, 50, effective=True)
    assert effective.max() == lrs.max() and not np.allclose(effective, lrs)
    flat = parse("constant(lr=0.3)")
    assert np.array_equal(lr_sequence(flat, 7, effective=True), np.full(7, 0.3))
