"""The embedded default task: scikit-learn's 8x8 handwritten digits (no download).

1,797 images ship inside scikit-learn; a fixed, stratified 80/20 split (always the same, whatever
the run's seed, so every run and every schedule is scored on the same test set) gives 1,437
training and 360 test images, scaled from 0..16 to [0, 1] and shaped ``(N, 1, 8, 8)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import nn

from lrscope.data.tasks.base import Task
from lrscope.data.tasks.models import lenet_8x8, mlp

MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "lenet": lenet_8x8}
DEFAULT_MODEL = "mlp"
DEFAULT_BATCH_SIZE = 64
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: the split is part of the task, not of the run


@cache
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Imported here: scikit-learn takes a second to import and only this task needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
    return x_train, y_train, x_test, y_test


def digits_task(model: str = DEFAULT_MODEL) -> Task:
    """The digits task with model ``model`` (``mlp`` or ``lenet``); names are checked upstream.

    >>> task = digits_task("lenet")
    >>> tuple(task.train_x.shape), tuple(task.test_x.shape), task.num_classes
    ((1437, 1, 8, 8), (360, 1, 8, 8), 10)
    """
    x_train, y_train, x_test, y_test = _split()
    return Task(
        name="digits",
        make_model=MODELS[model],
        # from_numpy shares the cached arrays; .clone() keeps callers from mutating the cache.
        train_x=torch.from_numpy(x_train).clone(),
        train_y=torch.from_numpy(y_train).clone(),
        test_x=torch.from_numpy(x_test).clone(),
        test_y=torch.from_numpy(y_test).clone(),
        batch_size=DEFAULT_BATCH_SIZE,
        num_classes=10,
        description="scikit-learn 8x8 digits, fixed stratified 80/20 split",
        model_name=model,
    )
