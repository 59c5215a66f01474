"""Learning-rate schedules as pure functions of the optimizer step.

>>> from lrscope import schedules
>>> s = schedules.Ramp(start_lr=1e-3, end_lr=1.0, total_steps=3)
>>> [round(s(i), 6) for i in range(4)]
[0.001, 0.01, 0.1, 1.0]
"""

from lrscope.schedules.base import REGISTRY, Schedule
from lrscope.schedules.ramp import Ramp
from lrscope.schedules.torch_adapter import ScheduleLR, apply_schedule, group_ratios

__all__ = ["REGISTRY", "Ramp", "Schedule", "ScheduleLR", "apply_schedule", "group_ratios"]
