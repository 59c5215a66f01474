"""One trial: train a task's model for a fixed number of steps under one schedule.

Nothing else: no files, no store, no plots. Metrics leave through the returned
:class:`TrialResult` and the optional ``on_eval`` callback; the study decides where they go.

Pairing: the model's initial weights and the data order depend only on ``seed``, so every
schedule at the same seed starts from the same weights and sees the same batches.
The schedule is stepped once per optimizer step, as in the seed study. The caller's global RNGs
are left as they were (the trial seeds torch for its own model, inside a preserved state).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lrscope._checks import check_choice, check_int, check_positive
from lrscope.data.evaluation import Evaluation
from lrscope.data.problem import Problem
from lrscope.data.tasks.base import Task
from lrscope.engines import Engine, LocalEngine
from lrscope.engines.precision import MixedPrecision
from lrscope.engines.step import optimizer_step, where_to_move
from lrscope.rng import preserved_rng
from lrscope.schedules import Schedule, apply_schedule, group_ratios

TrialData = Task | Problem  # what a trial trains (the same four methods on both)
OptimizerFactory = Callable[[list[nn.Parameter] | nn.Module], torch.optim.Optimizer]
DIVERGE_FACTOR = 100.0
# Steps between divergence checks: each check is one device-to-host sync (free on the CPU, a
# pipeline stall on a GPU), and a diverged trial trains at most this many steps more than it
# needs before it stops. The result is the same for every interval (the first diverged step is
# found in the device buffer of losses).
CHECK_EVERY = 32


@dataclass(frozen=True)
class TrainOptions:
    """What users set in their own loops, for every trial of a study (and the range test).

    ``precision``: None, ``"bf16"`` or ``"fp16"`` (autocast; fp16 with a GradScaler).
    ``clip_grad_norm``: clip the gradients' global norm before each step (None: never).
    ``accumulation_steps``: micro-batches per optimizer step; the gradient is their mean.
    """

    precision: str | None = None
    clip_grad_norm: float | None = None
    accumulation_steps: int = 1

    def __post_init__(self) -> None:
        if self.precision is not None:
            check_choice("trial", "precision", self.precision, ("bf16", "fp16"))
        if self.clip_grad_norm is not None:
            check_positive("trial", "clip_grad_norm", self.clip_grad_norm)
        check_int("trial", "accumulation_steps", self.accumulation_steps, minimum=1)

    @property
    def plain(self) -> bool:
        """True when a step is the plain forward, backward, step (what batched runs do)."""
        return self == TrainOptions()


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured. ``train_loss[i]`` and ``lr[i]`` belong to optimizer step i."""

    status: str  # "finished" | "diverged"
    steps_run: int
    lr: np.ndarray
    train_loss: np.ndarray
    evaluations: list[Evaluation] = field(default_factory=list)
    diverged_at_step: int | None = None  # the optimizer step whose loss diverged
    wall_time: float = 0.0
    threads: int = 0  # torch's intra-op threads in the process that trained it (0: not known)

    @property
    def final(self) -> Evaluation | None:
        return self.evaluations[-1] if self.evaluations else None

    @classmethod
    def assemble(cls, lrs: np.ndarray, losses: torch.Tensor, evaluations: list[Evaluation],
                 diverged_at_step: int | None, steps: int, wall_time: float) -> TrialResult:
        """The result of a run of ``steps`` steps, cut after ``diverged_at_step`` when it
        diverged (the one place every runner builds its results)."""
        run = diverged_at_step + 1 if diverged_at_step is not None else steps
        return cls(
            status="diverged" if diverged_at_step is not None else "finished",
            steps_run=run,
            lr=np.array(lrs[:run], dtype=float),
            train_loss=losses[:run].detach().cpu().numpy().copy(),
            evaluations=evaluations,
            diverged_at_step=diverged_at_step,
            wall_time=wall_time,
            threads=torch.get_num_threads(),  # read where it trained: what truly ran
        )


def _sgd(params: list[nn.Parameter] | nn.Module, lr: float, momentum: float,
         weight_decay: float) -> torch.optim.Optimizer:
    if isinstance(params, nn.Module):
        params = list(params.parameters())
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def sgd(lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0) -> OptimizerFactory:
    """A (picklable) optimizer factory; the LR is overwritten by the schedule at every step."""
    return functools.partial(_sgd, lr=lr, momentum=momentum, weight_decay=weight_decay)


def evaluate(model: nn.Module, task: TrialData, device: torch.device) -> Evaluation:
    """``task.measure(model, device)``: a Task's mean test loss (and accuracy when it has
    classes, and the same on its validation split), a Problem's metrics (step 0; the caller
    dates it). Every rank sees the same weights and the same examples."""
    return task.measure(model, device)


def seeded_model(task: TrialData, seed: int, device: torch.device) -> nn.Module:
    """``task.make_model()`` under ``torch.manual_seed(seed)``: the same seed, the same weights.

    The caller keeps the RNG: run it inside :func:`lrscope.rng.preserved_rng`.
    """
    torch.manual_seed(seed)
    return task.make_model().to(device)


