"""How a batch becomes a loss: a torch criterion on (inputs, targets), or the user's function.

>>> import torch
>>> score = make_scorer(torch.nn.functional.mse_loss, None)
>>> float(score(torch.nn.Identity(), (torch.ones(2), torch.zeros(2))))
1.0
>>> score = make_scorer(None, lambda batch: batch["loss"])
>>> score(torch.nn.Identity(), {"loss": torch.tensor(0.5)}).item()
0.5
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lrscope.errors import InputTypeError

LossFn = Callable[[Any, Any], torch.Tensor]
StepFn = Callable[..., torch.Tensor]
Scorer = Callable[[nn.Module, Any], torch.Tensor]


def make_scorer(loss_fn: LossFn | None, step_fn: StepFn | None,
                where: str = "range_test") -> Scorer:
    """A function ``(model, batch) -> loss``.

    With ``step_fn``: ``step_fn(batch)``, or ``step_fn(model, batch)`` when it takes two
    positional arguments (the model as the engine set it up). Otherwise the batch is
    ``(inputs, targets, *extras)`` scored as ``loss_fn(model(inputs), targets)`` (extras such as
    sample ids or weights are passed over, as torch-lr-finder does).
    ``where`` names the caller in error messages.
    """
    if step_fn is not None:
        if not callable(step_fn):
            raise InputTypeError(f"{where}: step_fn must be a function batch -> loss")
        user_fn = step_fn
        if positional_arity(user_fn) >= 2:
            return lambda model, batch: user_fn(model, batch)
        return lambda model, batch: user_fn(batch)
    if loss_fn is None or not callable(loss_fn):
        raise InputTypeError(f"{where}: give loss_fn (e.g. torch.nn.functional.cross_entropy) "
                             "or step_fn=lambda batch: loss")
    criterion = loss_fn

    def score(model: nn.Module, batch: Any) -> torch.Tensor:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise InputTypeError(
                f"{where}: a batch is a {type(batch).__name__}, not an (inputs, targets, "
                "*extras) tuple; for other batches pass step_fn=lambda batch: loss")
        return criterion(model(batch[0]), batch[1])

    return score


def positional_arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` requires (1 when it cannot be inspected).

    >>> positional_arity(lambda batch: 0), positional_arity(lambda model, batch, k=1: 0)
    (1, 2)
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds and p.default is p.empty)
