"""The one evaluation rule: a model in eval mode, no gradients, every loss weighted by the
number of examples in its batch, accuracy only for tasks with classes. The range test's
validation, a trial's evaluation and the batched runner's all count with it.

>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> y = torch.tensor([0, 1, 1, 0])
>>> batches = [(torch.randn(4, 3), y), (torch.randn(2, 3), y[:2])]
>>> ce = torch.nn.functional.cross_entropy
>>> loss, accuracy = evaluate_pairs(model, batches, ce, classes=True)
>>> 0 <= accuracy <= 1, model.training
(True, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrscope.data.batching import to_device


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model.eval()`` for the ``with`` body, then every module's own flag back as it was (a
    BatchNorm the user froze in eval mode stays frozen; ``model.train()`` would unfreeze it)."""
    flags = [module.training for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in zip(model.modules(), flags, strict=True):
            module.training = flag


@dataclass(frozen=True)
class Evaluation:
    """Metrics after ``step`` optimizer steps: the test set's (``loss``, ``accuracy``; reported
    only) and the validation split's (``val_loss``, ``val_accuracy``; what a study selects on),
    None where not measured (accuracies for tasks without classes). ``metrics``: every
    selection metric a user's ``evaluate(model)`` returned, by name."""

    step: int
    loss: float | None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Totals:
    """Running sums of one evaluation: loss x examples, correct predictions, examples."""

    loss: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, mean_loss: float, examples: int, correct: int = 0) -> None:
        self.loss += mean_loss * examples
        self.correct += correct
        self.count += examples

    def mean_loss(self) -> float:
        return self.loss / self.count if self.count else float("nan")

    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def infer_classes(*targets: torch.Tensor) -> int:
    """The number of classes that 1-D integer ``targets`` index, else 0 (no classes).

    >>> infer_classes(torch.tensor([0, 2, 1])), infer_classes(torch.tensor([[0.5], [1.0]]))
    (3, 0)
    """
    given = [t for t in targets if len(t)]
    integral = all(t.dim() == 1 and not t.is_floating_point() and not t.is_complex()
                   and t.dtype != torch.bool for t in given)
    if not given or not integral:
        return 0
    return int(max(int(t.max()) for t in given)) + 1


def correct_predictions(outputs: torch.Tensor, targets: torch.Tensor) -> int:
    """Top-1 hits of class scores ``outputs`` (..., N, C) against ``targets`` (N,)."""
    return int((outputs.argmax(dim=-1) == targets).sum())


@torch.no_grad()
def evaluate_pairs(model: nn.Module, batches: Iterable[Any],
                   loss_fn: Callable[[Any, Any], torch.Tensor],
                   device: torch.device | None = None,
                   classes: bool = False) -> tuple[float, float | None]:
    """Mean loss over every example of ``(inputs, targets, *extras)`` batches, and top-1 accuracy
    when ``classes`` (else None); the model in eval mode, its flags put back afterwards."""
    totals = Totals()
    with evaluating(model):
        for batch in batches:
            x, y = (batch if device is None else to_device(batch, device))[:2]
            out = model(x)
            totals.add(float(loss_fn(out, y)), len(y),
                       correct_predictions(out, y) if classes else 0)
    return totals.mean_loss(), (totals.accuracy() if classes else None)
