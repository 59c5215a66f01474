"""The experiment file of ``lrscope find``: TOML, validated, every error one line with its place.

A find config (every key optional; these are the defaults)::

    task = "digits"          # or "fashion-mnist", "mnist", "package.module:function"
    model = "mlp"            # the task's default when left out
    # data_dir = "/path/to/idx"
    # batch_size = 64
    # limit_train = 1000
    # limit_test = 500
    seed = 0
    seeds = 1                # range tests on as many data orders (seed, seed + 1, ...)
    engine = "local"         # local | colossalai
    # plugin = "torch_ddp"   # torch_ddp | hybrid | gemini | low_level_zero (colossalai only)
    # out = "runs/find-digits"

    [optimizer]
    name = "sgd"             # sgd | adam | adamw
    momentum = 0.9           # SGD momentum, or Adam's beta1
    weight_decay = 0.0

    [range_test]
    start = 1e-7
    end = 10.0
    steps = 100              # or epochs = 2
    mode = "exp"             # exp | linear
    val_every = 10           # validation loss every N steps (0: none)

The task keys, ``[optimizer]`` and ``[range_test]`` are the sections every experiment file
shares (lrscope.config.sections); this module adds find's own keys next to them.

>>> cfg = load_config(overrides={"range_test.steps": 50, "model": "lenet"})
>>> cfg.task, cfg.model, cfg.range_test.steps, cfg.optimizer.name
('digits', 'lenet', 50, 'sgd')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from lrscope.config.base import ConfigModel, load_model, save_config
from lrscope.config.sections import (
    OptimizerConfig,
    RangeTestConfig,
    TaskConfig,
    check_plugin_name,
    engine_options,
)
from lrscope.data.tasks import Task


class FindConfig(TaskConfig):
    """Everything ``lrscope find`` needs."""

    seed: int = Field(default=0, ge=0)
    # Range tests on this many data orders (seeds seed, seed + 1, ...), all from the seed's
    # initial weights; the headline is read off their combined curve.
    seeds: int = Field(default=1, ge=1)
    engine: Literal["local", "colossalai"] = "local"
    out: str | None = None
    optimizer: OptimizerConfig = OptimizerConfig()
    # The ColossalAI Booster plugin (None: the engine's default); after `optimizer`, which
    # its check reads.
    plugin: str | None = None
    range_test: RangeTestConfig = RangeTestConfig()

    @field_validator("plugin")
    @classmethod
    def _known_plugin(cls, plugin: str | None, info: ValidationInfo) -> str | None:
        return check_plugin_name(plugin, info)

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`lrscope.engines.get_engine` for this config."""
        return engine_options(self.engine, self.plugin, self.device)

    def data_seeds(self) -> tuple[int, ...]:
        """The seeds of the range tests' data orders.

        >>> FindConfig(seed=3, seeds=2).data_seeds()
        (3, 4)
        """
        return tuple(range(self.seed, self.seed + self.seeds))

    def planned_steps(self, task: Task) -> int:
        """The optimizer steps the range test will run (the range test's own rule)."""
        from lrscope.rangetest.loop import resolve_steps

        s = self.range_test
        return resolve_steps(s.steps, s.epochs, task.train_batches(self.seed),
                             s.accumulation_steps)

    def resolved(self, task: Task, out: Path, steps: int) -> FindConfig:
        """This config with every default that the run filled in written out, so that the saved
        config.toml reruns the same experiment even if lrscope's defaults change."""
        return self.model_copy(update={
            "model": task.model_name or self.model, "batch_size": task.batch_size,
            "out": str(out), "optimizer": self.optimizer.resolved(),
            "range_test": self.range_test.resolved(steps)})


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                flags: Mapping[str, str] | None = None) -> FindConfig:
    """The find config from TOML file ``path`` (None: defaults) with ``overrides`` on top.

    ``overrides`` maps dotted keys to values (None values are ignored); ``flags`` names the
    command-line flag of each, for error messages. See :func:`lrscope.config.base.load_model`.
    """
    return load_model(FindConfig, path, overrides, flags)


__all__ = ["ConfigModel", "FindConfig", "OptimizerConfig", "RangeTestConfig", "TaskConfig",
           "load_config", "load_model", "save_config"]
