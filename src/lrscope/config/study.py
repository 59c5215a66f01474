"""The study config: everything ``lrscope compare`` needs, read from TOML and flags.

It shares the task, optimizer and range-test tables with ``lrscope find``
(lrscope.config.sections) and their error messages (file, line, dotted field, value, what is
allowed). Example::

    task = "fashion-mnist"
    seeds = 3
    epochs = 5
    schedules = ["step(lr=1, step_size=100, gamma=0.5)", "onecycle(max_lr=1.1)"]

    [optimizer]
    name = "sgd"
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from lrscope.config.base import load_model
from lrscope.config.sections import (
    OptimizerConfig,
    RangeTestConfig,
    TaskConfig,
    check_plugin_name,
    check_steps_or_epochs,
    engine_options,
)
from lrscope.data.tasks import Task, is_user_task
from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.study.plan import steps_in_epochs
from lrscope.study.recipes import RECIPES, budget_problem, lr_scales_problem
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.strategies import check_strategy
from lrscope.trials.runners import check_name

DEFAULT_EPOCHS = 20
DEFAULT_VAL_FRACTION = 0.1  # built-in tasks: a tenth of the training set selects


class StudyConfig(TaskConfig):
    """The study: which schedules (a recipe from the range test, or listed), seeds and budget."""

    name: str = "study"
    seeds: int | tuple[int, ...] = 3  # a count (seeds 0..n-1) or the seeds themselves
    # recipe and schedules come before steps: the steps validator checks the budget against them
    recipe: str = "smith"
    schedules: tuple[str, ...] = ()
    steps: int | None = Field(default=None, ge=1)
    # every schedule also at these multiples of its peak LR, e.g. [0.3, 1, 3]; None: only 1
    lr_scales: tuple[float, ...] | None = None
    epochs: int | None = Field(default=None, ge=1)  # neither: DEFAULT_EPOCHS epochs
    eval_every: int | None = Field(default=None, ge=1)  # None: once per epoch, as the seed did
    accumulation_steps: int = Field(default=1, ge=1)  # micro-batches per optimizer step
    # held out of training to select on (the test set only reports); None: 0.1 for built-in
    # tasks, none for a user's task (unless it brings val_x/val_y)
    val_fraction: float | None = Field(default=None, ge=0.0, lt=1.0)
    target_accuracy: float | None = Field(default=None, gt=0.0, le=1.0)
    # what the schedules are ranked on: "metric[:min|max]" (lrscope.study.stats.ranking)
    rank_by: str = "loss:min"
    # after the study: retrain the best and its inseparable rivals at N fresh seeds
    # (lrscope.study.confirm); None: no confirmation
    confirm_seeds: int | None = Field(default=None, ge=1)
    # "full" trains every (schedule, seed); "predict" trains a few and predicts the rest from a
    # loss-curve law, under ``budget`` (a fraction of the full study's trial steps; None: its
    # default) (lrscope.study.predict); neither is part of the study's identity
    strategy: Literal["full", "predict"] = "full"
    budget: float | None = None
    parallel: str = "auto"  # a runner's name (lrscope.trials.runners)
    # --parallel ray's settings (lrscope.trials.runners.ray reads them): the cluster to join
    # (None: $RAY_ADDRESS, else a local cluster) and what each trial asks of it (None GPUs: a
    # quarter GPU on CUDA)
    ray_address: str | None = None
    ray_cpus_per_trial: float = Field(default=1.0, gt=0.0)
    ray_gpus_per_trial: float | None = Field(default=None, ge=0.0)
    engine: Literal["local", "colossalai"] = "local"
    out: str | None = None
    optimizer: OptimizerConfig = OptimizerConfig()
    plugin: str | None = None  # after `optimizer`, which its check reads
    range_test: RangeTestConfig = RangeTestConfig()  # the ramp of `lrscope find`
    run_range_test: bool = True  # false: no range test (then list schedules or recipe "seed")

    @field_validator("seeds")
    @classmethod
    def _good_seeds(cls, seeds: int | tuple[int, ...]) -> int | tuple[int, ...]:
        if isinstance(seeds, int):
            if seeds < 1:
                raise ValueError("must be at least 1 (the number of seeds) or a list of seeds")
            return seeds
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError("must be distinct seeds >= 0")
        return seeds

    @field_validator("steps")
    @classmethod
    def _enough_steps_for_the_recipe(cls, steps: int | None,
                                     info: ValidationInfo) -> int | None:
        # Only when the recipe builds the suite (listed schedules report their own problems),
        # and only when recipe and schedules are valid themselves.
        if steps is not None and "recipe" in info.data and info.data.get("schedules") == ():
            problem = budget_problem(info.data["recipe"], steps)
            if problem is not None:
                raise ValueError(problem)
        return steps

    @field_validator("parallel")
    @classmethod
    def _known_runner(cls, parallel: str) -> str:
        try:
            return check_name(parallel)
        except InputError as err:
            raise ValueError(str(err)) from None

    @field_validator("lr_scales")
    @classmethod
    def _good_scales(cls, scales: tuple[float, ...] | None) -> tuple[float, ...] | None:
        problem = None if scales is None else lr_scales_problem(scales)
        if problem is not None:
            raise ValueError(problem)
        return scales

    @field_validator("epochs")
    @classmethod
    def _steps_or_epochs(cls, epochs: int | None, info: ValidationInfo) -> int | None:
        return check_steps_or_epochs(epochs, info)

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, recipe: str) -> str:
        if recipe not in RECIPES:
            raise ValueError(f"must be one of {', '.join(RECIPES)}")
        return recipe

    @field_validator("schedules")
    @classmethod
    def _parseable(cls, schedules: tuple[str, ...]) -> tuple[str, ...]:
        for spec in schedules:
            try:
                # values only: the LR's finiteness is checked over the run's own steps
                parse(spec).with_total_steps(1_000_000)
            except InputError as err:
                raise ValueError(str(err)) from None
        return schedules

    @field_validator("rank_by")
    @classmethod
    def _known_direction(cls, rank_by: str) -> str:
        try:  # stored as name:direction, so that "loss" and "loss:min" resume each other
            metric = RankingMetric.parse(rank_by, where="rank_by")
        except (InputError, TypeError) as err:
            raise ValueError(str(err).removeprefix(f"rank_by={rank_by!r}: ")) from None
        return f"{metric.name}:{metric.direction}"

    @field_validator("budget")
    @classmethod
    def _budget_for_predict(cls, budget: float | None, info: ValidationInfo) -> float | None:
        if "strategy" not in info.data:  # the strategy's own error is reported
            return budget
        try:  # the one rule lrscope.compare(budget=) follows too
            return check_strategy("budget", info.data["strategy"], budget)[1]
        except InputError as err:
            raise ValueError(str(err).removeprefix(f"budget: budget={budget!r} ")) from None

    @field_validator("plugin")
    @classmethod
    def _known_plugin(cls, plugin: str | None, info: ValidationInfo) -> str | None:
        return check_plugin_name(plugin, info)

    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else self.seeds

    def resolved_val_fraction(self) -> float:
        if self.val_fraction is not None:
            return self.val_fraction
        return 0.0 if is_user_task(self.task) else DEFAULT_VAL_FRACTION

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps per trial: ``steps``, or ``epochs`` passes over the data (with
        accumulation, each optimizer step takes ``accumulation_steps`` batches)."""
        if self.steps is not None:
            return self.steps
        return steps_in_epochs(self.epochs or DEFAULT_EPOCHS, steps_per_epoch,
                               self.accumulation_steps)

    def engine_options(self) -> dict[str, Any]:
        return engine_options(self.engine, self.plugin, self.device)

    def resolved_values(self, task: Task, steps: int, eval_every: int) -> dict[str, Any]:
        """What the study used where this config left a setting to its default, in the config's
        shape: the model, batch size, budget in steps, evaluation cadence, validation fraction,
        optimizer momentum and weight decay, and the range test's steps. The report shows them
        in place of the config's nulls (issue 19 item 10); ``target_accuracy`` stays None when
        unset: the report picks it from the results."""
        values: dict[str, Any] = {
            "model": task.model_name or self.model, "batch_size": task.batch_size,
            "steps": steps, "eval_every": eval_every,
            "val_fraction": self.resolved_val_fraction(),
            "target_accuracy": self.target_accuracy,
            "optimizer": self.optimizer.resolved().model_dump(mode="json"),
        }
        if self.run_range_test:
            from lrscope.rangetest.loop import resolve_steps

            rt = self.range_test
            rt_steps = resolve_steps(rt.steps, rt.epochs, task.range_batches(0),
                                     rt.accumulation_steps)
            values["range_test"] = rt.resolved(rt_steps).model_dump(mode="json")
        return values


def load_study_config(path: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None,
                      flags: Mapping[str, str] | None = None) -> StudyConfig:
    """The study config from TOML ``path`` (None: defaults) with ``overrides`` on top."""
    return load_model(StudyConfig, path, overrides, flags)
