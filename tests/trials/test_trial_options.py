"""Trial options users set in their own loops (issue 10 item 2): mixed precision, gradient
clipping and accumulation, in trials, the study's range test and the configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lrscope
from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.schedules import parse
from lrscope.trials.runners import Job, TrialSetup, run_jobs
from lrscope.trials.trial import TrainOptions, evaluate, run_trial, seeded_model

SCHEDULE = parse("constant(lr=0.05)")


def _task(batch_size: int = 32):
    return get_task("digits", limit_train=256, limit_test=64, batch_size=batch_size)


def test_accumulating_two_half_batches_equals_one_full_batch():
    halves = run_trial(_task(32), SCHEDULE, seed=0, steps=8, eval_every=4,
                       options=TrainOptions(accumulation_steps=2))
    full = run_trial(_task(64), SCHEDULE, seed=0, steps=8, eval_every=4)
    # the same examples per step (one permutation per epoch, cut in 32s or 64s): same gradients
    np.testing.assert_allclose(halves.train_loss, full.train_loss, rtol=1e-5)
    assert [e.loss for e in halves.evaluations] == pytest.approx(
        [e.loss for e in full.evaluations], rel=1e-5)


def test_clipping_bounds_every_step():
    task = _task()
    initial = evaluate(seeded_model(task, 0, torch.device("cpu")), task, torch.device("cpu"))
    free = run_trial(task, parse("constant(lr=0.5)"), seed=0, steps=10, eval_every=10)
    held = run_trial(task, parse("constant(lr=0.5)"), seed=0, steps=10, eval_every=10,
                     options=TrainOptions(clip_grad_norm=1e-6))
    assert free.evaluations[-1].loss < initial.loss - 0.1  # it learns without clipping
    # ten steps of at most 0.5 x 1e-6 leave the test loss where it started
    assert held.evaluations[-1].loss == pytest.approx(initial.loss, abs=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_full_precision(precision):
    full = run_trial(_task(), SCHEDULE, seed=0, steps=6, eval_every=6)
    mixed = run_trial(_task(), SCHEDULE, seed=0, steps=6, eval_every=6,
                      options=TrainOptions(precision=precision))
    assert mixed.status == "finished"
    assert not np.array_equal(mixed.train_loss, full.train_loss)
    np.testing.assert_allclose(mixed.train_loss, full.train_loss, rtol=0.05)


def test_bad_options_are_one_clear_error():
    with pytest.raises(ValueError, match="precision='fp8'"):
        TrainOptions(precision="fp8")
    with pytest.raises(ValueError, match="clip_grad_norm=0"):
        TrainOptions(clip_grad_norm=0)
    with pytest.raises(ValueError, match="accumulation_steps=0"):
        TrainOptions(accumulation_steps=0)


def test_auto_falls_back_from_batched_when_options_are_set():
    setup = TrialSetup(_task(), steps=6, eval_every=3, options=TrainOptions(clip_grad_norm=1.0))
    jobs = [Job(f"{s}/seed0", s, parse(s), 0, i)
            for i, s in enumerate(["constant(lr=0.05)", "constant(lr=0.1)"])]
    with pytest.raises(lrscope.InputError, match="batched runs train in full precision"):
        list(run_jobs(jobs, setup, "batched", LocalEngine()))
    auto = dict(run_jobs(jobs, setup, "auto", LocalEngine()))
    alone = {job: setup.run(job) for job in jobs}
    for job in jobs:
        np.testing.assert_array_equal(auto[job].train_loss, alone[job].train_loss)


def test_range_test_clips_too():
    torch.manual_seed(0)
    task = _task()
    model = task.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = [p.detach().clone() for p in model.parameters()]
    moved: list[float] = []

    def callback(step, lr, loss, smoothed):
        params = [p.detach() for p in model.parameters()]
        moved.append(max(float((p - q).abs().max()) for p, q in zip(params, first, strict=True)))

    lrscope.range_test(model, optimizer, task.loss_fn, task.train_batches(0), start_lr=1e-3,
                       end_lr=1.0, num_steps=10, clip_grad_norm=1e-6, callback=callback)
    assert max(moved) <= 10 * 1.0 * 1e-6 + 1e-9  # at most lr x max_norm per step


def test_study_config_fields_reach_the_plan_and_the_range_test_options():
    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config

    plan = study_plan(load_study_config(overrides={
        "precision": "bf16", "clip_grad_norm": 1.0, "accumulation_steps": 2, "epochs": 1,
        "limit_train": 256, "batch_size": 32}))
    assert plan.options == TrainOptions("bf16", 1.0, 2)
    assert plan.trial_setup().options == plan.options
    assert plan.steps == 4  # 8 batches per epoch, 2 per optimizer step
    # a study stored before these settings existed still resumes: defaults fill them in
    from lrscope.study.resume import check_same as _check_same

    old = {k: v for k, v in plan.config_defaults.items()
           if k not in ("precision", "clip_grad_norm", "accumulation_steps")}
    _check_same(old, plan.config_defaults, plan.config_defaults)
    with pytest.raises(lrscope.InputError, match="accumulation_steps: 1 -> 2"):
        _check_same(old, plan.config, plan.config_defaults)
