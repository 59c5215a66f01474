"""The small predict studies the end-to-end tests run, in this process or as a script (a
subprocess killed with SIGKILL): ``python study_script.py OUT [full|predict] [problem]``."""

from __future__ import annotations

import functools
import sys

import torch
from torch import nn

import lrscope
from lrscope.data.tasks import get_task
from lrscope.data.tasks.base import Task
from lrscope.rangetest.settings import RangeTestSettings

SCHEDULES = ["constant(lr=0.1)", "cosine(lr=0.1)", "wsd(lr=0.1, warmup_steps=3, decay_steps=15)",
             "step(lr=0.1, step_size=20, gamma=0.3)", "exponential(lr=0.1, gamma=0.96)",
             "linear(lr=0.1)"]


def _compare(task: Task, lr: float, out: str, strategy: str, budget: float | None,
             steps: int, lr_scales: list[float] | None = None,
             specs: list[str] | None = None) -> lrscope.CompareResult:
    """Every problem's study: SGD momentum at ``lr``, the schedules (``specs``, default
    :data:`SCHEDULES`) peaking there, 3 seeds."""
    schedules = [spec.replace("lr=0.1", f"lr={lr}") for spec in specs or SCHEDULES]
    return lrscope.compare(task.make_model, functools.partial(torch.optim.SGD, lr=lr,
                                                              momentum=0.9),
                           task, schedules=schedules, steps=steps, seeds=3, eval_every=10,
                           parallel="none", out=out, quiet=True, strategy=strategy,
                           budget=budget if strategy == "predict" else None,
                           range_test=RangeTestSettings(start=1e-4, steps=20),
                           lr_scales=lr_scales)


def digits(out: str, strategy: str = "predict", budget: float | None = 0.35,
           steps: int = 60) -> lrscope.CompareResult:
    """A digits MLP where the law is expected to hold: the validation loss falls all run."""
    task = get_task("digits", model="mlp", limit_train=256, limit_test=64).with_validation(0.25)
    return _compare(task, 0.1, out, strategy, budget, steps)


def overfit(out: str, strategy: str = "predict", budget: float | None = 0.35,
            steps: int = 150, lr_scales: list[float] | None = None,
            specs: list[str] | None = None) -> lrscope.CompareResult:
    """Where the law does not hold: a wide MLP on 48 examples at a high LR for long, so the
    validation loss falls, then rises as it memorises the training set."""
    task = get_task("digits", model="mlp", limit_train=64, limit_test=64,
                    batch_size=16).with_validation(0.25)
    return _compare(task, 0.5, out, strategy, budget, steps, lr_scales, specs)

def quadratic_task() -> Task:
    """Least squares with label noise (inputs scaled so the curvature is about 1): SGD's loss
    falls with the LR area towards a noise floor that annealing lowers, the regime both laws
    were written for, and no overfitting with 4096 examples for 32 weights."""
    g = torch.Generator().manual_seed(0)
    d = 32
    w = torch.randn(d, 1, generator=g)

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, d, generator=g) / d ** 0.5
        return x, x @ w + 0.5 * torch.randn(n, 1, generator=g)

    (tx, ty), (vx, vy), (sx, sy) = data(4096), data(512), data(512)
    return Task("quadratic", functools.partial(nn.Linear, d, 1), tx, ty, sx, sy,
                nn.functional.mse_loss, batch_size=8, val_x=vx, val_y=vy)


def quadratic(out: str, strategy: str = "predict", budget: float | None = 0.35,
              steps: int = 60) -> lrscope.CompareResult:
    """Where the law holds (its self-check passes): :func:`quadratic_task` at LR 0.1."""
    return _compare(quadratic_task(), 0.1, out, strategy, budget, steps)


if __name__ == "__main__":
    torch.set_num_threads(1)
    problem = {"digits": digits, "overfit": overfit, "quadratic": quadratic}[
        sys.argv[3] if len(sys.argv) > 3 else "digits"]
    problem(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "predict")
