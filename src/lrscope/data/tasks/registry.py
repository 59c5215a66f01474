"""Tasks by name: ``digits`` (embedded default), ``fashion-mnist``, ``mnist``, or a user's own
``package.module:function``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lrscope.data.tasks import digits, mnist
from lrscope.data.tasks.base import Task, check_limit
from lrscope.data.tasks.user import user_task
from lrscope.errors import InputError, did_you_mean

DEFAULT_TASK = "digits"


@dataclass(frozen=True)
class BuiltinTask:
    """A built-in task: its model names and how to build it."""

    name: str
    models: tuple[str, ...]
    default_model: str
    # (model, data_dir, limit_train, limit_test) -> Task
    build: Callable[[str, str | Path | None, int | None, int | None], Task]
    description: str


def _build_digits(model: str, data_dir: str | Path | None, limit_train: int | None,
                  limit_test: int | None) -> Task:
    # digits ships with scikit-learn: data_dir has nothing to say about it.
    return digits.digits_task(model).limited(limit_train, limit_test)


TASKS: dict[str, BuiltinTask] = {
    "digits": BuiltinTask("digits", tuple(digits.MODELS), digits.DEFAULT_MODEL, _build_digits,
                          "scikit-learn's 8x8 digits (embedded, no download)"),
    "fashion-mnist": BuiltinTask("fashion-mnist", tuple(mnist.MODELS), mnist.DEFAULT_MODEL,
                                 partial(mnist.idx_task, "fashion-mnist"),
                                 "Fashion-MNIST IDX files (Debian's dataset-fashion-mnist)"),
    "mnist": BuiltinTask("mnist", tuple(mnist.MODELS), mnist.DEFAULT_MODEL,
                         partial(mnist.idx_task, "mnist"), "MNIST IDX files from --data-dir"),
}


def is_user_task(name: str) -> bool:
    """True for ``package.module:function`` names."""
    return ":" in name


def check_task_name(name: str, model: str | None = None) -> None:
    """Raise InputError for an unknown built-in task or model name; user tasks pass unchecked.

    >>> check_task_name("digits", "lenet")
    >>> check_task_name("digit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: task: unknown task 'digit' (did you mean 'digits'?); choose ...
    """
    if is_user_task(name):
        return
    if name not in TASKS:
        raise InputError(f"task: unknown task {name!r}{did_you_mean(name, TASKS)}; choose one of "
                         + ", ".join(TASKS) + ", or package.module:function for your own")
    models = TASKS[name].models
    if model is not None and model not in models:
        raise InputError(f"model: unknown model {model!r} for task {name}"
                         f"{did_you_mean(model, models)}; choose one of " + ", ".join(models))


def get_task(name: str = DEFAULT_TASK, model: str | None = None,
             data_dir: str | Path | None = None, batch_size: int | None = None,
             limit_train: int | None = None, limit_test: int | None = None) -> Task:
    """The task called ``name``, with ``model`` (None: the task's default) and options.

    ``batch_size`` overrides the task's default (64 for digits, 128 for the IDX tasks);
    ``limit_train`` / ``limit_test`` keep only the first N examples (quick runs, CI).

    >>> task = get_task("digits", model="lenet", batch_size=32, limit_train=100)
    >>> task.model_name, task.batch_size, len(task.train_x), task.steps_per_epoch
    ('lenet', 32, 100, 4)
    """
    check_limit("limit_train", limit_train)
    check_limit("limit_test", limit_test)
    check_limit("batch_size", batch_size)
    if is_user_task(name):
        task = user_task(name, model=model, data_dir=data_dir, batch_size=batch_size,
                         limit_train=limit_train, limit_test=limit_test)
        return task.limited(limit_train, limit_test).with_batch_size(batch_size)
    check_task_name(name, model)
    builtin = TASKS[name]
    task = builtin.build(model or builtin.default_model, data_dir, limit_train, limit_test)
    return task.with_batch_size(batch_size)
