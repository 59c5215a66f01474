"""One trial: train a task's model for a fixed number of steps under one schedule.

Nothing else: no files, no store, no plots. Metrics leave through the returned
:class:`TrialResult` and the optional ``on_eval`` callback; the study decides where they go.

Pairing: the model's initial weights and the data order depend only on ``seed``, so every
schedule at the same seed starts from the same weights and sees the same batches.
The schedule is stepped once per optimizer step, as in the seed study.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lrscope.data.tasks.base import Task
from lrscope.engines import Engine, LocalEngine
from lrscope.schedules import Schedule, apply_schedule, group_ratios

OptimizerFactory = Callable[[list[nn.Parameter] | nn.Module], torch.optim.Optimizer]


@dataclass(frozen=True)
class Evaluation:
    step: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured. ``train_loss[i]`` and ``lr[i]`` belong to optimizer step i."""

    status: str  # "finished" | "diverged"
    steps_run: int
    lr: np.ndarray
    train_loss: np.ndarray
    evaluations: list[Evaluation] = field(default_factory=list)
    diverged_at: int | None = None
    wall_time: float = 0.0

    @property
    def final(self) -> Evaluation | None:
        return self.evaluations[-1] if self.evaluations else None


def sgd(lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0) -> OptimizerFactory:
    """An optimizer factory; the LR is overwritten by the schedule at every step."""
    def make(params: list[nn.Parameter] | nn.Module) -> torch.optim.Optimizer:
        if isinstance(params, nn.Module):
            params = list(params.parameters())
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    return make


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, device: torch.device) -> tuple[float, float]:
    """Mean test loss and accuracy over the whole test set (every rank sees the same weights)."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in task.test_batches():
        x, y = x.to(device), y.to(device)
        out = model(x)
        total_loss += float(task.loss_fn(out, y)) * len(y)
        correct += int((out.argmax(dim=1) == y).sum())
        count += len(y)
    model.train(was_training)
    return total_loss / count, correct / count


def run_trial(
    task: Task,
    schedule: Schedule,
    *,
    seed: int,
    steps: int,
    eval_every: int,
    make_optimizer: OptimizerFactory | None = None,
    engine: Engine | None = None,
    on_eval: Callable[[Evaluation], None] | None = None,
    diverge_factor: float = 100.0,
) -> TrialResult:
    """Train ``task`` for ``steps`` optimizer steps under ``schedule`` and evaluate on the way.

    A loss that turns non-finite, or blows up past ``diverge_factor`` times the first step's loss
    (when that is positive), ends the trial as ``"diverged"`` at that step; the steps before it
    are kept. (A net pushed far past its stable LR often stays finite at 1e9 and then sits at
    chance: that is a diverged run too, and training on would only waste the budget.)
    Evaluations run every ``eval_every`` steps and after the last step.
    """
    engine = engine or LocalEngine()
    schedule = schedule.with_total_steps(steps)
    torch.manual_seed(seed)
    raw_model = task.make_model().to(engine.device)
    raw_optimizer = (make_optimizer or sgd())(raw_model)
    ratios = group_ratios(raw_optimizer)
    model, optimizer = engine.setup(raw_model, raw_optimizer)
    lrs = np.empty(steps)
    # Losses stay on the device and are checked in chunks: no host sync per step on a GPU.
    losses = torch.empty(steps, dtype=torch.float64, device=engine.device)
    evaluations: list[Evaluation] = []
    diverged_at: int | None = None
    checked = 0
    start = time.perf_counter()
    model.train()
    try:
        batches = task.train_batches(seed).steps(steps)
        for step, batch in enumerate(batches):
            lrs[step] = apply_schedule(optimizer, schedule, step, ratios)
            x, y = (t.to(engine.device) for t in engine.shard(batch))
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss_fn(model(x), y)
            engine.backward(loss, optimizer)
            optimizer.step()
            losses[step] = loss.detach()
            last = step + 1 == steps
            if (step + 1) % eval_every == 0 or last:
                diverged_at = first_diverged(losses, checked, step + 1, engine, diverge_factor)
                checked = step + 1
                if diverged_at is not None:
                    break
                ev = Evaluation(step + 1, *evaluate(model, task, engine.device))
                evaluations.append(ev)
                if on_eval is not None:
                    on_eval(ev)
    finally:
        engine.teardown(model, optimizer)
    run = diverged_at + 1 if diverged_at is not None else steps
    return TrialResult(
        status="diverged" if diverged_at is not None else "finished",
        steps_run=run,
        lr=lrs[:run],
        train_loss=losses[:run].cpu().numpy(),
        evaluations=evaluations,
        diverged_at=diverged_at,
        wall_time=time.perf_counter() - start,
    )


def first_diverged(losses: torch.Tensor, lo: int, hi: int, engine: Engine,
                    factor: float) -> int | None:
    """Average losses[lo:hi] over ranks in place; return the first diverged step, if any.

    Every rank sees the same averaged chunk, so every rank stops at the same step.
    """
    losses[lo:hi] = engine.mean_tensor(losses[lo:hi])
    chunk = losses[lo:hi]
    bad = ~torch.isfinite(chunk)
    first = float(losses[0])
    if math.isfinite(first) and first > 0:
        bad |= chunk > factor * first
    where = bad.nonzero()
    return int(where[0]) + lo if len(where) else None
