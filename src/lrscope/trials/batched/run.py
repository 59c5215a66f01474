"""The batched runner: K trials of one task and seed, differing only in schedule, run as one.

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
diverged trial leaves the stack at the next check (the first diverged step is found in the
losses since the last check, so it is cut where run_trial cuts it, whatever the interval); the
others go on, untouched (each trial's gradient comes from its own row only). BatchNorm keeps
each trial's running statistics, dropout draws each mask once for the K trials, exactly as
each draws it alone (they share the seed). Between checks nothing waits for the device: the
losses stay where they are computed, the LRs are Python numbers from the schedules.

Memory: K copies of the parameters, their gradients, the optimizer state, the written buffers
and one forward's activations, estimated before the first step and refused when the device
has less free (:mod:`lrscope.trials.batched.memory`).
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
from lrscope.trials.batched.dropout import can_share_masks, share_dropout_masks
from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE
from lrscope.trials.batched.memory import (
    EVAL_BATCH,
    MemoryEstimate,
    check_memory,
    estimate_memory,
)
from lrscope.trials.batched.probe import Probe, probe
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
FinishCallback = Callable[[int, dict[str, torch.Tensor]], None]
_LOCAL = LocalEngine()  # one process: the loss averaged over ranks is the loss


def check_batchable(model: nn.Module) -> None:
    """Raise InputError unless ``model`` can run batched with run_trial's exact semantics.

    Supported: BatchNorm (each trial its own running statistics: every buffer the training
    forward writes is stacked per trial, see :mod:`lrscope.trials.batched.stacked`) and
    Dropout, Dropout1d/2d/3d (one mask per call, drawn as the trial alone draws it: the K
    trials share their seed, see :mod:`lrscope.trials.batched.dropout`). Refused, and why:

    * AlphaDropout and FeatureAlphaDropout: their output is not the input times a mask, so the
      one-mask rule does not apply. (Any other random op in a forward meets vmap's
      ``randomness="error"`` when the run starts, with the same advice.)

    Train/eval flags are the model's own, as in run_trial: a BatchNorm frozen in eval mode
    reads its statistics and never writes them, a dropout in eval mode draws nothing.

    >>> check_batchable(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.1)))
    >>> check_batchable(nn.Sequential(nn.Linear(2, 2), nn.AlphaDropout(0.1)))
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: model: batched runs do not support AlphaDropout (its output is \
not the input times a mask); use --parallel none|processes (or run_trial) for this model or \
optimizer
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and not can_share_masks(module):
            raise InputError(f"model: batched runs do not support {type(module).__name__} "
                             f"(its output is not the input times a mask); {UNSUPPORTED_ADVICE}")


def batched_memory(task: Task, k: int, *, seed: int = 0,
                   make_optimizer: OptimizerFactory | None = None,
                   device: torch.device | str = "cpu") -> MemoryEstimate:
    """The memory that ``k`` trials of ``task`` batched on ``device`` would need, measured as
    :func:`run_trials_batched` measures it before it starts (one probe step of the model).

    >>> from lrscope.data.tasks import get_task
    >>> est = batched_memory(get_task("digits", limit_train=64, limit_test=8), k=8)
    >>> est.k, est.weights == 8 * est.grads // 8, est.total > 0
    (8, True, True)
    """
    device = torch.device(device)
    with preserved_rng():
        model = seeded_model(task, seed, device)
        optimizer = (make_optimizer or sgd())(model)
        batch = next(iter(task.train_batches(seed).steps(1)))
        found = probe(model, task.loss_fn, batch, device)
    return _estimate(k, optimizer, found, len(batch[0]))


def _estimate(k: int, optimizer: torch.optim.Optimizer, found: Probe,
              batch_size: int) -> MemoryEstimate:
    return estimate_memory(k, found.trained_bytes, optimizer, found.written_bytes,
                           found.activation_bytes, found.layer_bytes_per_example, batch_size)


