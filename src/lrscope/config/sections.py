"""The sections every experiment file shares: the task keys (:class:`TaskConfig`, inherited at
the top level), the ``[optimizer]`` table (:class:`OptimizerConfig`) and the ``[range_test]``
table (:class:`RangeTestConfig`), with the checks their validators share. ``lrscope find``
(lrscope.config.find) and ``lrscope compare`` (lrscope.config.study) add their own keys next to
them.

>>> RangeTestConfig(steps=50).settings().steps, OptimizerConfig(name="adamw").resolved().momentum
(50, 0.9)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field, ValidationInfo, field_validator

from lrscope.config.base import ConfigModel
from lrscope.data.tasks import DEFAULT_TASK, Task, check_task_name, get_task
from lrscope.engines.colossalai_plugins import PLUGINS, plugin_optimizer_problem
from lrscope.engines.local import resolve_device
from lrscope.errors import InputError, did_you_mean
from lrscope.rangetest.settings import RANGE_TEST_DEFAULTS as DEFAULTS
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.rangetest.suggest import prefer_problem


def _optional_count() -> Any:
    """An optional whole number >= 1 (None: not set)."""
    return Field(default=None, ge=1)


def _check_names(task: str, model: str | None = None) -> None:
    # check_task_name's message starts with "task: " / "model: "; the config error names the
    # field itself, so only the reason is kept.
    try:
        check_task_name(task, model)
    except InputError as err:
        raise ValueError(str(err).split(": ", 1)[-1]) from None


class TaskConfig(ConfigModel):
    """Which task, model and data: the top-level keys of every experiment file."""

    task: str = DEFAULT_TASK
    model: str | None = None
    data_dir: str | None = None
    batch_size: int | None = _optional_count()
    limit_train: int | None = _optional_count()
    limit_test: int | None = _optional_count()
    loss: Literal["task", "cross_entropy"] = "task"
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    device: str = "auto"  # auto | cpu | cuda | cuda:i (the local engine's device)
    precision: Literal["bf16", "fp16"] | None = None  # autocast (fp16 with a GradScaler)
    clip_grad_norm: float | None = Field(default=None, gt=0.0)  # clip the gradient norm
    # torch threads per trial, capped to the usable cores (None: lrscope.trials.runners.threads)
    threads: int | None = _optional_count()

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        _check_names(task)
        return task

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str | None, info: ValidationInfo) -> str | None:
        if model is not None and "task" in info.data:
            _check_names(info.data["task"], model)
        return model

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        try:
            resolve_device(device)
        except InputError as err:
            raise ValueError(str(err).split(": ", 1)[-1]) from None
        return device

    @field_validator("label_smoothing")
    @classmethod
    def _smoothing_needs_cross_entropy(cls, value: float, info: ValidationInfo) -> float:
        if value > 0 and info.data.get("loss") != "cross_entropy":
            raise ValueError('needs loss = "cross_entropy" (the task\'s own loss has none)')
        return value

    def build_task(self) -> Task:
        """The task these keys describe (see :func:`lrscope.data.tasks.get_task`), training with
        the configured loss: everything that reads ``task.loss_fn`` (the range test, trials,
        evaluation, worker processes) gets the same one."""
        task = get_task(self.task, model=self.model, data_dir=self.data_dir,
                        batch_size=self.batch_size, limit_train=self.limit_train,
                        limit_test=self.limit_test)
        if self.loss == "task":
            return task
        # A partial of a module-level function, so that the task still pickles (processes).
        loss = functools.partial(torch.nn.functional.cross_entropy,
                                 label_smoothing=self.label_smoothing)
        return dataclasses.replace(task, loss_fn=loss)

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)


class OptimizerConfig(ConfigModel):
    """The ``[optimizer]`` table. Its LR is set by the range test or the schedule."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float | None = Field(default=None, ge=0.0, lt=1.0)  # None: 0.9 (beta1 for Adam)
    nesterov: bool = False
    weight_decay: float | None = Field(default=None, ge=0.0)  # None: torch's default
    beta2: float = Field(default=0.999, gt=0.0, lt=1.0)

    @field_validator("nesterov")
    @classmethod
    def _nesterov_needs_sgd_momentum(cls, value: bool, info: ValidationInfo) -> bool:
        if value and (info.data.get("name") != "sgd" or info.data.get("momentum") == 0):
            raise ValueError('needs name = "sgd" and momentum > 0')
        return value

    def resolved(self) -> OptimizerConfig:
        """A copy with the defaults that depend on ``name`` written out.

        >>> OptimizerConfig(name="adamw").resolved().weight_decay
        0.01
        """
        decay = self.weight_decay
        if decay is None:
            decay = 0.01 if self.name == "adamw" else 0.0
        momentum = 0.9 if self.momentum is None else self.momentum
        return self.model_copy(update={"momentum": momentum, "weight_decay": decay})

    def build(self, params: Iterable[Any], lr: float = 1e-3) -> torch.optim.Optimizer:
        """A torch optimizer over ``params`` (parameters or param groups) with this setup.

        >>> OptimizerConfig(name="adam").build([torch.zeros(1, requires_grad=True)]).defaults[
        ...     "betas"]
        (0.9, 0.999)
        """
        full = self.resolved()
        momentum, decay = float(full.momentum or 0.0), float(full.weight_decay or 0.0)
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=self.nesterov,
                                   weight_decay=decay)
        kind = torch.optim.Adam if self.name == "adam" else torch.optim.AdamW
        return kind(params, lr=lr, betas=(momentum, self.beta2), weight_decay=decay)


