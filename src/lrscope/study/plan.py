"""What a study runs, resolved into plain frozen dataclasses (no pydantic: a config file, the
CLI or the Python API build one; the study only reads it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrscope.rangetest.settings import RangeTestSettings
from lrscope.study.recipes import check_budget, explicit, with_lr_scales
from lrscope.study.resume import MAY_GROW, REPORT_ONLY
from lrscope.trials.runners import Runner, TrialSetup, make_runner
from lrscope.trials.trial import (
    Evaluation,
    OptimizerFactory,
    TrainOptions,
    TrialData,
    TrialResult,
    sgd,
)


@dataclass(frozen=True)
class StudyPlan:
    """Everything a study needs, resolved."""

    name: str
    task: TrialData
    config: dict[str, Any]  # the resolved config, stored with the run; a rerun must match it
    seeds: tuple[int, ...]
    steps: int
    eval_every: int
    make_optimizer: OptimizerFactory = dataclasses.field(default_factory=sgd)
    schedules: tuple[str, ...] = ()  # explicit specs; empty: use the recipe
    recipe: str = "smith"
    lr_scales: tuple[float, ...] | None = None  # every schedule at each multiple of its peak LR
    range_test: RangeTestSettings | None = dataclasses.field(
        default_factory=RangeTestSettings)  # the ramp `lrscope find` runs, by default
    parallel: str = "none"  # the runner's name: see lrscope.trials.runners
    # the runners' settings by name, e.g. ray_address (None: unset); the runner reads its own
    runner_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    threads: int | None = None  # torch threads per trial (None: lrscope.trials.runners.threads)
    options: TrainOptions = dataclasses.field(default_factory=TrainOptions)  # AMP, clip, accum
    # every setting's default, in ``config``'s form: fills settings a stored study predates
    config_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    # keys of ``config`` a rerun may change (the latest wins) or extend (the run keeps the union
    # and runs only the new trials): lrscope.study.resume's policy; the rest must match
    report_only: tuple[str, ...] = REPORT_ONLY
    may_grow: tuple[str, ...] = MAY_GROW
    # made from parallel, runner_options and threads: a bad name, a setting it would not use or
    # a missing extra is an error here, before any work
    runner: Runner = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "runner", make_runner(self.parallel, self.runner_options,
                                                       self.threads))
        # A budget the schedules cannot run in is an error now, before any range test: listed
        # schedules say what in them does not fit, a recipe names the steps it needs.
        if self.schedules:
            with_lr_scales(explicit(list(self.schedules), self.steps), self.lr_scales, self.steps)
        else:
            check_budget(self.recipe, self.steps)

    def trial_setup(self) -> TrialSetup:
        """What every trial of this study shares (all the runners need to know)."""
        return TrialSetup(self.task, self.steps, self.eval_every, self.make_optimizer, self.options)


@dataclass(frozen=True)
class TrialEvent:
    """What a progress display hears about: a trial started, skipped or ended."""

    key: str
    index: int
    total: int
    # "skipped" (done) | "busy" (running in another process) | "running" | "finished" |
    # "diverged"
    state: str
    result: TrialResult | None = None
    evaluation: Evaluation | None = None  # with state "running": the latest evaluation


def steps_in_epochs(epochs: int, steps_per_epoch: int, accumulation_steps: int,
                    minimum: int = 1) -> int:
    """Optimizer steps of ``epochs`` passes over the data (each optimizer step takes
    ``accumulation_steps`` batches), at least ``minimum``: the budget rule of the config and of
    :func:`lrscope.compare`.

    >>> steps_in_epochs(3, 10, 4), steps_in_epochs(1, 1, 4, minimum=2)
    (7, 2)
    """
    return max(minimum, epochs * steps_per_epoch // accumulation_steps)


def default_eval_every(steps_per_epoch: int | None, steps: int) -> int:
    """Evaluate once per epoch (as the seed study did), or ten times per run when the data has
    no length: the cadence of the config and of :func:`lrscope.compare` when none is given.

    >>> default_eval_every(50, 1000), default_eval_every(None, 1000), default_eval_every(None, 5)
    (50, 100, 1)
    """
    return max(1, steps_per_epoch or steps // 10)
