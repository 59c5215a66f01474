"""The engine contract (lrscope.engines.base), as tests every engine must pass in one process.

Subclass :class:`EngineContract` in a test module; its tests take the ``engine`` fixture
(tests/engines/conftest.py), which is parametrized over every engine. The many-process half of
the contract (shards, means over ranks) is tested under torchrun in test_colossalai_torchrun.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from engine_problem import make_batches, make_model, plain_losses, sgd, train
from torch import nn

from lrscope.engines.base import Engine


def _module_types(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules()]


class EngineContract:
    def test_one_process_is_rank_0_of_1_on_cpu(self, engine: Engine) -> None:
        assert (engine.rank, engine.world_size, engine.is_main) == (0, 1, True)
        assert engine.device == torch.device("cpu")

    def test_setup_trains_the_callers_own_parameters(self, engine: Engine) -> None:
        model = make_model(batchnorm=True)
        before = [p.detach().clone() for p in model.parameters()]
        losses = train(engine, model, make_batches(steps=30, batch_size=32))
        assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
        assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))

    def test_wrappers_share_parameters_and_param_groups(self, engine: Engine) -> None:
        model = make_model()
        optimizer = sgd(model)
        wrapped, wrapped_optimizer = engine.setup(model, optimizer)
        try:
            assert {id(p) for p in wrapped.parameters()} == {id(p) for p in model.parameters()}
            wrapped_optimizer.param_groups[0]["lr"] = 0.123  # how schedules set the LR
            assert optimizer.param_groups[0]["lr"] == 0.123
        finally:
            engine.teardown(wrapped, wrapped_optimizer)

    def test_losses_equal_plain_torch_to_1e_6(self, engine: Engine) -> None:
        model, batches = make_model(batchnorm=True), make_batches(steps=8, batch_size=24)
        expected = plain_losses(model, batches)
        assert train(engine, model, batches) == pytest.approx(expected, abs=1e-6, rel=0)

    def test_mean_of_one_rank_is_the_value(self, engine: Engine) -> None:
        assert engine.mean(1.25) == 1.25
        assert engine.mean(torch.tensor(2.5, requires_grad=True)) == 2.5
        values = torch.tensor([0.5, float("inf"), 3.0], dtype=torch.float64)
        assert torch.equal(engine.mean_tensor(values), values)

    def test_shard_of_one_rank_is_the_whole_batch(self, engine: Engine) -> None:
        x, y = make_batches(steps=1, batch_size=7)[0]
        sx, sy = engine.shard((x, y))
        assert torch.equal(sx, x) and torch.equal(sy, y)

    def test_teardown_leaves_the_raw_model_as_it_was(self, engine: Engine) -> None:
        model = make_model(batchnorm=True)
        types = _module_types(model)
        train(engine, model, make_batches(steps=3, batch_size=16))
        assert _module_types(model) == types
        model.zero_grad(set_to_none=True)
        twin = copy.deepcopy(model)
        x, y = make_batches(steps=1, batch_size=16, seed=5)[0]
        for m in (model, twin):
            nn.functional.cross_entropy(m(x), y).backward()
        # no wrapper hook left behind: the raw model's gradients are plain torch's
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            assert p.grad is not None and torch.equal(p.grad, q.grad)

    def test_restoring_the_raw_model_restores_training(self, engine: Engine) -> None:
        """What the range test does: snapshot the raw model and optimizer, train through the
        wrappers, load the snapshot back; training again gives the same losses."""
        model = make_model()
        optimizer = sgd(model)
        saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        batches = make_batches(steps=4, batch_size=16)
        wrapped, wrapped_optimizer = engine.setup(model, optimizer)
        try:
            runs = []
            for _ in range(2):
                model.load_state_dict(saved[0])
                optimizer.load_state_dict(copy.deepcopy(saved[1]))
                losses = []
                for batch in batches:
                    x, y = engine.shard(batch)
                    wrapped_optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(wrapped(x), y)
                    engine.backward(loss, wrapped_optimizer)
                    wrapped_optimizer.step()
                    losses.append(engine.mean(loss))
                runs.append(losses)
        finally:
            engine.teardown(wrapped, wrapped_optimizer)
        assert runs[0] == runs[1]
        assert runs[0][-1] < runs[0][0]
