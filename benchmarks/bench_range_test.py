"""Range-test overhead: ``lrscope.range_test`` against a bare hand-written loop.

Both run the same forward / backward / optimizer step on the same pre-built batches of
scikit-learn's digits with the same model, setting the LR every step and reading the loss once
per step (as any range-test loop must). The range test adds its snapshot and restore, the
smoothing and divergence check, and the suggestion rules. Repetitions alternate (bare, lrscope,
lrscope, bare, ...) within one process so that machine load hits both alike; the ratio printed
is the median of the per-pair ratios (target <= 1.03).

    .venv/bin/python benchmarks/bench_range_test.py [--model mlp|lenet] [--steps 200] [--reps 15]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch
from sklearn.datasets import load_digits
from torch import nn

import lrscope
from lrscope.data.tasks.models import lenet_8x8, mlp
from lrscope.schedules import Ramp

CE = nn.functional.cross_entropy
Batch = tuple[torch.Tensor, torch.Tensor]


def digits_batches(batch_size: int, count: int) -> list[Batch]:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(data.target)
    generator = torch.Generator().manual_seed(0)
    batches: list[Batch] = []
    while len(batches) < count:
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            batches.append((x[idx], y[idx]))
    return batches[:count]


def bare_loop(model: nn.Module, opt: torch.optim.Optimizer, batches: list[Batch],
              lrs: list[float]) -> list[float]:
    """What a user would write by hand: set the LR, step, keep the loss."""
    losses = []
    model.train()
    for lr, (x, y) in zip(lrs, batches, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = CE(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) taken by ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "lenet"], default="mlp")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps other processes' load from dominating)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = mlp() if args.model == "mlp" else lenet_8x8()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    initial_model, initial_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    batches = digits_batches(args.batch_size, args.steps)
    # Start and end low enough that neither run diverges: both do every step.
    start_lr, end_lr = 1e-4, 0.05
    ramp = Ramp(start_lr=start_lr, end_lr=end_lr, total_steps=args.steps - 1)
    lrs = [ramp(i) for i in range(args.steps)]

    def run_bare() -> None:
        bare_loop(model, opt, batches, lrs)

    def run_lrscope() -> None:
        result = lrscope.range_test(model, opt, CE, batches, start_lr, end_lr, args.steps)
        assert result.steps == args.steps, result.stopped

    def reset() -> None:
        model.load_state_dict(initial_model)
        opt.load_state_dict(initial_opt)

    for fn in (run_bare, run_lrscope):  # warm-up: allocator, first-call costs
        reset()
        fn()
    wall: dict[str, list[float]] = {"bare": [], "lrscope": []}
    cpu: dict[str, list[float]] = {"bare": [], "lrscope": []}
    for rep in range(args.reps):
        order = [("bare", run_bare), ("lrscope", run_lrscope)]
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            reset()
            seconds, cpu_seconds = timed(fn)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)

    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"model={args.model} steps={args.steps} batch={args.batch_size} reps={args.reps} "
          f"threads={args.threads} torch={torch.__version__}")
    for label, times in (("wall", wall), ("cpu", cpu)):
        bare, ours = times["bare"], times["lrscope"]
        pairs = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
        print(f"{label:4}  bare median {statistics.median(bare) * 1e3:8.2f} ms "
              f"min {min(bare) * 1e3:8.2f} ms | range_test median "
              f"{statistics.median(ours) * 1e3:8.2f} ms min {min(ours) * 1e3:8.2f} ms | "
              f"ratio: median of pairs {pairs:.3f}, of minima {min(ours) / min(bare):.3f}")
    print("target: wall ratio <= 1.03")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
