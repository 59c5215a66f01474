"""One process, no torchrun: facts about the ColossalAI engine's process-group lifetime,
printed as JSON for test_colossalai_engine.py. Run as ``python colossalai_lifecycle.py MODE``.

MODE ``facts``: RNG kept, group shared then destroyed, a caller's group left alone, errors in
a ``with`` block close the engine. MODE ``exit-without-close``: train, then exit with the
engine open (the exit hook must close it). MODE ``error-without-close``: same, but the script
ends with an uncaught error while the wrappers are alive.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from engine_problem import make_batches, make_model, sgd

from lrscope.engines import get_engine


def facts() -> dict[str, object]:
    found: dict[str, object] = {}
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = get_engine("colossalai")  # colossalai.launch reseeds; the engine puts RNG back
    found["rng_kept"] = torch.equal(torch.rand(3), expected)
    second = get_engine("colossalai", plugin="hybrid")
    found["second_reuses_group"] = first.created_group and second.created_group
    first.close()
    first.close()  # twice is fine
    found["group_alive_while_second_open"] = dist.is_initialized()
    second.close()
    found["group_destroyed_after_last_close"] = not dist.is_initialized()
    try:
        with get_engine("colossalai") as third:
            model = make_model()
            third.setup(model, sgd(model))
            raise ValueError("boom")
    except ValueError:
        pass
    found["error_in_with_block_destroys_group"] = not dist.is_initialized()
    try:
        third.setup(model, sgd(model))
    except RuntimeError as err:
        found["closed_engine_refuses"] = "closed" in str(err)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
    with get_engine("colossalai") as fourth:
        found["callers_group_reused"] = not fourth.created_group
    found["callers_group_left_alone"] = dist.is_initialized()
    dist.destroy_process_group()
    return found


def train_and_leave_open() -> object:
    engine = get_engine("colossalai")
    model = make_model()
    wrapped, optimizer = engine.setup(model, sgd(model))
    for x, y in make_batches(steps=3, batch_size=8):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(wrapped(x), y)
        engine.backward(loss, optimizer)
        optimizer.step()
    return wrapped, optimizer


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "facts":
        print(json.dumps(facts()))
    elif mode == "exit-without-close":
        alive = train_and_leave_open()
        print("trained", flush=True)
    elif mode == "error-without-close":
        alive = train_and_leave_open()
        print("trained", flush=True)
        raise RuntimeError(f"failing on purpose with {type(alive).__name__} alive")
