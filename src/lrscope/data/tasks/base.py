"""What a task is: a model factory, train/test tensors and a loss.

A task is everything about "the user's problem" that the range test and a trial need, and
nothing about schedules or engines. Data lives in memory as tensors and is batched directly
(see :mod:`lrscope.data.tensor_batches`), never through a DataLoader with workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from lrscope.data.evaluation import Evaluation, evaluate_pairs, infer_classes
from lrscope.data.tensor_batches import TensorBatches
from lrscope.errors import InputError

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_limit(label: str, value: int | None) -> None:
    """Raise InputError unless ``value`` is None or a whole number >= 1.

    >>> check_limit("limit_train", 0)
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: limit_train=0: must be a whole number >= 1
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"{label}={value!r}: must be a whole number >= 1")


@dataclass(frozen=True, eq=False)
class Task:
    """A supervised problem.

    ``make_model()`` builds a fresh model; callers seed ``torch`` before calling it so that the
    same seed gives the same initial weights. ``loss_fn(model(x), y)`` is a mean loss, like a
    torch criterion.

    ``num_classes`` says whether the task has classes: accuracy and steps-to-target exist only
    then (a regression task ranks by loss and shows no accuracy). Left as None it is read off
    the targets: 1-D integer targets are class indices (``max + 1`` classes); anything else
    (float targets, several columns) has none. ``num_classes=0`` says "no classes" outright.
    """

    name: str
    make_model: Callable[[], nn.Module]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    loss_fn: LossFn = field(default_factory=lambda: nn.functional.cross_entropy)
    batch_size: int = 128
    num_classes: int | None = None
    description: str = ""
    model_name: str = ""
    # A validation split (held out of training): what a study selects on; the test set reports.
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.train_x) != len(self.train_y) or len(self.test_x) != len(self.test_y):
            raise InputError(f"task {self.name!r}: inputs and targets differ in length")
        if self.num_classes is None:
            object.__setattr__(self, "num_classes", infer_classes(self.train_y, self.test_y))

    @property
    def has_validation(self) -> bool:
        return self.val_x is not None and self.val_y is not None and len(self.val_x) > 0

    def with_validation(self, fraction: float, seed: int = 0) -> Task:
        """A copy that holds ``fraction`` of the training examples out as its validation split.

        The split is fixed by ``seed`` (a permutation from its own generator), not by a run's
        seed: every schedule and seed of a study trains and selects on the same examples.

        >>> task = Task("t", lambda: nn.Linear(2, 2), torch.zeros(10, 2), torch.zeros(10).long(),
        ...             torch.zeros(4, 2), torch.zeros(4).long())
        >>> split = task.with_validation(0.2)
        >>> len(split.train_x), len(split.val_x), task.with_validation(0.0) is task
        (8, 2, True)
        """
        if not 0 <= fraction < 1:
            raise InputError(f"val_fraction={fraction!r} is out of range; it must lie in [0, 1)")
        if fraction == 0:
            return self
        n = len(self.train_x)
        held = round(n * fraction)
        if held < 1 or held >= n:
            raise InputError(f"val_fraction={fraction!r} of {n} training examples holds out "
                             f"{held}; it must leave at least one on each side")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        order = order.to(self.train_x.device)
        val, train = order[:held].sort().values, order[held:].sort().values
        return dataclasses.replace(
            self, train_x=self.train_x[train], train_y=self.train_y[train],
            val_x=self.train_x[val], val_y=self.train_y[val], num_classes=self.num_classes)

    @property
    def has_classes(self) -> bool:
        """True for classification tasks (accuracy is measured)."""
        return bool(self.num_classes)

    def to(self, device: torch.device | str) -> Task:
        """A copy whose tensors live on ``device``: in-memory data moves once, not every step."""
        device = torch.device(device)
        if self.train_x.device == device:
            return self
        moved = {name: getattr(self, name).to(device) for name in
                 ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")
                 if getattr(self, name) is not None}
        return dataclasses.replace(self, **moved)

    def limited(self, limit_train: int | None = None, limit_test: int | None = None) -> Task:
        """A copy keeping only the first ``limit_train`` / ``limit_test`` examples (None: all).

        For quick runs and CI on a slice of a large dataset; the slice is the file's own order,
        so the same limit always gives the same examples.
        """
        check_limit("limit_train", limit_train)
        check_limit("limit_test", limit_test)
        return dataclasses.replace(
            self,
            train_x=self.train_x[:limit_train], train_y=self.train_y[:limit_train],
            test_x=self.test_x[:limit_test], test_y=self.test_y[:limit_test],
        )

    def with_batch_size(self, batch_size: int | None) -> Task:
        """A copy with another training batch size (None: keep this one)."""
        if batch_size is None:
            return self
        check_limit("batch_size", batch_size)
        return dataclasses.replace(self, batch_size=batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return len(TensorBatches(self.train_x, self.train_y, self.batch_size))

    def train_batches(self, seed: int, drop_last: bool = False) -> TensorBatches:
        """Training batches in a seeded order: the same seed gives the same order every time."""
        return TensorBatches(self.train_x, self.train_y, self.batch_size, seed=seed,
                             drop_last=drop_last)

    def validation_batches(self, examples: int = 512, chunk: int = 512) -> list[Batch] | None:
        """The first ``examples`` test examples in chunks: the range test's fixed validation
        set (None when the test set is empty)."""
        n = min(examples, len(self.test_x))
        if n == 0:
            return None
        x, y = self.test_x[:n], self.test_y[:n]
        return [(x[i:i + chunk], y[i:i + chunk]) for i in range(0, n, chunk)]

    def test_batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        """Test batches in file order (no shuffling)."""
        yield from _chunks(self.test_x, self.test_y, batch_size)

    # -- what a trial asks of it (a Problem answers the same) --------------------------------
    step_fn = None  # a Task's batches are (inputs, targets), scored with loss_fn

    def stream(self, seed: int, count: int) -> Iterator[Batch]:
        """``count`` training batches in seed ``seed``'s order, crossing epochs."""
        return self.train_batches(seed).steps(count)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.loss_fn(model(batch[0]), batch[1])

    def range_batches(self, seed: int) -> TensorBatches:
        return self.train_batches(seed)

    def measure(self, model: nn.Module, device: torch.device) -> Evaluation:
        """Mean test loss, and accuracy when the task has classes; the same on the validation
        split when there is one (step 0: the caller dates it)."""
        loss, accuracy = evaluate_pairs(model, self.test_batches(), self.loss_fn, device,
                                        classes=self.has_classes)
        if not self.has_validation:
            return Evaluation(0, loss, accuracy)
        val_loss, val_accuracy = evaluate_pairs(model, self.val_batches(), self.loss_fn, device,
                                                classes=self.has_classes)
        return Evaluation(0, loss, accuracy, val_loss, val_accuracy)

    def val_batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        """Validation batches in order (nothing without a validation split)."""
        if self.val_x is not None and self.val_y is not None:
            yield from _chunks(self.val_x, self.val_y, batch_size)


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Iterator[Batch]:
    for start in range(0, len(x), size):
        yield x[start:start + size], y[start:start + size]
