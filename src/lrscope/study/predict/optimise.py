"""Beyond the suite (issue 18 item 2): the schedule a fitted law predicts best.

The family searched is warmup-stable-decay (Hägele et al. 2024; the multi-power law's own optimum
is WSD-like, Luo et al. 2025): the study's peak LR and warmup, then a cooldown of free length
(any fraction of the run), shape (linear, cosine, 1-sqrt) and final LR (0 to a fifth of the
peak). Cosine and the suite's WSD are in the comparison too, so the result is never predicted
worse than either: the law decides, and the study then trains it like any candidate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.schedules.wsd import COOLDOWNS

if TYPE_CHECKING:
    from lrscope.study.predict.law import FittedLaw

FRACTIONS = np.linspace(0.05, 1.0, 20)
FINAL_LRS = (0.0, 0.01, 0.05, 0.2)  # times the peak


def wsd_spec(peak: float, total: int, warmup: int, fraction: float, cooldown: str,
             floor: float) -> str:
    decay = int(np.clip(round(fraction * (total - warmup)), 1, total - warmup))
    return (f"wsd(lr={peak:.6g}, warmup_steps={warmup}, decay_steps={decay}, "
            f"cooldown='{cooldown}', min_lr={floor * peak:.6g})")


def predicted_final(fitted: FittedLaw, spec: str, total: int) -> float:
    lrs = np.array(parse(spec, total_steps=total).lrs(total))
    return float(fitted.predict(lrs, np.array([total]))[0])


def best_wsd(fitted: FittedLaw, total_steps: int, peak_lr: float, warmup_steps: int) -> str:
    """The spec the law predicts best (see the module docstring); peak ``peak_lr``."""
    if total_steps < 2 or not peak_lr > 0 or not 0 <= warmup_steps < total_steps - 1:
        raise InputError(f"optimise_schedule: total_steps={total_steps}, peak_lr={peak_lr}, "
                         f"warmup_steps={warmup_steps}: give total_steps >= 2, a positive "
                         "peak_lr and fewer warmup steps than total_steps - 1")
    peak = float(f"{peak_lr:.6g}")
    if peak > peak_lr:  # rounding must never raise the peak above what was asked
        peak = float(np.nextafter(peak_lr, 0))
    scored: dict[str, float] = {}

    def score(spec: str) -> float:
        if spec not in scored:
            value = predicted_final(fitted, spec, total_steps)
            scored[spec] = value if np.isfinite(value) else np.inf
        return scored[spec]

    for cooldown in COOLDOWNS:
        for floor in FINAL_LRS:
            values = [score(wsd_spec(peak, total_steps, warmup_steps, f, cooldown, floor))
                      for f in FRACTIONS]
            i = int(np.argmin(values))
            lo, hi = FRACTIONS[max(i - 1, 0)], FRACTIONS[min(i + 1, len(FRACTIONS) - 1)]
            if hi > lo:
                minimize_scalar(lambda f, c=cooldown, m=floor: score(
                    wsd_spec(peak, total_steps, warmup_steps, f, c, m)),
                    bounds=(lo, hi), method="bounded", options={"xatol": 0.005})
    warm = max(warmup_steps, 0)
    references = [f"cosine(lr={peak:.6g}, warmup_steps={warm})",
                  f"wsd(lr={peak:.6g}, warmup_steps={warm}, "
                  f"decay_steps={max(1, total_steps // 5)})"]
    for spec in references:
        score(spec)
    return min(scored, key=lambda s: (scored[s], s))
