"""Launch detection, collective timeouts and batch sharding (lrscope.engines.distributed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
import torch.distributed.distributed_c10d as c10d
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.engines.distributed import (
    TORCHRUN_VARIABLES,
    collective_timeout,
    is_launched_by_torchrun,
    rank_slice,
)
from lrscope.errors import InputError


@given(rows=st.integers(1, 40), world_size=st.integers(1, 8))
@settings(max_examples=60, deadline=None)
def test_shares_are_equal_and_concatenate_to_the_kept_rows(rows: int, world_size: int) -> None:
    x, y = torch.arange(rows * 2).reshape(rows, 2), torch.arange(rows)
    if rows < world_size:
        with pytest.raises(InputError, match=f"{rows} rows cannot be split over {world_size}"):
            rank_slice((x, y), 0, world_size)
        return
    shares = [rank_slice((x, y), rank, world_size) for rank in range(world_size)]
    kept = rows - rows % world_size
    assert {len(sx) for sx, _ in shares} == {rows // world_size}
    assert torch.equal(torch.cat([sx for sx, _ in shares]), x[:kept])
    assert torch.equal(torch.cat([sy for _, sy in shares]), y[:kept])


def test_nested_batches_are_sharded_leaf_by_leaf() -> None:
    batch = {"inputs": [torch.arange(6), torch.ones(6, 2)], "label": torch.arange(6), "tag": "t"}
    share = rank_slice(batch, 1, 3)
    assert share["inputs"][0].tolist() == [2, 3] and share["label"].tolist() == [2, 3]
    assert share["inputs"][1].shape == (2, 2) and share["tag"] == "t"


def test_tensors_of_different_lengths_are_refused() -> None:
    with pytest.raises(InputError, match=r"differ in length \[3, 4\]"):
        rank_slice((torch.ones(4), torch.ones(3)), 0, 2)


def test_torchrun_is_recognised_only_with_all_its_variables() -> None:
    env = dict.fromkeys(TORCHRUN_VARIABLES, "0")
    assert is_launched_by_torchrun(env)
    for name in TORCHRUN_VARIABLES:
        assert not is_launched_by_torchrun({k: v for k, v in env.items() if k != name})


def test_collective_timeout_is_set_inside_and_restored_after_an_error() -> None:
    before = c10d.default_pg_timeout
    with pytest.raises(KeyError), collective_timeout(7):
        assert c10d.default_pg_timeout == timedelta(seconds=7)
        raise KeyError
    assert c10d.default_pg_timeout == before
    with pytest.raises(InputError, match="timeout_s"), collective_timeout(0):
        pass
