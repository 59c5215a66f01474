"""One training run of the suggestion harness: a task, a method, an LR, a seed -> final test loss.

Methods:

* ``onecycle``: the task's optimizer under ``torch.optim.lr_scheduler.OneCycleLR(max_lr=lr,
  total_steps=budget)`` at torch's defaults (pct_start 0.3, cosine, div_factor 25, momentum /
  beta1 cycled 0.95 -> 0.85 -> 0.95; note that this turns momentum on for plain SGD too, as it
  does for any user who takes the defaults).
* ``prodigy``: ``prodigyopt.Prodigy(lr=1.0)`` with ``CosineAnnealingLR(T_max=budget)``, as its
  README recommends; weight decay as the task's (0.01 for the AdamW task, else 0).
* ``schedulefree``: ``schedulefree.SGDScheduleFree`` (SGD tasks) or ``AdamWScheduleFree`` (Adam
  tasks) at their default LR, with ``warmup_steps`` = 5% of the budget (the README recommends
  warmup), ``optimizer.train()`` / ``.eval()`` around training and evaluation, and the
  BatchNorm statistics recomputed at the evaluation point as the README's caveat says.

The model's initial weights and the data order come from the seed; a non-finite training or
test loss is a diverged run (``loss = inf``), which stops at once.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from suggestion_tasks import BenchTask
from torch import nn

from lrscope.data.tensor_batches import TensorBatches

METHODS = ("onecycle", "prodigy", "schedulefree")
TRAIN_SEED_BASE = 1000  # training seeds never coincide with range-test seeds
WARMUP_FRACTION = 0.05


def setup(task: BenchTask, method: str) -> str:
    """What a training of ``method`` on ``task`` runs, in words: the harness' cache keys every
    training on it (and the budget), so a changed optimizer is never read from an old entry.

    >>> from suggestion_tasks import get_task
    >>> setup(get_task("digits-mlp"), "onecycle")
    'onecycle sgd-momentum momentum=0.9 weight_decay=0.0'
    """
    if method == "onecycle":
        return f"onecycle {task.setup}"
    if method == "schedulefree":
        return f"schedulefree-{task.family} weight_decay={task.weight_decay}"
    return f"{method} weight_decay={task.weight_decay}"


def train_batches(task: BenchTask, seed: int) -> TensorBatches:
    return TensorBatches(task.train_x, task.train_y, task.batch_size, seed=seed, drop_last=True)


def fresh_model(task: BenchTask, init_seed: int) -> nn.Module:
    torch.manual_seed(init_seed)
    model = task.make_model()
    model.train()
    return model


def _optimizer_and_scheduler(task: BenchTask, model: nn.Module, method: str,
                             lr: float) -> tuple[Any, Any]:
    params = list(model.parameters())
    if method == "onecycle":
        opt = task.make_optimizer(params, lr)
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=task.budget)
    if method == "prodigy":
        from prodigyopt import Prodigy

        opt = Prodigy(params, lr=1.0, weight_decay=task.weight_decay)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=task.budget)
    if method == "schedulefree":
        import schedulefree

        warmup = max(1, round(WARMUP_FRACTION * task.budget))
        if task.family == "adam":
            sf: Any = schedulefree.AdamWScheduleFree(params, warmup_steps=warmup,
                                                     weight_decay=task.weight_decay)
        else:
            sf = schedulefree.SGDScheduleFree(params, warmup_steps=warmup)
        return sf, None
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


@torch.no_grad()
def test_loss(task: BenchTask, model: nn.Module, chunk: int = 1024) -> float:
    """Mean loss over the test split, model in eval mode (weighted by chunk size)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(task.test_x), chunk):
        x, y = task.test_x[start:start + chunk], task.test_y[start:start + chunk]
        total += float(task.loss_fn(model(x), y)) * len(x)
        count += len(x)
    return total / count


@torch.no_grad()
def _recompute_batchnorm(task: BenchTask, model: nn.Module, seed: int) -> None:
    """Schedule-Free's README caveat: refresh BatchNorm's running statistics at the evaluation
    point x (its optimizer.eval() weights) with up to 50 training batches in train mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean over the batches below
    model.train()
    for x, _ in train_batches(task, seed).steps(50):
        model(x)


def train(task: BenchTask, method: str, lr: float | None, seed: int) -> float:
    """Final test loss of one run (``inf`` when it diverged)."""
    init = TRAIN_SEED_BASE + seed
    model = fresh_model(task, init)
    opt, scheduler = _optimizer_and_scheduler(task, model, method, lr if lr is not None else 1.0)
    schedule_free = method == "schedulefree"
    if schedule_free:
        opt.train()
    for x, y in train_batches(task, init).steps(task.budget):
        opt.zero_grad(set_to_none=True)
        loss = task.loss_fn(model(x), y)
        if not math.isfinite(loss.item()):
            return math.inf
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    if schedule_free:
        opt.eval()
        _recompute_batchnorm(task, model, init)
    final = test_loss(task, model)
    return final if math.isfinite(final) else math.inf