@torch.no_grad()
def evaluate_stacked(stack: StackedModel, task: Task, device: torch.device) -> list[Evaluation]:
    """Every stacked trial's :func:`lrscope.trials.trial.evaluate` (step 0), counted as
    :func:`lrscope.data.evaluation.evaluate_pairs` counts one model."""
    # EVAL_BATCH examples a forward: what the memory check counted (memory.EVAL_BATCH)
    test = _stacked_totals(stack, task.test_batches(EVAL_BATCH), task, device)
    val = _stacked_totals(stack, task.val_batches(EVAL_BATCH), task, device) \
        if task.has_validation else None
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
    on_finish: FinishCallback | None = None,
) -> list[TrialResult]:
    """``run_trial(task, s, seed=seed, ...)`` for every ``s`` in ``schedules``, trained at once.

    Returns one :class:`~lrscope.trials.trial.TrialResult` per schedule, in order.
    ``on_eval(i, ev)`` is called for each evaluation of trial ``i``; ``on_finish(i, state)``
    once for each trial that finished, with its final weights and buffers (``state_dict``
    names). A trial's ``wall_time`` is its share of the batch's time (each interval split
    between the trials still running), so the shares add up to the whole. The optimizer from
    ``make_optimizer`` (default :func:`lrscope.trials.trial.sgd`) must be SGD, Adam or AdamW,
    and the model one that :func:`check_batchable` accepts; otherwise InputError. So is a K
    whose memory (:func:`batched_memory`) exceeds what ``device`` has free, before any step.

    >>> from lrscope.schedules.constant import Constant
    >>> from lrscope.data.tasks import get_task
    >>> task = get_task("digits", limit_train=256, limit_test=64)
    >>> a, b = run_trials_batched(task, [Constant(lr=0.05), Constant(lr=1e3)], seed=0,
    ...                           steps=8, eval_every=4)
    >>> a.status, len(a.train_loss), [e.step for e in a.evaluations]
    ('finished', 8, [4, 8])
    >>> b.status, b.diverged_at_step, len(b.train_loss), b.evaluations
    ('diverged', 1, 2, [])
    """
    if not schedules:
        raise InputError("schedules: nothing to run; give at least one schedule")
    with preserved_rng():  # the caller's RNGs are left as found, as run_trial leaves them
        return _run_batched(task, [s.with_total_steps(steps) for s in schedules], seed, steps,
                            eval_every, make_optimizer or sgd(), torch.device(device), on_eval,
                            diverge_factor, on_finish)


def _run_batched(task: Task, schedules: list[Schedule], seed: int, steps: int, eval_every: int,
                 make_optimizer: OptimizerFactory, device: torch.device,
                 on_eval: EvalCallback | None, diverge_factor: float,
                 on_finish: FinishCallback | None) -> list[TrialResult]:
    k = len(schedules)
    # The same initial weights as run_trial's; after this, run_trial's global generator serves
    # only dropout (probe() puts it back after its own draws).
    model = seeded_model(task, seed, device)
    optimizer = make_optimizer(model)
    check_batchable(model)
    batches = task.train_batches(seed)
    first = next(iter(batches.steps(1)))
    found = probe(model, task.loss_fn, first, device)
    check_memory(_estimate(k, optimizer, found, len(first[0])), device)
    share_dropout_masks(model)  # the batched runner's own model: one mask per call for all K rows
    stack = StackedModel(model, optimizer, k, task.loss_fn, set(found.used), device,
                         found.written)

    active = list(range(k))  # trial indices of the stack's rows, in row order
    rows_on_device = torch.arange(k, device=device)  # the same, where losses are written
    lrs = np.empty((steps, k))
    losses = torch.full((steps, k), float("nan"), dtype=torch.float64, device=device)
    evaluations: list[list[Evaluation]] = [[] for _ in range(k)]
    diverged_at_step: list[int | None] = [None] * k
    wall = [0.0] * k
    checked, clock = 0, time.perf_counter()
    for step, (x, y) in enumerate(batches.steps(steps)):
        lr = [schedules[i](step) for i in active]
        lrs[step, active] = lr
        loss = _step(stack, x.to(device, non_blocking=True), y.to(device, non_blocking=True),
                     lr, [schedules[i].momentum(step) for i in active])
        # No host sync per step: the losses stay on the device until the next check.
        losses[step].index_copy_(0, rows_on_device, loss.to(torch.float64))
        if (step + 1) % eval_every != 0 and step + 1 != steps:
            continue
        # Check the chunk since the last check with run_trial's own rule (non-finite, or past
        # diverge_factor times the first loss), every eval_every steps and after the last; the
        # first diverged step since the last check is found with run_trial's own rule, so a
        # trial is cut where run_trial cuts it. One copy to the host per check, then one
        # trial's column at a time.
        start, checked = checked, step + 1
        seen = losses[:checked].cpu()
        rows = []
        for row, i in enumerate(active):
            diverged_at_step[i] = first_diverged(seen[:, i], start, checked, _LOCAL,
                                                 diverge_factor)
            if diverged_at_step[i] is None:
                rows.append(row)
        running = [active[row] for row in rows]
        if running:
            if len(rows) < len(active):
                kept = torch.tensor(rows, dtype=torch.long, device=device)
                stack.keep(kept)
                rows_on_device = rows_on_device[kept]
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
    if on_finish is not None:
        for row, i in enumerate(active):
            on_finish(i, stack.state(row))
    cpu_losses = losses.cpu()
    return [TrialResult.assemble(lrs[:, i], cpu_losses[:, i], evaluations[i],
                                 diverged_at_step[i], steps, wall[i]) for i in range(k)]


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
