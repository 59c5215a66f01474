"""Which candidates a ``strategy="predict"`` study trains first, to fit the law: the fit runs.

A loss-curve law separates what the LR area buys (a power law in the summed LR) from what
annealing buys (the drop when the LR decreases), so it needs one run that barely anneals and
one that anneals fully over a large area: the least annealed candidate (the highest final LR
over its peak: constant when the suite has it) and the most annealed one with the largest LR
area (cosine-like). With ``lr_scales`` the law must also see how the peak LR moves the curve:
the least annealed candidate at the lowest and at the highest scale too. They are chosen among
the candidates, so they count as measured rows; read in closed form from each schedule
(``schedule(t)`` at every step), nothing is trained to choose them.

>>> from lrscope.study.recipes import explicit
>>> suite = explicit(["cosine(lr=0.1)", "constant(lr=0.1)", "linear(lr=0.1)"], 100)
>>> fit_runs(lr_sequences(suite, 100), suite.origins)
('constant(lr=0.1)', 'cosine(lr=0.1)')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lrscope.study.predict.curves import lr_sequence
from lrscope.study.recipes import Suite

# Final/peak ratios this close count as equally annealed (then the larger LR area decides).
_SAME_ANNEALING = 0.02


def lr_sequences(suite: Suite, steps: int) -> dict[str, np.ndarray]:
    """Every candidate's LR at optimizer steps 0..steps-1 (what the law reads)."""
    return {label: lr_sequence(schedule, steps) for label, schedule in suite.schedules}


def annealed(lrs: np.ndarray) -> float:
    """How far a run ends below its peak: 1 - final LR / peak LR (0: constant; 1: to zero).

    >>> annealed(np.array([0.1, 0.1])), annealed(np.array([0.0, 0.2, 0.05]))
    (0.0, 0.75)
    """
    peak = float(np.max(lrs)) if len(lrs) else 0.0
    return 1.0 - float(lrs[-1]) / peak if peak > 0 else 0.0


def fit_runs(lrs: Mapping[str, np.ndarray],
             origins: Mapping[str, tuple[str, float]]) -> tuple[str, ...]:
    """The fit runs' labels (see the module docstring), in a fixed order, each once."""
    scale_of = {label: origins.get(label, (label, 1.0))[1] for label in lrs}
    base_of = {label: origins.get(label, (label, 1.0))[0] for label in lrs}
    # the shapes at the suite's own peak (scale 1; every candidate when there are no scales)
    home = [label for label in lrs if scale_of[label] == 1.0] or list(lrs)
    least = _largest_area(lrs, home, min(annealed(lrs[label]) for label in home))
    most = _largest_area(lrs, home, max(annealed(lrs[label]) for label in home))
    chosen = [least, most]
    scales = sorted(set(scale_of.values()))
    if len(scales) > 1:
        same_shape = [label for label in lrs if base_of[label] == base_of[least]]
        chosen += [label for scale in (scales[0], scales[-1]) for label in same_shape
                   if scale_of[label] == scale]
    return tuple(dict.fromkeys(chosen))


def _largest_area(lrs: Mapping[str, np.ndarray], labels: list[str], annealing: float) -> str:
    """Of the ``labels`` annealed about as far as ``annealing``, the one with the largest LR
    area (it tells the law the most about what the area buys); the first in suite order on a
    tie (max() keeps the first)."""
    alike = [label for label in labels
             if abs(annealed(lrs[label]) - annealing) <= _SAME_ANNEALING]
    return max(alike, key=lambda label: float(np.sum(lrs[label])))