class RangeTestConfig(ConfigModel):
    """The ``[range_test]`` table: arguments of :func:`lrscope.range_test`."""

    # The defaults are RangeTestSettings' (lrscope.rangetest.settings), the range test's own.
    start: float = Field(default=DEFAULTS.start, gt=0.0)
    end: float = Field(default=DEFAULTS.end, gt=0.0)
    # None: DEFAULT_NUM_STEPS, or as many as `epochs` give
    steps: int | None = Field(default=DEFAULTS.steps, ge=2)
    epochs: int | None = Field(default=DEFAULTS.epochs, ge=1)
    mode: Literal["exp", "linear"] = DEFAULTS.mode
    beta: float = Field(default=DEFAULTS.beta, ge=0.0, lt=1.0)
    diverge_th: float = Field(default=DEFAULTS.diverge_th, gt=1.0)
    accumulation_steps: int = Field(default=DEFAULTS.accumulation_steps, ge=1)
    # None: a tenth of the run; 0: none
    val_every: int | None = Field(default=DEFAULTS.val_every, ge=0)
    # the fixed validation subset of the test set
    val_examples: int = Field(default=DEFAULTS.val_examples, ge=1)
    prefer: str = DEFAULTS.prefer  # a rule of lrscope.rangetest.suggest.HEADLINE_RULES

    @field_validator("end")
    @classmethod
    def _end_above_start(cls, end: float, info: ValidationInfo) -> float:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"must be greater than start = {start!r}")
        return end

    @field_validator("epochs")
    @classmethod
    def _steps_or_epochs(cls, epochs: int | None, info: ValidationInfo) -> int | None:
        return check_steps_or_epochs(epochs, info)

    @field_validator("prefer")
    @classmethod
    def _headline_rule(cls, prefer: str) -> str:
        problem = prefer_problem(prefer)
        if problem is not None:
            raise ValueError(problem)
        return prefer

    def resolved(self, steps: int) -> RangeTestConfig:
        """A copy with the run's ``steps`` (when not given as epochs) and its validation cadence
        (unset: ten times per run) written out."""
        val_every = max(1, steps // 10) if self.val_every is None else self.val_every
        return self.model_copy(update={
            "steps": self.steps if self.epochs is not None else steps, "val_every": val_every})

    def settings(self) -> RangeTestSettings:
        """The same values as the plain dataclass the range test and the study read."""
        return RangeTestSettings(**self.model_dump())

    def range_test_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`lrscope.range_test` (no validation batches)."""
        return self.settings().range_test_kwargs()


def engine_options(engine: str, plugin: str | None, device: str) -> dict[str, Any]:
    """Keyword arguments of :func:`lrscope.engines.get_engine`: the local engine's device, or
    the ColossalAI plugin (ColossalAI places each rank on its own device)."""
    if engine == "colossalai":
        return {"plugin": plugin} if plugin else {}
    return {"device": device}


def check_steps_or_epochs(epochs: int | None, info: ValidationInfo) -> int | None:
    """For an ``epochs`` validator: a budget is given in steps or in epochs, not both."""
    if epochs is not None and info.data.get("steps") is not None:
        raise ValueError("give steps or epochs, not both")
    return epochs


def check_plugin_name(plugin: str | None, info: ValidationInfo | None = None) -> str | None:
    """``plugin`` when it names a ColossalAI plugin (whether this machine can run it is the
    engine's to say) that can train the config's optimizer, for config validators; else
    ValueError with the closest name, or with the plugin's optimizer rule
    (:func:`~lrscope.engines.colossalai_plugins.plugin_optimizer_problem`) when the engine is
    colossalai. ``info.data`` must hold ``engine`` and ``optimizer`` (declare them before
    ``plugin``)."""
    if plugin is not None and plugin not in PLUGINS:
        raise ValueError(f"unknown ColossalAI plugin{did_you_mean(plugin, PLUGINS)}; choose one "
                         f"of {', '.join(PLUGINS)}")
    data = info.data if info is not None else {}
    optimizer = data.get("optimizer")
    if plugin is not None and data.get("engine") == "colossalai" and optimizer is not None:
        problem = plugin_optimizer_problem(plugin, optimizer.name,
                                           given=f' (optimizer.name = "{optimizer.name}")')
        if problem is not None:
            raise ValueError(problem)
    return plugin
