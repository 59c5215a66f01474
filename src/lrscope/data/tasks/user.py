"""A user's own task, loaded from ``package.module:function``.

The function is called with those of the keywords ``model``, ``data_dir``, ``batch_size``,
``limit_train``, ``limit_test`` that it accepts (all of them if it takes ``**kwargs``) and that
were given. It returns one of:

* a :class:`~lrscope.data.tasks.base.Task`;
* a dict with the Task's fields: ``make_model``, ``train_x``, ``train_y``, ``test_x``,
  ``test_y`` and optionally ``loss_fn``, ``batch_size``, ``num_classes``, ``name``,
  ``description``;
* a tuple ``(make_model, train_x, train_y, test_x, test_y)``, optionally with ``loss_fn`` as a
  sixth item;
* a :class:`~lrscope.data.problem.Problem` (any model and data loaders, as
  :func:`lrscope.compare` takes them): ``lrscope compare`` runs it as it is.

Arrays may be numpy arrays or tensors. ``make_model()`` must build a fresh ``nn.Module``.
The current directory is searched too, so ``lrscope find --task mytask:build`` works next to
``mytask.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import torch

from lrscope.data.problem import Problem
from lrscope.data.tasks.base import Task
from lrscope.errors import InputError, InputTypeError, did_you_mean

TUPLE_FIELDS = ("make_model", "train_x", "train_y", "test_x", "test_y", "loss_fn")
REQUIRED_FIELDS = TUPLE_FIELDS[:5]
DICT_FIELDS = {f.name for f in dataclasses.fields(Task)}


def _import_function(spec: str) -> Callable[..., Any]:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise InputError(f"task {spec!r}: expected package.module:function")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # appended, so the cwd never shadows installed packages
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if _is_the_module(err.name, module_name):
            raise InputError(f"task {spec!r}: cannot import module {module_name!r} ({err}); "
                             "is it on PYTHONPATH or in the current directory?") from None
        raise InputError(_failed_import(spec, module_name, err)) from None
    except Exception as err:  # the module was found; running it failed
        raise InputError(_failed_import(spec, module_name, err)) from None
    function = getattr(module, function_name, None)
    if function is None:
        names = [n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n])]
        raise InputError(f"task {spec!r}: module {module_name!r} has no function "
                         f"{function_name!r}{did_you_mean(function_name, names)}")
    if not callable(function):
        raise InputTypeError(f"task {spec!r}: {module_name}.{function_name} is not callable")
    return function


def _is_the_module(missing: str | None, module_name: str) -> bool:
    """Whether a ModuleNotFoundError for ``missing`` means ``module_name`` itself (or one of its
    parent packages) is not there, rather than something it imports."""
    return missing is not None and (module_name == missing
                                    or module_name.startswith(missing + "."))


def _failed_import(spec: str, module_name: str, err: BaseException) -> str:
    """One line: the module was found but raised while importing; what, and where in it."""
    what = " ".join(f"{type(err).__name__}: {err}".split())
    where = _where(module_name, err)
    return (f"task {spec!r}: module {module_name!r} failed while importing: {what}"
            + (f" (at {where})" if where else ""))


def _where(module_name: str, err: BaseException) -> str | None:
    """``file:line`` of the deepest frame in the user's package (its own modules, not the
    libraries it calls or importlib's machinery); for a SyntaxError, the line that has it."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    top = module_name.split(".")[0]
    found = None
    for frame, line in traceback.walk_tb(err.__traceback__):
        name = str(frame.f_globals.get("__name__", ""))
        if name == top or name.startswith(top + "."):
            found = f"{frame.f_code.co_filename}:{line}"
    return found


def _accepted(function: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in options.items() if v is not None}
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return given
    names = {p.name for p in parameters
             if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    return {k: v for k, v in given.items() if k in names}


def _as_tensor(spec: str, field: str, value: Any) -> torch.Tensor:
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise InputTypeError(f"task {spec!r}: {field} must be a tensor or an array; got "
                             f"{type(value).__name__}") from None


def _to_task(spec: str, returned: Any) -> Task:
    if isinstance(returned, (Task, Problem)):
        return returned  # type: ignore[return-value]  # a Problem answers what compare asks
    if isinstance(returned, tuple) and len(returned) in (5, 6):
        fields = dict(zip(TUPLE_FIELDS, returned, strict=False))
    elif isinstance(returned, dict):
        unknown = sorted(set(returned) - DICT_FIELDS)
        if unknown:
            raise InputError(f"task {spec!r}: unknown key {unknown[0]!r} in the returned dict"
                             f"{did_you_mean(unknown[0], DICT_FIELDS)}; allowed: "
                             + ", ".join(sorted(DICT_FIELDS)))
        fields = dict(returned)
    else:
        raise InputTypeError(f"task {spec!r}: the function returned {type(returned).__name__}; "
                             "expected a Task, a dict of Task fields or a tuple (make_model, "
                             "train_x, train_y, test_x, test_y[, loss_fn])")
    missing = [name for name in REQUIRED_FIELDS if fields.get(name) is None]
    if missing:
        raise InputError(f"task {spec!r}: the returned value lacks {', '.join(missing)}")
    if not callable(fields["make_model"]):
        raise InputTypeError(f"task {spec!r}: make_model must be callable (a function that "
                             "builds a fresh nn.Module)")
    for name in ("train_x", "train_y", "test_x", "test_y"):
        fields[name] = _as_tensor(spec, name, fields[name])
    if fields.get("loss_fn") is None:
        fields.pop("loss_fn", None)
    fields.setdefault("name", spec)
    return Task(**fields)


def user_task(spec: str, **options: Any) -> Task:
    """Load the task that ``package.module:function`` returns (see the module docstring).

    >>> user_task("lrscope.data.tasks.digits:digits_task", model="lenet").model_name
    'lenet'
    """
    function = _import_function(spec)
    return _to_task(spec, function(**_accepted(function, options)))
