"""From a validated config to the plain plan the library runs: the config-to-plan step that the
CLI and any other front end share (the study itself never sees pydantic).

>>> from lrscope.config.study import load_study_config
>>> plan = study_plan(load_study_config(overrides={"steps": 40, "seeds": 2, "limit_train": 64}))
>>> plan.steps, plan.seeds, plan.eval_every, type(plan.range_test).__name__
(40, (0, 1), 1, 'RangeTestSettings')
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from lrscope.config.sections import OptimizerConfig
from lrscope.config.study import StudyConfig
from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.study.plan import StudyPlan, default_eval_every
from lrscope.trials.runners import runner_settings
from lrscope.trials.trial import TrainOptions

# Config keys not stored with the study, so a rerun may change them (the rest resume under
# lrscope.study.resume's policy): where and how trials run, and whether to confirm the best
# afterwards (a run of its own), and the strategy that chooses which trials to train (a predict
# study's trials are the full study's; a later full run trains only what is missing).
NOT_COMPARED = ("out", "parallel", "threads", "device", "confirm_seeds", "strategy", "budget",
                *runner_settings())


def build_optimizer(config: OptimizerConfig, model: nn.Module) -> Any:
    """Module-level (picklable) optimizer factory for trials run in worker processes."""
    return config.build(model.parameters())


def study_plan(config: StudyConfig) -> StudyPlan:
    """The study ``config`` describes: its task (training with the configured loss, its data on
    the configured device), budget, seeds, optimizer, suite and range test."""
    task = config.build_task().with_validation(config.resolved_val_fraction())
    if config.engine == "local":  # ColossalAI places each rank's data itself
        task = task.to(config.resolved_device())
    per_epoch = task.steps_per_epoch
    if per_epoch is None and config.steps is None:
        raise InputError("epochs: the task's training data has no length; give steps = N")
    steps = config.total_steps(per_epoch or 1)
    for spec in config.schedules:  # before the range test: a LR that overflows is refused
        try:
            parse(spec, total_steps=steps)
        except InputError as err:
            raise InputError(f"schedules: {err}") from None
    eval_every = config.eval_every or default_eval_every(task.steps_per_epoch, steps)
    return StudyPlan(
        name=config.name,
        task=task,
        config={**config.model_dump(mode="json", exclude=set(NOT_COMPARED)),
                "resolved": config.resolved_values(task, steps, eval_every)},
        config_defaults=_stored_defaults(),
        seeds=config.seed_list(),
        steps=steps,
        eval_every=eval_every,
        make_optimizer=functools.partial(build_optimizer, config.optimizer),
        schedules=config.schedules,
        recipe=config.recipe,
        lr_scales=config.lr_scales,
        range_test=config.range_test.settings() if config.run_range_test else None,
        parallel=config.parallel,
        threads=config.threads,
        runner_options={key: getattr(config, key) for key in runner_settings()
                        if key in StudyConfig.model_fields},  # each runner reads its own
        options=TrainOptions(precision=config.precision, clip_grad_norm=config.clip_grad_norm,
                             accumulation_steps=config.accumulation_steps),
    )


def _stored_defaults() -> dict[str, Any]:
    """What a setting that a stored study predates meant then: its default, except the
    validation split, which studies before it did not hold out."""
    defaults = StudyConfig().model_dump(mode="json", exclude=set(NOT_COMPARED))
    defaults["val_fraction"] = 0.0
    return defaults
