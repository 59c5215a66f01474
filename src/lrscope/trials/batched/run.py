"""The batched engine: K trials of one task and seed, differing only in schedule, run as one.

The paired design of a study gives K trials that start from the same weights and see the same
batches; only the schedule differs. Here they train together: one vmapped model over K stacked
copies of the parameters (:class:`~lrscope.trials.batched.stacked.StackedModel`), the shared batch
read once, one forward and backward for all, one flat optimizer update. On a CPU, where a small
model's step is mostly per-op overhead, this runs K trials in far less time than K one after
another (benchmarks/bench_batched.py measures it).

Trial semantics are :func:`lrscope.trials.trial.run_trial`'s, trial by trial: the same initial
weights
(``torch.manual_seed(seed); task.make_model()``), the same batches, the LR (and momentum) from
the schedule before each step with every param group's ratio kept, evaluations every
``eval_every`` steps and after the last, and a trial whose loss diverges (non-finite, or past
``diverge_factor`` times its first loss) marked diverged at that step and cut there. A
diverged trial leaves the stack at the next check; the others go on, untouched (each trial's
gradient comes from its own row only).

Memory: K copies of the parameters, their gradients and the optimizer state.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from lrscope.data.evaluation import Totals, correct_predictions, evaluating
from lrscope.data.tasks.base import Task
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError
from lrscope.rng import preserved_rng
from lrscope.schedules import Schedule
from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE
from lrscope.trials.batched.stacked import StackedModel

# The divergence rule is run_trial's own function, so the two can never disagree on it.
from lrscope.trials.trial import (
    DIVERGE_FACTOR,
    Evaluation,
    OptimizerFactory,
    TrialResult,
    first_diverged,
    seeded_model,
    sgd,
)

EvalCallback = Callable[[int, Evaluation], None]
_LOCAL = LocalEngine()  # one process: the loss averaged over ranks is the loss


def check_batchable(model: nn.Module) -> None:
    """Raise InputError unless ``model`` can run batched with run_trial's exact semantics.

    Refused, and why:

    * BatchNorm (running statistics), and any buffer that ``forward`` changes in place (found
      by :func:`_probe`): run_trial updates the buffer in training and reads it in evaluation;
      K trials would each need their own stacked copy, written in place inside vmap, which this
      engine does not keep. (Buffers that stay constant, such as input normalisation, are fine:
      all trials share them.)
    * dropout: run_trial draws each trial's masks from the global generator, trial after
      trial; K trials drawing inside one vmap use the generator in another order, so no trial
      could match its run_trial. (vmap's ``randomness="error"`` also stops any other random
      op in a forward.)

    >>> check_batchable(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    >>> check_batchable(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: model: batched runs do not support BatchNorm1d (it keeps \
running statistics); use --parallel none|processes (or run_trial) for this model or optimizer
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            raise InputError(f"model: batched runs do not support {type(module).__name__} "
                             f"(random masks); {UNSUPPORTED_ADVICE}")
        if (isinstance(module, nn.modules.batchnorm._NormBase)
                and module.track_running_stats):
            raise InputError(f"model: batched runs do not support {type(module).__name__} (it "
                             f"keeps running statistics); {UNSUPPORTED_ADVICE}")


def _probe(model: nn.Module, task: Task, batch: tuple[torch.Tensor, torch.Tensor],
           device: torch.device) -> set[str]:
    """One plain forward and backward of ``model`` on ``batch``, its weights left as they were.

    Returns the names of the parameters that get a gradient (torch.optim skips the others, so
    the batched update must too); raises InputError if ``forward`` wrote to a buffer.
    """
    versions = {name: b._version for name, b in model.named_buffers()}
    x, y = (t.to(device) for t in batch)
    task.loss_fn(model(x), y).backward()
    used = {n for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    for name, buffer in model.named_buffers():
        if buffer._version != versions.get(name):
            raise InputError(f"model: its forward changes buffer {name!r} in place, which "
                             f"batched runs cannot keep per trial; {UNSUPPORTED_ADVICE}")
    return used


@torch.no_grad()
def evaluate_stacked(stack: StackedModel, task: Task, device: torch.device) -> list[Evaluation]:
    """Every stacked trial's :func:`lrscope.trials.trial.evaluate` (step 0), counted as
    :func:`lrscope.data.evaluation.evaluate_pairs` counts one model."""
    test = _stacked_totals(stack, task.test_batches(), task, device)
    val = _stacked_totals(stack, task.val_batches(), task, device) if task.has_validation \
        else None
    classes = task.has_classes
    return [Evaluation(0, t.mean_loss(), t.accuracy() if classes else None,
                       None if val is None else val[k].mean_loss(),
                       None if val is None or not classes else val[k].accuracy())
            for k, t in enumerate(test)]


def _stacked_totals(stack: StackedModel, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    task: Task, device: torch.device) -> list[Totals]:
    totals = [Totals() for _ in range(stack.k)]
    with evaluating(stack.model):
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            out = stack.forward(x)
            for k, loss in enumerate(stack.losses(out, y).tolist()):
                hits = correct_predictions(out[k], y) if task.has_classes else 0
                totals[k].add(loss, len(y), hits)
    return totals


def run_trials_batched(
    task: Task,
    schedules: Sequence[Schedule],
    *,
    seed: int,
    steps: int,
    eval_every: int,
    make_optimizer: OptimizerFactory | None = None,
    device: torch.device | str = "cpu",
    on_eval: EvalCallback | None = None,
    diverge_factor: float = DIVERGE_FACTOR,
) -> list[TrialResult]:
    """``run_trial(task, s, seed=seed, ...)`` for every ``s`` in ``schedules``, trained at once.

    Returns one :class:`~lrscope.trials.trial.TrialResult` per schedule, in order.
    ``on_eval(i, ev)``
    is called for each evaluation of trial ``i``. A trial's ``wall_time`` is its share of the
    batch's time (each interval split between the trials still running), so the shares add up
    to the whole. The optimizer from ``make_optimizer`` (default :func:`lrscope.trials.trial.sgd`)
    must be SGD, Adam or AdamW, and the model free of BatchNorm, dropout and buffers that its
    forward writes (:func:`check_batchable`); otherwise InputError.

    >>> from lrscope.schedules.constant import Constant
    >>> from lrscope.data.tasks import get_task
    >>> task = get_task("digits", limit_train=256, limit_test=64)
    >>> a, b = run_trials_batched(task, [Constant(lr=0.05), Constant(lr=1e3)], seed=0,
    ...                           steps=8, eval_every=4)
    >>> a.status, len(a.train_loss), [e.step for e in a.evaluations]
    ('finished', 8, [4, 8])
    >>> b.status, b.diverged_at, len(b.train_loss), b.evaluations
    ('diverged', 1, 2, [])
    """
    if not schedules:
        raise InputError("schedules: nothing to run; give at least one schedule")
    with preserved_rng():  # the caller's RNGs are left as found, as run_trial leaves them
        return _run_batched(task, [s.with_total_steps(steps) for s in schedules], seed, steps,
                            eval_every, make_optimizer or sgd(), torch.device(device), on_eval,
                            diverge_factor)


def _run_batched(task: Task, schedules: list[Schedule], seed: int, steps: int, eval_every: int,
                 make_optimizer: OptimizerFactory, device: torch.device,
                 on_eval: EvalCallback | None, diverge_factor: float) -> list[TrialResult]:
    k = len(schedules)
    model = seeded_model(task, seed, device)  # the same initial weights as run_trial's
    optimizer = make_optimizer(model)
    check_batchable(model)
    batches = task.train_batches(seed)
    used = _probe(model, task, next(iter(batches.steps(1))), device)
    stack = StackedModel(model, optimizer, k, task.loss_fn, used, device)

    active = list(range(k))  # trial indices of the stack's rows, in row order
    lrs = np.empty((steps, k))
    losses = torch.full((steps, k), float("nan"), dtype=torch.float64, device=device)
    evaluations: list[list[Evaluation]] = [[] for _ in range(k)]
    diverged_at: list[int | None] = [None] * k
    wall = [0.0] * k
    checked, clock = 0, time.perf_counter()
    for step, (x, y) in enumerate(batches.steps(steps)):
        lr = [schedules[i](step) for i in active]
        lrs[step, active] = lr
        loss = _step(stack, x.to(device), y.to(device), lr,
                     [schedules[i].momentum(step) for i in active])
        losses[step, active] = loss.to(torch.float64)
        if (step + 1) % eval_every != 0 and step + 1 != steps:
            continue
        # Check the chunk since the last check with run_trial's own rule (non-finite, or past
        # diverge_factor times the first loss), one trial's column at a time.
        start, checked = checked, step + 1
        rows = []
        for row, i in enumerate(active):
            diverged_at[i] = first_diverged(losses[:, i], start, checked, _LOCAL, diverge_factor)
            if diverged_at[i] is None:
                rows.append(row)
        running = [active[row] for row in rows]
        if running:
            if len(rows) < len(active):
                stack.keep(torch.tensor(rows, dtype=torch.long, device=device))
            for i, ev in zip(running, evaluate_stacked(stack, task, device), strict=True):
                evaluations[i].append(dataclasses.replace(ev, step=step + 1))
                if on_eval is not None:
                    on_eval(i, evaluations[i][-1])
        now = time.perf_counter()
        for i in active:
            wall[i] += (now - clock) / len(active)
        clock, active = now, running
        if not active:
            break
    return [TrialResult.assemble(lrs[:, i], losses[:, i], evaluations[i], diverged_at[i], steps,
                                 wall[i]) for i in range(k)]


def _step(stack: StackedModel, x: torch.Tensor, y: torch.Tensor, lr: list[float],
          momentum: list[float | None]) -> torch.Tensor:
    try:
        return stack.train_step(x, y, lr, momentum)
    except RuntimeError as error:
        if "randomness" not in str(error):
            raise
        raise InputError(f"model: its forward draws random numbers (as dropout does), which "
                         f"batched runs cannot match trial by trial; {UNSUPPORTED_ADVICE}"
                         ) from error
