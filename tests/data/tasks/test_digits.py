"""The embedded digits task: shapes, classes, a fixed split and seeded batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from lrscope.data.tasks import get_task


def test_shapes_range_and_classes() -> None:
    task = get_task("digits")
    assert task.train_x.shape == (1437, 1, 8, 8) and task.test_x.shape == (360, 1, 8, 8)
    assert task.train_x.dtype == torch.float32 and task.train_y.dtype == torch.int64
    assert float(task.train_x.min()) >= 0.0 and float(task.train_x.max()) == 1.0
    assert set(task.train_y.tolist()) == set(range(10)) == set(task.test_y.tolist())
    assert task.num_classes == 10 and task.batch_size == 64


def test_split_is_fixed_and_disjoint() -> None:
    a, b = get_task("digits"), get_task("digits", model="lenet")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    train = {tuple(row.flatten().tolist()) for row in a.train_x}
    overlap = sum(tuple(row.flatten().tolist()) in train for row in a.test_x)
    # digits has a few duplicate images; a leaking split would share hundreds.
    assert overlap < 5


def test_split_is_stratified() -> None:
    task = get_task("digits")
    train_share = torch.bincount(task.train_y) / len(task.train_y)
    test_share = torch.bincount(task.test_y) / len(task.test_y)
    assert float((train_share - test_share).abs().max()) < 0.01


def test_batches_repeat_for_a_seed_and_differ_across_seeds() -> None:
    task = get_task("digits")
    first = [y.tolist() for _, y in task.train_batches(seed=3).steps(30)]
    again = [y.tolist() for _, y in task.train_batches(seed=3).steps(30)]
    other = [y.tolist() for _, y in task.train_batches(seed=4).steps(30)]
    assert first == again and first != other
    assert len(first) == 30 and all(len(b) == 64 for b in first[:22])


@pytest.fixture()
def one_thread() -> Iterator[None]:
    # Tiny models on a shared 2-core machine run 10-50x slower with 2 intra-op threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("model_name", ["mlp", "lenet"])
@pytest.mark.usefixtures("one_thread")
def test_models_learn_the_task(model_name: str) -> None:
    task = get_task("digits", model=model_name)
    torch.manual_seed(0)
    model = task.make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in task.train_batches(seed=0).steps(200):
        opt.zero_grad()
        task.loss_fn(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        accuracy = float((model(task.test_x).argmax(1) == task.test_y).float().mean())
    assert accuracy > 0.85


def test_same_seed_same_initial_weights() -> None:
    task = get_task("digits", model="lenet")
    torch.manual_seed(5)
    a = task.make_model().state_dict()
    torch.manual_seed(5)
    b = task.make_model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_kept_split_is_sklearns_and_the_data_is_load_digits():
    # The task reads sklearn's digits file directly and keeps the split's indices (no sklearn
    # import at run time); both must be exactly what sklearn itself gives.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from lrscope.data.tasks import digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, data.target, test_size=digits.TEST_FRACTION, random_state=digits.SPLIT_SEED,
        stratify=data.target)
    task = digits.digits_task()
    assert np.array_equal(task.train_x.numpy(), x_train)
    assert np.array_equal(task.test_x.numpy(), x_test)
    assert np.array_equal(task.train_y.numpy(), y_train)
    assert np.array_equal(task.test_y.numpy(), y_test)
