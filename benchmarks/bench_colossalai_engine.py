"""Overhead of the ColossalAI engine (one process, CPU) against the local engine.

Both engines run the same training steps (LeNet-5 or the MLP on scikit-learn's digits,
batch 64, SGD with momentum, the loss read once per step through ``engine.mean``) from the
same initial weights. Repetitions alternate (local, colossalai, colossalai, local, ...) within
one process so that machine load hits both alike; the ratio printed is the median of the
per-pair ratios of wall time. Engine creation and the ColossalAI import (~4 s) are not timed;
``setup``/``teardown`` are, once per repetition.

    .venv/bin/python benchmarks/bench_colossalai_engine.py [--model lenet|mlp]
        [--plugin torch_ddp|hybrid] [--steps 100] [--reps 11] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lrscope.data.tasks.digits import digits_task
from lrscope.engines import Engine, get_engine

Batch = tuple[torch.Tensor, torch.Tensor]


def run(engine: Engine, model: nn.Module, batches: list[Batch]) -> float:
    """Seconds for setup, the steps and teardown."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = time.perf_counter()
    wrapped, wrapped_optimizer = engine.setup(model, optimizer)
    for batch in batches:
        x, y = engine.shard(batch)
        wrapped_optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(wrapped(x), y)
        engine.backward(loss, wrapped_optimizer)
        wrapped_optimizer.step()
        engine.mean(loss)
    engine.teardown(wrapped, wrapped_optimizer)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("lenet", "mlp"), default="lenet")
    parser.add_argument("--plugin", choices=("torch_ddp", "hybrid"), default="torch_ddp")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: steadier timings on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = digits_task(args.model)
    batches = list(task.train_batches(seed=0).steps(args.steps))
    torch.manual_seed(0)
    initial = task.make_model().state_dict()
    engines = {"local": get_engine("local"),
               "colossalai": get_engine("colossalai", plugin=args.plugin)}

    def timed(name: str) -> float:
        model = task.make_model()
        model.load_state_dict(initial)
        return run(engines[name], model, batches)

    timed("local"), timed("colossalai")  # warm-up
    times: dict[str, list[float]] = {"local": [], "colossalai": []}
    ratios = []
    for rep in range(args.reps):
        order = ("local", "colossalai") if rep % 2 == 0 else ("colossalai", "local")
        pair = {name: timed(name) for name in order}
        for name, seconds in pair.items():
            times[name].append(seconds)
        ratios.append(pair["colossalai"] / pair["local"])
    engines["colossalai"].close()

    for name, seconds in times.items():
        per_step = statistics.median(seconds) / args.steps * 1e3
        print(f"{name:>10}: {per_step:.3f} ms/step (median of {args.reps})")
    print(f"model={args.model} plugin={args.plugin} steps={args.steps} threads={args.threads}")
    print(f"colossalai/local time ratio: {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
