"""Overhead: lrscope's range test and one trial against the loops they replace.

Each comparison times two ways of doing the same steps on the same batches (pre-built tensors
of scikit-learn's digits), from the same initial weights, in one process. Repetitions alternate
(A, B, B, A, ...) so that load from other processes hits both alike; the ratio is the median of
the per-pair ratios B / A (wall time; the CPU time of this process and the ratio of the
fastest runs are shown beside it: on a busy machine they are steadier).

* ``range_test / bare loop`` (target <= 1.03): a hand-written range test doing what one must:
  set the LR from the same exponential ramp, zero_grad, forward, loss, backward, step,
  ``loss.item()`` every step, the same debiased EMA and divergence check in plain Python.
  lrscope adds its snapshot and restore, the result arrays and the suggestion rules.
* ``range_test / torch-lr-finder`` (target <= 0.8): ``LRFinder(...)`` (which copies the model's
  and optimizer's state), ``.range_test(...)`` with its default smoothing, ``.reset()``.
* ``run_trial / bare loop``: one trial under OneCycle, evaluated once at the end, against a
  hand-written loop: torch's ``OneCycleLR`` stepped every batch, the losses kept on the device,
  the same divergence test and the same test-set evaluation at the end. Both build the model
  under the same seed and read the task's batches in the same order.
* ``range_test(seeds=N) / N range tests`` (target <= 1.0, met up to 1.02 for noise): one call
  with ``seeds=N`` against N calls, each on its own seeded order of the same batches
  (TensorBatches); skipped, with a note, while ``range_test`` has no ``seeds`` parameter.

Before timing, the bare range test's losses are checked against lrscope's (same steps, same
numbers) and every run is checked to complete all its steps.

    PYTHONPATH=src .venv/bin/python benchmarks/overhead.py [--models mlp,lenet] [--steps 200]
        [--reps 11] [--batch-size 128] [--threads 1,2] [--seeds 3] [--only TEXT]

The batch size defaults to the seed study's 128 (the digits task's own default is 64).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import lrscope
from lrscope.data.tasks.base import Task
from lrscope.data.tasks.digits import digits_task
from lrscope.data.tensor_batches import TensorBatches
from lrscope.schedules import OneCycle
from lrscope.trials.trial import run_trial, sgd

CE = nn.functional.cross_entropy
Batch = tuple[torch.Tensor, torch.Tensor]
# Low enough that no run diverges: every run does every step.
START_LR, END_LR, MAX_LR = 1e-4, 0.05, 0.1
BETA, DIVERGE_TH, TOLERANCE = 0.98, 5.0, 0.05  # lrscope's defaults, see rangetest/smoothing.py


@dataclass
class Comparison:
    """Two runs to alternate: ``a`` is the baseline, ``b`` lrscope; ``reset`` runs before each."""

    name: str
    a: Callable[[], object]
    b: Callable[[], object]
    reset: Callable[[], None]
    target: float | None
    note: str = ""


def prebuilt_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, count: int) -> list[Batch]:
    batches: list[Batch] = []
    stream = TensorBatches(x, y, batch_size, seed=0, drop_last=True).steps(count)
    for xb, yb in stream:  # contiguous copies: no run pays for the indexing
        batches.append((xb.contiguous(), yb.contiguous()))
    return batches


def bare_range_test(model: nn.Module, opt: torch.optim.Optimizer,
                    batches: list[Batch]) -> list[float]:
    """A range test written by hand: ramp, step, read the loss, smooth it, stop on divergence."""
    losses: list[float] = []
    average, correction = 0.0, 1.0
    best = reference = math.inf
    low, high, last = math.log2(START_LR), math.log2(END_LR), len(batches) - 1
    for step, (x, y) in enumerate(batches):
        lr = float(2 ** (low + (high - low) * (step / last)))  # lrscope's exp ramp, same floats
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = CE(model(x), y)
        loss.backward()
        opt.step()
        value = loss.item()
        losses.append(value)
        average = BETA * average + (1 - BETA) * value
        correction *= BETA
        smoothed = average / (1 - correction)
        if step == 0:
            reference = smoothed
        best = min(best, smoothed)
        limit = best + (DIVERGE_TH - 1) * abs(best) + TOLERANCE * abs(reference)
        if not (smoothed <= limit and math.isfinite(value)):
            break
    return losses


def bare_trial(task: Task, seed: int, steps: int) -> float:
    """One trial written by hand: OneCycleLR, losses on the device, one evaluation at the end."""
    torch.manual_seed(seed)
    model = task.make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=steps)
    losses = torch.empty(steps, dtype=torch.float64)
    for step, (x, y) in enumerate(task.stream(seed, steps)):
        opt.zero_grad(set_to_none=True)
        loss = CE(model(x), y)
        loss.backward()
        opt.step()
        scheduler.step()
        losses[step] = loss.detach()
    assert bool(torch.isfinite(losses).all() & (losses <= 100 * losses[0]).all())
    total, correct = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(task.test_x), 1024):
            x, y = task.test_x[start:start + 1024], task.test_y[start:start + 1024]
            out = model(x)
            total += float(CE(out, y)) * len(y)
            correct += int((out.argmax(-1) == y).sum())
    return total / len(task.test_y)


def comparisons(model_name: str, steps: int, batch_size: int, seeds: int) -> list[Comparison]:
    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    task = digits_task(model_name)
    batches = prebuilt_batches(task.train_x, task.train_y, batch_size, steps)
    torch.manual_seed(0)
    model = task.make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    initial_model = {k: v.clone() for k, v in model.state_dict().items()}
    initial_opt = opt.state_dict()  # no state yet: nothing to copy deeply

    def reset() -> None:
        model.load_state_dict(initial_model)
        opt.load_state_dict(initial_opt)

    def ours() -> None:
        result = lrscope.range_test(model, opt, CE, batches, START_LR, END_LR, steps)
        assert result.steps == steps, result.stopped

    def bare() -> None:
        assert len(bare_range_test(model, opt, batches)) == steps

    def finder() -> None:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            peer = LRFinder(model, opt, CE)
            peer.range_test(TrainDataLoaderIter(batches), start_lr=START_LR, end_lr=END_LR,
                            num_iter=steps)
            assert len(peer.history["lr"]) == steps
            peer.reset()

    reset()
    expected = bare_range_test(model, opt, batches)
    reset()
    got = lrscope.range_test(model, opt, CE, batches, START_LR, END_LR, steps).losses
    assert got.tolist() == expected, "the bare loop and range_test did not run the same steps"

    schedule = OneCycle(max_lr=MAX_LR)

    def trial() -> None:
        result = run_trial(task, schedule, seed=0, steps=steps, eval_every=steps,
                           make_optimizer=sgd(lr=0.1, momentum=0.9))
        assert result.status == "finished"

    found = [
        Comparison("range_test / bare loop", bare, ours, reset, 1.03),
        Comparison("range_test / torch-lr-finder", finder, ours, reset, 0.8),
        Comparison("run_trial / bare loop", lambda: bare_trial(task, 0, steps), trial,
                   lambda: None, None),
    ]
    if "seeds" not in inspect.signature(lrscope.range_test).parameters:
        found.append(Comparison(f"range_test(seeds={seeds}) / {seeds} range tests", ours, ours,
                                reset, 1.0, note="skipped: range_test has no `seeds` parameter"))
        return found

    def shuffled(seed: int) -> TensorBatches:
        return TensorBatches(task.train_x, task.train_y, batch_size, seed=seed, drop_last=True)

    def many() -> None:
        for seed in range(seeds):
            lrscope.range_test(model, opt, CE, shuffled(seed), START_LR, END_LR, steps)

    range_test: Callable[..., object] = lrscope.range_test  # seeds= may be newer than mypy's view

    def multi() -> None:
        range_test(model, opt, CE, shuffled(0), START_LR, END_LR, steps, seeds=seeds)

    found.append(Comparison(f"range_test(seeds={seeds}) / {seeds} range tests", many, multi,
                            reset, 1.0, note="target allows 2% noise"))
    return found


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) taken by ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(c: Comparison, reps: int) -> dict[str, float]:
    """Alternate A and B ``reps`` times each (after one warm-up of each); medians and ratios."""
    for fn in (c.a, c.b):
        c.reset()
        fn()
    times: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    for rep in range(reps):
        order = [("a", c.a), ("b", c.b)]
        for key, fn in order if rep % 2 == 0 else order[::-1]:
            c.reset()
            times[key].append(timed(fn))
    a, b = times["a"], times["b"]
    return {
        "a_ms": statistics.median(t for t, _ in a) * 1e3,
        "b_ms": statistics.median(t for t, _ in b) * 1e3,
        "wall": statistics.median(tb / ta for (ta, _), (tb, _) in zip(a, b, strict=True)),
        "cpu": statistics.median(cb / ca for (_, ca), (_, cb) in zip(a, b, strict=True)),
        "minima": min(t for t, _ in b) / min(t for t, _ in a),
    }


def verdict(ratio: float, target: float | None, note: str) -> str:
    if target is None:
        return "-"
    slack = 0.02 if "noise" in note else 0.0
    return "met" if ratio <= target + slack else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,lenet", help="comma-separated: mlp, lenet")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--reps", type=int, default=11, help="timed runs of each side")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", default="1", help="torch CPU threads, e.g. 1 or 1,2")
    parser.add_argument("--seeds", type=int, default=3, help="N for range_test(seeds=N)")
    parser.add_argument("--only", default="", help="run only the comparisons whose name "
                        "contains this text, e.g. 'bare loop' or 'torch-lr-finder'")
    args = parser.parse_args(argv)

    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for model_name in args.models.split(","):
            for c in comparisons(model_name, args.steps, args.batch_size, args.seeds):
                if args.only not in c.name:
                    continue
                if c.note.startswith("skipped"):
                    rows.append(f"| {model_name} | {threads} | {c.name} | - | - | - | - | - | "
                                f"<= {c.target} | {c.note} |")
                    continue
                m = measure(c, args.reps)
                target = "-" if c.target is None else f"<= {c.target}"
                rows.append(f"| {model_name} | {threads} | {c.name} | {m['a_ms']:.1f} | "
                            f"{m['b_ms']:.1f} | {m['wall']:.3f} | {m['cpu']:.3f} | "
                            f"{m['minima']:.3f} | {target} | "
                            f"{verdict(m['wall'], c.target, c.note)} |")
                print(rows[-1], file=sys.stderr, flush=True)  # progress

    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"steps={args.steps} batch={args.batch_size} reps={args.reps} torch={torch.__version__}")
    print()
    print("| model | threads | B / A | A median (ms) | B median (ms) | ratio (wall, median of "
          "pairs) | ratio (CPU) | ratio of minima (wall) | target | |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
