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


def _lenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))


def _largest_layer_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """What a real no-grad forward of ``model`` on ``x`` holds at its largest layer: the bytes
    of that layer's input and output, read by forward hooks."""
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(i[0].nbytes + o.nbytes))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return max(sizes)


def test_issue16_item17_the_estimate_covers_the_first_evaluation() -> None:
    """LeNet on 28x28 images, K=8: evaluation runs K stacked no-grad forwards of a
    1024-example chunk, which peak far above one 128-example training step's saved
    activations. The checked estimate covers what that evaluation holds (measured on a real
    forward of the first test chunk), so a group that passes never runs out at it."""
    g = torch.Generator().manual_seed(0)
    task = Task("images", _lenet, torch.randn(256, 1, 28, 28, generator=g),
                torch.randint(0, 10, (256,), generator=g),
                torch.randn(1024, 1, 28, 28, generator=g),
                torch.randint(0, 10, (1024,), generator=g), batch_size=128)
    k = 8
    est = batched_memory(task, k=k)
    held = est.weights + est.grads + est.optimizer_state + est.buffers
    x, _ = next(iter(task.test_batches()))
    assert len(x) == 1024
    evaluation = k * _largest_layer_bytes(task.make_model(), x)
    assert evaluation > est.activations  # what the training step's count alone missed
    assert est.total >= held + evaluation
    # backward holds the largest layer's gradients (input and output) on top of the saved
    train_x = next(iter(task.train_batches(0).steps(1)))[0]
    assert est.training_step >= est.activations + k * _largest_layer_bytes(task.make_model(),
                                                                             train_x)