def run_trial(
    task: TrialData,
    schedule: Schedule,
    *,
    seed: int,
    steps: int,
    eval_every: int,
    make_optimizer: OptimizerFactory | None = None,
    engine: Engine | None = None,
    on_eval: Callable[[Evaluation], None] | None = None,
    diverge_factor: float = DIVERGE_FACTOR,
    options: TrainOptions | None = None,
    check_every: int = CHECK_EVERY,
) -> TrialResult:
    """Train ``task`` for ``steps`` optimizer steps under ``schedule`` and evaluate on the way.

    A loss that turns non-finite, or blows up past ``diverge_factor`` times the first step's loss
    (when that is positive), ends the trial as ``"diverged"`` at that step; the steps before it
    are kept. (A net pushed far past its stable LR often stays finite at 1e9 and then sits at
    chance: that is a diverged run too, and training on would only waste the budget.)
    Evaluations run every ``eval_every`` steps and after the last step. Modules keep the
    train/eval flags ``make_model`` gave them. ``options`` (:class:`TrainOptions`): mixed
    precision, gradient clipping, gradient accumulation.

    On a GPU the loop never waits for the device between checks: a Task's tensors move to the
    engine's device once, the losses are recorded into a buffer there, and the buffer is checked
    for divergence every ``check_every`` steps and before each evaluation. ``check_every`` only
    changes when a diverged trial stops computing, never its result.
    """
    check_int("trial", "check_every", check_every, minimum=1)
    engine = engine or LocalEngine()
    with preserved_rng():
        return _run(task, schedule.with_total_steps(steps), seed, steps, eval_every,
                    make_optimizer or sgd(), engine, on_eval, diverge_factor,
                    options or TrainOptions(), check_every)


def _run(task: TrialData, schedule: Schedule, seed: int, steps: int, eval_every: int,
         make_optimizer: OptimizerFactory, engine: Engine,
         on_eval: Callable[[Evaluation], None] | None, diverge_factor: float,
         options: TrainOptions, check_every: int) -> TrialResult:
    device = engine.device
    if isinstance(task, Task):  # in-memory data crosses to the device once, not every step
        task = task.to(device)
    amp = MixedPrecision.make(options.precision, device, where="trial")
    micro = options.accumulation_steps
    raw_model = seeded_model(task, seed, device)
    raw_optimizer = make_optimizer(raw_model)
    ratios = group_ratios(raw_optimizer)
    model, optimizer = engine.setup(raw_model, raw_optimizer)
    lrs = np.empty(steps)
    # Losses stay on the device and are checked in chunks: no host sync per step on a GPU.
    # (A Problem's user batches that live elsewhere are moved per step, see below.)
    losses = torch.empty(steps, dtype=torch.float64, device=device)
    evaluations: list[Evaluation] = []
    diverged_at_step: int | None = None
    checked = 0
    start = time.perf_counter()
    try:
        batches, move_to = where_to_move(iter(task.stream(seed, steps * micro)), engine, device)
        take_step = optimizer_step(engine, model, optimizer, task.loss, move_to=move_to, amp=amp,
                                   clip_grad_norm=options.clip_grad_norm, accumulation=micro)
        for step in range(steps):
            lrs[step] = apply_schedule(optimizer, schedule, step, ratios)
            losses[step] = take_step(batches).detach()
            last = step + 1 == steps
            evaluating = (step + 1) % eval_every == 0 or last
            if evaluating or (step + 1) % check_every == 0:
                diverged_at_step = first_diverged(losses, checked, step + 1, engine,
                                                  diverge_factor)
                checked = step + 1
                if diverged_at_step is not None:
                    break
            if evaluating:
                ev = dataclasses.replace(evaluate(model, task, device), step=step + 1)
                evaluations.append(ev)
                if on_eval is not None:
                    on_eval(ev)
    finally:
        engine.teardown(model, optimizer)
    return TrialResult.assemble(lrs, losses, evaluations, diverged_at_step, steps,
                                time.perf_counter() - start)


def first_diverged(losses: torch.Tensor, lo: int, hi: int, engine: Engine,
                   factor: float) -> int | None:
    """Average losses[lo:hi] over ranks in place; return the first diverged step, if any.

    Every rank sees the same averaged chunk, so every rank stops at the same step.
    """
    losses[lo:hi] = engine.mean_tensor(losses[lo:hi])
    found = diverged_index(losses[lo:hi], float(losses[0]), factor)
    return None if found is None else found + lo


def diverged_index(losses: torch.Tensor, first: float,
                   factor: float = DIVERGE_FACTOR) -> int | None:
    """The trials' divergence rule, the one copy every runner calls: the index
    of the first loss that is not finite, or past ``factor`` times ``first`` (the run's first
    loss) when that is positive; None when none is.

    >>> diverged_index(torch.tensor([2.0, 1.0, 250.0]), first=2.0)
    2
    >>> diverged_index(torch.tensor([-1.0, float("nan")]), first=-1.0)
    1
    """
    bad = ~torch.isfinite(losses)
    if math.isfinite(first) and first > 0:
        bad |= losses > factor * first
    where = bad.nonzero()
    return int(where[0]) if len(where) else None
