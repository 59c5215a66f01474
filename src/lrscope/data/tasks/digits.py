"""The embedded default task: scikit-learn's 8x8 handwritten digits (no download).

1,797 images ship inside scikit-learn; a fixed, stratified 80/20 split (always the same, whatever
the run's seed, so every run and every schedule is scored on the same test set) gives 1,437
training and 360 test images, scaled from 0..16 to [0, 1] and shaped ``(N, 1, 8, 8)``.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrscope.data.tasks.base import Task
from lrscope.data.tasks.models import lenet_8x8, mlp
from lrscope.errors import InputError

MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "lenet": lenet_8x8}
DEFAULT_MODEL = "mlp"
DEFAULT_BATCH_SIZE = 64
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: the split is part of the task, not of the run


# The split's indices, as sklearn's train_test_split(test_size=0.2, random_state=0,
# stratify=labels) made them, kept with the package: the split is part of the task and must not
# move with sklearn's version (tests/data/tasks/test_digits.py checks it against sklearn's).
SPLIT_FILE = Path(__file__).with_name("digits_split.npz")


def digits_csv() -> Path:
    """scikit-learn's own copy of the digits (``load_digits`` reads the same file), found
    without importing scikit-learn, which would cost about a second."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("task digits: scikit-learn is not installed (pip install scikit-learn)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "datasets" / "data" / "digits.csv.gz"


@cache
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with gzip.open(digits_csv(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    images = (table[:, :-1].reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    labels = table[:, -1].astype(np.int64)
    with np.load(SPLIT_FILE) as split:
        train, test = split["train"].astype(np.int64), split["test"].astype(np.int64)
    return images[train], labels[train], images[test], labels[test]


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
