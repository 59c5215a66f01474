"""The range test's settings as a plain frozen dataclass: what a study plan holds and stores
beside its results, and what the ``[range_test]`` table of a config file becomes.

Their defaults are THE range-test defaults: :func:`lrscope.range_test`'s signature, the config's
``[range_test]`` table, the study and the integrations all read :data:`RANGE_TEST_DEFAULTS`.

>>> s = RangeTestSettings(start=1e-5, steps=50)
>>> s.range_test_kwargs()["start_lr"], s.range_test_kwargs()["num_steps"]
(1e-05, 50)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from lrscope.rangetest.smoothing import DEFAULT_BETA, DEFAULT_DIVERGE_FACTOR
from lrscope.rangetest.suggest import HEADLINE

# Optimizer steps of a ramp given neither steps nor epochs.
DEFAULT_NUM_STEPS = 100


@dataclass(frozen=True)
class RangeTestSettings:
    """Arguments of :func:`lrscope.range_test`, with the names of the ``[range_test]`` table.

    ``val_every``: None is a tenth of the run, 0 no validation; ``val_examples`` is the size of
    the fixed validation subset.
    """

    start: float = 1e-7
    end: float = 10.0
    steps: int | None = None
    epochs: int | None = None
    mode: Literal["exp", "linear"] = "exp"
    beta: float = DEFAULT_BETA
    diverge_th: float = DEFAULT_DIVERGE_FACTOR
    accumulation_steps: int = 1
    val_every: int | None = None
    val_examples: int = 512
    prefer: str = HEADLINE

    def range_test_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`lrscope.range_test` (validation batches aside)."""
        return {"start_lr": self.start, "end_lr": self.end, "num_steps": self.steps,
                "epochs": self.epochs, "mode": self.mode, "beta": self.beta,
                "diverge_th": self.diverge_th, "accumulation_steps": self.accumulation_steps,
                "prefer": self.prefer}

    @property
    def validates(self) -> bool:
        return self.val_every != 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Every default of the range test, for the signatures and tables that name them.
RANGE_TEST_DEFAULTS = RangeTestSettings()
