"""The validation split (issue 10 item 4): held out of training, measured at every evaluation,
stored beside the test metrics; built-in tasks hold one out by default."""

from __future__ import annotations

import dataclasses

import torch

from lrscope.config.plans import study_plan
from lrscope.config.study import load_study_config
from lrscope.data.tasks import get_task
from lrscope.schedules import parse
from lrscope.study.plan import StudyPlan
from lrscope.study.run import run_study
from lrscope.study.store.sqlite import Store
from lrscope.trials.trial import run_trial


def test_the_split_is_held_out_of_training_and_fixed():
    task = get_task("digits", limit_train=200)
    split = task.with_validation(0.1)
    assert (len(split.train_x), len(split.val_x)) == (180, 20)
    again = task.with_validation(0.1)
    assert torch.equal(split.val_x, again.val_x)  # the same examples every time
    rows = {tuple(r.flatten().tolist()) for r in split.train_x}
    assert not any(tuple(r.flatten().tolist()) in rows for r in split.val_x)
    assert len(rows) + len(split.val_x) == len({tuple(r.flatten().tolist()) for r in task.train_x})


def test_built_in_tasks_hold_a_tenth_out_by_default_and_user_tasks_none():
    plan = study_plan(load_study_config(overrides={"limit_train": 100}))
    assert plan.task.has_validation and len(plan.task.val_x) == 10
    plan = study_plan(load_study_config(overrides={"limit_train": 100, "val_fraction": 0.0}))
    assert not plan.task.has_validation and len(plan.task.train_x) == 100
    plain = load_study_config(overrides={"task": "lrscope.data.tasks.digits:digits_task"})
    assert plain.resolved_val_fraction() == 0.0


def test_trials_measure_validation_and_the_study_stores_it(tmp_path):
    task = get_task("digits", limit_train=256, limit_test=64).with_validation(0.25)
    result = run_trial(task, parse("constant(lr=0.1)"), seed=0, steps=8, eval_every=4)
    assert all(e.val_loss is not None and e.val_accuracy is not None for e in result.evaluations)
    assert result.evaluations[-1].val_loss != result.evaluations[-1].loss
    plan = StudyPlan(name="v", task=task, config={"v": 1}, seeds=(0,), steps=8, eval_every=4,
                     range_test=None, schedules=("constant(lr=0.1)",))
    run_study(plan, tmp_path)
    with Store.in_dir(tmp_path, create=False) as store:
        trial = store.trials()[0]
        steps, values = store.metric_series(trial.id, "val_loss")
    assert steps.tolist() == [4, 8]
    assert values.tolist() == [e.val_loss for e in result.evaluations]


def test_a_study_stored_before_the_split_existed_resumes_without_one(tmp_path):
    from lrscope.study.resume import check_same as _check_same

    plan = study_plan(load_study_config(overrides={"limit_train": 100, "val_fraction": 0.0}))
    old = {k: v for k, v in plan.config.items() if k != "val_fraction"}
    _check_same(old, plan.config, plan.config_defaults)  # ran without a split: resumes


def test_batched_trials_measure_validation_as_single_trials_do():
    import numpy as np

    from lrscope.trials.batched.run import run_trials_batched

    task = get_task("digits", limit_train=256, limit_test=64).with_validation(0.25)
    schedules = [parse("constant(lr=0.05)"), parse("constant(lr=0.2)")]
    batched = run_trials_batched(task, schedules, seed=0, steps=6, eval_every=3)
    for schedule, together in zip(schedules, batched, strict=True):
        alone = run_trial(task, schedule, seed=0, steps=6, eval_every=3)
        np.testing.assert_allclose([e.val_loss for e in together.evaluations],
                                   [e.val_loss for e in alone.evaluations], rtol=1e-4)
        assert [e.val_accuracy for e in together.evaluations] == \
            [e.val_accuracy for e in alone.evaluations]


def test_selection_uses_validation_and_the_test_set_only_reports():
    from lrscope.study.stats.leaderboard import TrialOutcome, ranking_note, summarize

    def outcome(label: str, seed: int, val: float, test: float) -> TrialOutcome:
        return TrialOutcome(label, "f", seed, "finished", test, test, None, None, (), 1.0,
                            test, final_val_loss=val)

    # "a" is better on validation, "b" on test: the ranking must follow validation.
    outcomes = [outcome("a", s, 0.2, 0.9) for s in range(3)] + \
               [outcome("b", s, 0.5, 0.1) for s in range(3)]
    rows = summarize(outcomes)
    assert [r.label for r in rows] == ["a", "b"]
    assert rows[0].ranked_on == "val_loss" and rows[0].rank_loss == 0.2
    assert rows[0].final_test_loss.mean == 0.9  # the reported numbers are the test set's
    assert "validation loss" in ranking_note(rows)
    without = summarize([dataclasses.replace(o, final_val_loss=None) for o in outcomes])
    assert [r.label for r in without] == ["b", "a"] and without[0].ranked_on == "test_loss"
