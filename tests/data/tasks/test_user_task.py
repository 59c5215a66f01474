"""A user's own task from package.module:function, in every documented return form."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lrscope.data.tasks import Task, get_task
from lrscope.errors import InputError

MODULE = '''
import numpy as np
import torch
from torch import nn

from lrscope.data.tasks import Task

def _data(n):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()

def as_task(model="small", batch_size=None):
    x, y = _data(40)
    return Task(name="mine", make_model=lambda: nn.Linear(4, 2), train_x=x, train_y=y,
                test_x=x[:10], test_y=y[:10], batch_size=batch_size or 16, model_name=model)

def as_dict(**options):
    x, y = _data(30)
    return {"make_model": lambda: nn.Linear(4, 2), "train_x": x.numpy(), "train_y": y.numpy(),
            "test_x": x[:5], "test_y": y[:5], "num_classes": 2, "description": repr(options)}

def as_tuple():
    x, y = _data(12)
    return (lambda: nn.Linear(4, 2), x, y, x, y, nn.functional.cross_entropy)

def bad_return():
    return 42

def bad_dict():
    return {"make_model": lambda: nn.Linear(4, 2), "train_X": 1}

def missing_field():
    return {"make_model": lambda: nn.Linear(4, 2)}
'''


@pytest.fixture()
def user_module(tmp_path: Path) -> Iterator[str]:
    name = f"lrscope_user_task_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_function_returning_a_task_gets_the_options_it_accepts(user_module: str) -> None:
    task = get_task(f"{user_module}:as_task", model="big", batch_size=8, data_dir="/x")
    assert isinstance(task, Task) and task.name == "mine"
    assert task.model_name == "big" and task.batch_size == 8 and task.steps_per_epoch == 5


def test_dict_form_with_numpy_arrays_and_kwargs(user_module: str) -> None:
    task = get_task(f"{user_module}:as_dict", limit_train=20, data_dir="/data")
    assert task.name == f"{user_module}:as_dict" and task.num_classes == 2
    assert isinstance(task.train_x, torch.Tensor) and len(task.train_x) == 20
    assert "'/data'" in task.description and "limit_train" in task.description


def test_tuple_form(user_module: str) -> None:
    task = get_task(f"{user_module}:as_tuple")
    assert len(task.train_x) == 12 and task.make_model()(task.train_x).shape == (12, 2)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
    ("{mod}:as_tsk", "has no function 'as_tsk' (did you mean 'as_task'?)"),
    ("{mod}:bad_return", "returned int"),
    ("{mod}:bad_dict", "unknown key 'train_X'"),
    ("{mod}:missing_field", "lacks train_x, train_y, test_x, test_y"),
    (":f", "expected package.module:function"),
])
def test_errors_name_the_module_and_function(user_module: str, spec: str, fragment: str) -> None:
    spec = spec.format(mod=user_module)
    with pytest.raises(InputError) as info:
        get_task(spec)
    message = str(info.value)
    assert "\n" not in message and spec in message and fragment in message


def test_unknown_builtin_names_suggest_the_closest() -> None:
    with pytest.raises(InputError, match=r"unknown task 'fashion_mnist' \(did you mean "
                                         r"'fashion-mnist'\?\)"):
        get_task("fashion_mnist")
    with pytest.raises(InputError, match=r"unknown model 'lenett' for task digits \(did you "
                                         r"mean 'lenet'\?\)"):
        get_task("digits", model="lenett")


@pytest.mark.parametrize("option", ["limit_train", "limit_test", "batch_size"])
def test_bad_limits_are_input_errors(option: str) -> None:
    with pytest.raises(InputError, match=option):
        get_task("digits", **{option: 0})


# issue 8 item 10
@pytest.mark.parametrize(("body", "line", "what"), [
    ("import torch\n\nscale = undefined_name * 2\n", 3,
     "NameError: name 'undefined_name' is not defined"),
    ("x = 1\nimport lrscope_no_such_package_xyz\n", 2,
     "ModuleNotFoundError: No module named 'lrscope_no_such_package_xyz'"),
])
def test_a_module_failing_on_import_says_what_failed_and_where(tmp_path: Path, body: str,
                                                               line: int, what: str) -> None:
    name = f"lrscope_broken_task_{tmp_path.name.replace('-', '_')}"
    path = tmp_path / f"{name}.py"
    path.write_text(body + "\ndef build():\n    return None\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(InputError) as info:
            get_task(f"{name}:build")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    message = str(info.value)
    assert "\n" not in message and f"module {name!r} failed while importing" in message
    assert what in message and f"{path}:{line}" in message
    assert "PYTHONPATH" not in message  # the module was found: the path is not the problem
