"""A user's problem as ``lrscope.compare`` takes it: any model, data and metric, not only the
in-memory tensors of a :class:`~lrscope.data.tasks.base.Task`.

A trial needs four things of what it trains, and a Task and a Problem both answer them:
``make_model()``, ``stream(seed, count)`` (training batches in a seeded order), ``loss(model,
batch)`` and ``measure(model, device)`` (an evaluation). A Problem's batches are whatever
``train_data(seed)`` yields (a DataLoader with a seeded generator is the usual case), scored with
``loss_fn(model(inputs), targets)`` or ``step_fn(model, batch)``; its selection metrics come from
``evaluate(model)`` or from ``val_data``, its reported ones from ``test_data``.

>>> import torch
>>> x = torch.randn(32, 3); y = x @ torch.tensor([1.0, 2.0, 3.0])
>>> data = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
>>> p = Problem("r", lambda: torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0)),
...             lambda seed: data, loss_fn=torch.nn.functional.mse_loss, test_data=data)
>>> len(list(p.stream(0, 6))), p.steps_per_epoch
(6, 4)
>>> ev = p.measure(p.make_model(), torch.device("cpu"))
>>> ev.loss > 0, ev.accuracy is None, ev.val_loss is None
(True, True, True)
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrscope.data.batching import batch_stream, examples_in, to_device
from lrscope.data.evaluation import (
    Evaluation,
    Totals,
    evaluate_pairs,
    evaluating,
    infer_classes,
)
from lrscope.data.scoring import LossFn, Scorer, StepFn, make_scorer
from lrscope.errors import InputError, InputTypeError

Metrics = Mapping[str, float]


@dataclass(frozen=True, eq=False)
class Problem:
    """What :func:`lrscope.compare` trains: see the module docstring."""

    name: str
    make_model: Callable[[], nn.Module]
    train_data: Callable[[int], Iterable[Any]]
    loss_fn: LossFn | None = None
    step_fn: StepFn | None = None
    evaluate: Callable[[nn.Module], Metrics] | None = None
    val_data: Iterable[Any] | None = None
    test_data: Iterable[Any] | None = None

    def __post_init__(self) -> None:
        _ = self._score  # loss_fn or step_fn, callable: checked now, built once
        for field in ("make_model", "train_data"):
            if not callable(getattr(self, field)):
                raise InputTypeError(f"compare: {field} must be a function, not "
                                     f"{type(getattr(self, field)).__name__}")
        if self.evaluate is not None and not callable(self.evaluate):
            raise InputTypeError("compare: evaluate must be a function model -> {metric: value}")

    # -- what a study's set-up asks of it (a Task answers the same) --------------------------
    model_name = ""
    batch_size = None

    def limited(self, limit_train: int | None = None, limit_test: int | None = None) -> Problem:
        if limit_train is not None or limit_test is not None:
            raise InputError("limit_train/limit_test: they cut a Task's tensors; a task that "
                             "returns its own data loaders limits them itself")
        return self

    def with_batch_size(self, batch_size: int | None) -> Problem:
        if batch_size is not None:
            raise InputError("batch_size: set it in your own DataLoader (train_data(seed))")
        return self

    def with_validation(self, fraction: float, seed: int = 0) -> Problem:
        if fraction:
            raise InputError("val_fraction: a task that returns its own data holds out its "
                             "own validation data (val_data or evaluate)")
        return self

    def to(self, device: torch.device | str) -> Problem:
        return self  # batches move to the device as they come

    # -- what a trial asks of it (a Task answers the same) -----------------------------------
    @functools.cached_property
    def _score(self) -> Scorer:
        return make_scorer(self.loss_fn, self.step_fn, where="compare")

    @functools.cached_property
    def steps_per_epoch(self) -> int | None:
        first = self.train_data(0)
        return len(first) if isinstance(first, Sized) else None

    @property
    def has_classes(self) -> bool:
        return False  # accuracy comes from the batches themselves (see _default_metrics)

    def stream(self, seed: int, count: int) -> Iterator[Any]:
        """``count`` training batches of seed ``seed``'s order, passes after passes."""
        return batch_stream(self.train_data(seed), count)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return self._score(model, batch)

    def range_batches(self, seed: int) -> Iterable[Any]:
        return self.train_data(seed)

    def validation_batches(self, examples: int = 512) -> list[Any] | None:
        return None  # the range test validates on a Task's test subset only

    def measure(self, model: nn.Module, device: torch.device) -> Evaluation:
        """The evaluation of ``model`` now (step 0; the trial dates it): selection metrics from
        ``evaluate`` or ``val_data``, reported ones from ``test_data``."""
        with torch.no_grad(), evaluating(model):
            test = self._default_metrics(model, self.test_data, device)
            if self.evaluate is not None:
                val = _checked(self.evaluate(model))
            else:
                val = self._default_metrics(model, self.val_data, device)
        return Evaluation(0, test.get("loss"), test.get("accuracy"), val.get("loss"),
                          val.get("accuracy"), metrics=dict(val))

    def _default_metrics(self, model: nn.Module, data: Iterable[Any] | None,
                         device: torch.device) -> dict[str, float]:
        """Mean loss over the examples of ``data`` (the one evaluation rule) and, for
        ``(inputs, targets)`` batches whose targets are class indices, top-1 accuracy."""
        if data is None:
            return {}
        stream = iter(data)
        first = next(stream, None)
        if first is None:
            raise InputError("compare: val_data/test_data gave no batches")
        batches = itertools.chain([first], stream)
        if self.step_fn is None and isinstance(first, (tuple, list)) and len(first) >= 2:
            assert self.loss_fn is not None  # the scorer checked it
            targets = first[1]
            classes = isinstance(targets, torch.Tensor) and infer_classes(targets) > 0
            loss, accuracy = evaluate_pairs(model, batches, self.loss_fn, device, classes)
            return {"loss": loss} if accuracy is None else {"loss": loss, "accuracy": accuracy}
        totals = Totals()
        with evaluating(model):
            for raw in batches:
                batch = to_device(raw, device)
                totals.add(float(self._score(model, batch)), examples_in(batch) or 1)
        return {"loss": totals.mean_loss()}


def _checked(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping) or not metrics:
        raise InputTypeError("compare: evaluate(model) must return a dict {metric: number}, "
                             f"not {type(metrics).__name__}")
    out = {}
    for name, value in metrics.items():
        number = float(value.detach() if isinstance(value, torch.Tensor) else value)
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"compare: evaluate returned a metric named {name!r}; use names "
                             "like 'loss', 'accuracy', 'rmse'")
        out[name] = number if math.isfinite(number) else math.nan
    return out
