"""One rank of the two-process tests, started by torchrun (test_colossalai_torchrun.py).

Every rank builds the same model and global batches (engine_problem), trains on its shard
through the ColossalAI engine and writes what it saw to ``OUT/rank<r>.json``. With
``--fail-rank R --fail-step S --fail-how sigkill|exit|hang`` rank R dies (or hangs) at step S.

    torchrun --standalone --nproc_per_node 2 tests/engines/colossalai_worker.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from engine_problem import make_batches, make_model, sgd
from torch import nn

import lrscope
from lrscope.data.tensor_batches import TensorBatches
from lrscope.engines import get_engine
from lrscope.engines.base import Engine


def fail(how: str, out: Path) -> None:
    (out / "failed_at").write_text(repr(time.time()))  # the test measures from here
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "exit":
        os._exit(1)
    elif how == "hang":
        time.sleep(600)


def train(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    model = make_model()
    wrapped, optimizer = engine.setup(model, sgd(model))
    losses, rows = [], []
    for step, batch in enumerate(make_batches(args.steps, args.batch_size)):
        if engine.rank == args.fail_rank and step == args.fail_step:
            fail(args.fail_how, args.out)
        x, y = engine.shard(batch)
        rows.append(len(x))
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(wrapped(x), y)
        engine.backward(loss, optimizer)
        optimizer.step()
        losses.append(engine.mean(loss))
    engine.teardown(wrapped, optimizer)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return {"losses": losses, "rows": rows, "params": params.tolist()}


def range_test(engine: Engine) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(512, 6, generator=generator)
    y = (x @ torch.randn(6, 3, generator=generator)).argmax(-1)
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    result = lrscope.range_test(model, sgd(model), nn.functional.cross_entropy,
                                TensorBatches(x, y, batch_size=32, seed=0),
                                start_lr=1e-3, end_lr=100.0, num_steps=60, engine=engine)
    return {"suggestion": result.suggestion, "suggestions": result.suggestions,
            "stopped": result.stopped, "steps": len(result.losses),
            "losses": result.losses.tolist(), "diverged_at": result.diverged_at,
            "effective_batch_size": result.effective_batch_size,
            "world_size": result.world_size,
            "restored": all(torch.equal(a, p)
                            for a, p in zip(before, model.parameters(), strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plugins", default="torch_ddp")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--range-test", action="store_true")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-step", type=int, default=-1)
    parser.add_argument("--fail-how", choices=("sigkill", "exit", "hang"), default="exit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict[str, Any] = {}
    for plugin in args.plugins.split(","):
        with get_engine("colossalai", plugin=plugin, timeout_s=args.timeout) as engine:
            report.update(rank=engine.rank, world_size=engine.world_size)
            report[plugin] = train(engine, args)
            if args.range_test and plugin == "torch_ddp":
                report["range_test"] = range_test(engine)
    (args.out / f"rank{report['rank']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
