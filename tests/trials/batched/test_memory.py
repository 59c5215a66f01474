"""The batched memory estimate: what it counts, and a K that cannot fit refused before any step."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from torch import nn

from lrscope.data.tasks import Task, get_task
from lrscope.errors import InputError
from lrscope.schedules import Constant
from lrscope.trials.batched.memory import available_memory, check_memory
from lrscope.trials.batched.run import batched_memory, run_trials_batched


@pytest.fixture(scope="module")
def digits() -> Task:
    return get_task("digits", model="mlp", limit_train=256, limit_test=64)


def wide(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def test_estimate_counts_k_copies_of_weights_grads_and_state(digits: Task) -> None:
    params = sum(p.numel() for p in digits.make_model().parameters())
    sgd = batched_memory(digits, k=8)
    assert sgd.weights == sgd.grads == 8 * 4 * params  # float32
    assert sgd.optimizer_state == sgd.weights  # one momentum buffer
    adam = batched_memory(digits, k=8,
                          make_optimizer=lambda m: torch.optim.Adam(m.parameters()))
    assert adam.optimizer_state == 2 * adam.weights  # two moments
    assert adam.activations > 0 and adam.buffers == 0
    # Linear in K: each trial adds its share.
    assert batched_memory(digits, k=16).total == 2 * sgd.total


def test_batchnorm_statistics_count_as_buffers(digits: Task) -> None:
    task = dataclasses.replace(digits, make_model=lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10)))
    assert batched_memory(task, k=3).buffers == 3 * 2 * 32 * 4  # mean and variance per trial


def test_absurd_k_is_refused_before_any_step(digits: Task) -> None:
    # 13 million parameters: K=2000 trials of it would need hundreds of GiB.
    task = dataclasses.replace(digits, make_model=lambda: wide(200_000))
    with pytest.raises(InputError) as caught:
        run_trials_batched(task, [Constant(lr=0.01)] * 2000, seed=0, steps=2, eval_every=2)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(r"^parallel: batched needs about [\d.]+ [GT]iB for 2000 trials \(weights ",
                     message)
    assert re.search(r"but cpu has [\d.]+ [KMGT]iB free; run fewer trials at once \(at most \d+ "
                     r"fit: fewer schedules per seed\) or use --parallel none\|processes$", message)


def test_a_k_that_fits_passes() -> None:
    est = batched_memory(get_task("digits", limit_train=64, limit_test=8), k=4)
    free = available_memory("cpu")
    assert free is not None and est.total < free
    check_memory(est, "cpu")  # no error
    with pytest.raises(InputError, match="not one trial fits batched"):
        check_memory(est, "cpu", available=est.per_trial // 2)
