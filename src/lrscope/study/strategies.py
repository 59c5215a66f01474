"""The strategies a schedule study has, and the rule for its budget (one home: the API, the
config and the CLI check here; :mod:`lrscope.study.predict` runs ``"predict"``).

``"full"`` trains every candidate at every seed; ``"predict"`` trains a few and predicts the
rest from a loss-curve law, within ``budget``: a fraction of the full study's trial steps (the
range test included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrscope.errors import InputError, InputTypeError

STRATEGIES = ("full", "predict")
# The default budget, as a fraction of the full study's trial steps: a sixth for the default
# suite, a twelfth with lr_scales (three times the candidates, and the law covers the scales).
DEFAULT_BUDGET = 1 / 6
DEFAULT_BUDGET_SCALED = 1 / 12



def check_strategy(where: str, strategy: object, budget: object) -> tuple[str, float | None]:
    """``(strategy, budget)`` checked: one InputError line naming the field, before any work.

    >>> check_strategy("compare", "predict", 0.2), check_strategy("compare", "full", None)
    (('predict', 0.2), ('full', None))
    >>> check_strategy("compare", "predict", 1.5)
    Traceback (most recent call last):
    lrscope.errors.InputError: compare: budget=1.5 must be a fraction of the full study's \
trial steps, 0 < budget <= 1 (e.g. 0.17), or None for the default
    """
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InputError(f"{where}: strategy={strategy!r} must be one of "
                         f"{', '.join(map(repr, STRATEGIES))}")
    if budget is None:
        return strategy, None
    message = (f"{where}: budget={budget!r} must be a fraction of the full study's trial steps, "
               "0 < budget <= 1 (e.g. 0.17), or None for the default")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise InputTypeError(message)
    if not (math.isfinite(budget) and 0 < budget <= 1):
        raise InputError(message)
    if strategy == "full" and budget != 1:
        raise InputError(f"{where}: budget={budget!r} only applies to strategy='predict' (the "
                         "full study trains every trial); leave it out or add "
                         "strategy='predict'")
    return strategy, float(budget)


def default_budget(lr_scales: Sequence[float] | None) -> float:
    """The budget when none is given (see :data:`DEFAULT_BUDGET`)."""
    return DEFAULT_BUDGET_SCALED if lr_scales else DEFAULT_BUDGET
