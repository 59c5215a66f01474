"""Learning-rate schedules as pure functions of the optimizer step.

A schedule is an immutable value: ``s(step)`` is the LR at an optimizer step, ``s.momentum(step)``
the momentum for the families that cycle it (onecycle, cyclic), ``s.spec()`` the spec that
:func:`parse` reads back. :func:`apply_schedule` and :class:`ScheduleLR` put one on a torch
optimizer.

>>> from lrscope import schedules
>>> s = schedules.Ramp(start_lr=1e-3, end_lr=1.0, total_steps=3)
>>> [round(s(i), 6) for i in range(4)]
[0.001, 0.01, 0.1, 1.0]
>>> s = schedules.parse("onecycle(max_lr=1.1, total_steps=2345)")
>>> round(s(0), 6), round(s(703), 6), s.momentum(0)
(0.044, 1.1, 0.95)
>>> sorted(schedules.REGISTRY)[:4]
['compress', 'constant', 'cosine', 'cosine_restarts']
>>> schedules.parse("warmup(step(lr=1, step_size=100, gamma=0.5), steps=50)")(150)
0.5
"""

from lrscope.schedules.base import REGISTRY, Schedule, register
from lrscope.schedules.combinators import Join, Warmup
from lrscope.schedules.compress import Compress
from lrscope.schedules.constant import Constant
from lrscope.schedules.cosine import Cosine, CosineRestarts
from lrscope.schedules.cyclic import Cyclic
from lrscope.schedules.linear import Linear
from lrscope.schedules.onecycle import OneCycle
from lrscope.schedules.polynomial import InverseSqrt, Polynomial
from lrscope.schedules.ramp import Ramp
from lrscope.schedules.seed import SEED_SPECS, SEED_TOTAL_STEPS
from lrscope.schedules.spec import parse
from lrscope.schedules.step import ExponentialDecay, MultiStepDecay, StepDecay
from lrscope.schedules.torch_adapter import ScheduleLR, apply_schedule, group_ratios
from lrscope.schedules.wsd import WarmupStableDecay

__all__ = [
    "REGISTRY",
    "SEED_SPECS",
    "SEED_TOTAL_STEPS",
    "Compress",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "ExponentialDecay",
    "InverseSqrt",
    "Join",
    "Linear",
    "MultiStepDecay",
    "OneCycle",
    "Polynomial",
    "Ramp",
    "Schedule",
    "ScheduleLR",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
    "apply_schedule",
    "group_ratios",
    "parse",
    "register",
]
