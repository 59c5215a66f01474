"""What identifies the pieces a :func:`lrscope.compare` call is given, so that a rerun on the same
``out`` resumes only the same study.

A function's name does not identify it (every lambda is ``<lambda>``, every
``functools.partial`` is ``partial``), and the data are not named at all. So a study stores:

* the model: its class, its parameter count and a hash of its initial weights at seed 0;
* the optimizer, as built on that model: its class, its defaults and each param group's
  settings that differ from them;
* ``loss_fn``, ``step_fn``, ``evaluate``: a function's qualified name; for a lambda or a local
  function also a hash of its code (bytecode, constants, names) and of the values it closes over
  and its defaults; for a ``functools.partial`` its function, args and keywords; for a module
  (``nn.CrossEntropyLoss(label_smoothing=0.1)``) or another callable object its class, its
  settings and a hash of its tensors;
* the data: the shapes of the first :data:`FIRST_BATCHES` batches and a hash of their contents,
  for the training data at seed 0, ``val_data`` and ``test_data``.

What this cannot see: an edit inside a module-level function's body (only its name is kept), a
change in the data past the first batches, and values a function reads from globals or files
when it runs. Those a user must keep fixed (or choose a new ``out``).

>>> import torch
>>> callable_identity(torch.nn.functional.mse_loss)
'torch.nn.functional.mse_loss'
>>> callable_identity(lambda a, b: a - b) != callable_identity(lambda a, b: b - a)
True
>>> callable_identity(torch.nn.CrossEntropyLoss(label_smoothing=0.1))
"torch.nn.modules.loss.CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1, reduction='mean')"
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

FIRST_BATCHES = 2  # how many batches of each data set the fingerprint reads
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def study_identity(task: Any, make_optimizer: Callable[[nn.Module], Any],
                   parts: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of a study's model, optimizer, ``parts`` (callables by name: loss_fn,
    step_fn, evaluate) and data (``task``'s training batches at seed 0, and the ``val_data`` and
    ``test_data`` among ``parts``). The caller keeps the RNGs (lrscope.rng.preserved_rng)."""
    torch.manual_seed(0)
    model = task.make_model()
    optimizer = make_optimizer(model)
    weights = sum(p.numel() for p in model.parameters())
    found: dict[str, Any] = {
        "model": (f"{_qualname(type(model))}: {weights} weights, "
                  f"initial {_hash(model.state_dict())}"),
        "optimizer": optimizer_identity(optimizer),
        "train_data": _fingerprint(list(itertools.islice(task.stream(0, FIRST_BATCHES),
                                                         FIRST_BATCHES))),
    }
    for name, part in parts.items():
        found[name] = (data_identity(part) if name.endswith("_data")
                       else callable_identity(part))
    return found


def optimizer_identity(optimizer: Any) -> str:
    """Class, defaults, and each param group's size and the settings it overrides.

    >>> sgd = torch.optim.SGD([torch.zeros(2)], lr=0.1, momentum=0.9)
    >>> optimizer_identity(sgd)  # doctest: +ELLIPSIS
    'torch.optim.sgd.SGD(dampening=0, ..., lr=0.1, ..., momentum=0.9, ...); groups: 1 params'
    """
    defaults = dict(getattr(optimizer, "defaults", {}))
    groups = []
    for group in getattr(optimizer, "param_groups", []):
        own = [f"{k}={value_identity(v)}" for k, v in sorted(group.items()) if k != "params"
               and value_identity(v) != value_identity(defaults.get(k, object()))]
        groups.append(", ".join([f"{len(group['params'])} params", *own]))
    settings = ", ".join(f"{k}={value_identity(v)}" for k, v in sorted(defaults.items()))
    return f"{_qualname(type(optimizer))}({settings}); groups: {' | '.join(groups)}"


def callable_identity(fn: Any, depth: int = 0) -> str | None:
    """What identifies ``fn`` across processes (see the module docstring); None for None."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        args = [value_identity(a, depth + 1) for a in fn.args]
        args += [f"{k}={value_identity(v, depth + 1)}" for k, v in sorted(fn.keywords.items())]
        return f"partial({callable_identity(fn.func, depth + 1)}, {', '.join(args)})"
    if isinstance(fn, types.MethodType):
        return f"{callable_identity(fn.__func__, depth + 1)} of {value_identity(fn.__self__)}"
    if inspect.isfunction(fn):
        name = f"{fn.__module__}.{fn.__qualname__}"
        if "<lambda>" in fn.__qualname__ or "<locals>" in fn.__qualname__:
            return f"{name} [code {_code_hash(fn, depth)}]"
        return name
    if inspect.isbuiltin(fn) or inspect.isclass(fn):
        return f"{getattr(fn, '__module__', '') or ''}.{getattr(fn, '__qualname__', fn)}"
    return value_identity(fn, depth)


def value_identity(value: Any, depth: int = 0) -> str:
    """A short, stable text for a setting's value: scalars as written, tensors and arrays by
    shape and content hash, containers item by item, objects by class and public settings."""
    if isinstance(value, _SCALARS):
        return repr(value)
    if depth > 4:
        return _qualname(type(value))
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"{type(value).__name__}{tuple(value.shape)}:{_hash(value)}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_identity(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_identity(v, depth + 1)}"
                               for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    if callable(value) and not isinstance(value, nn.Module) and (
            inspect.isfunction(value) or isinstance(value, functools.partial)):
        return str(callable_identity(value, depth + 1))
    settings = [f"{k}={value_identity(v, depth + 1)}" for k, v in sorted(vars_of(value).items())
                if not k.startswith("_") and k != "training"  # a mode, not a setting
                and isinstance(v, (*_SCALARS, list, tuple))]
    text = f"{_qualname(type(value))}({', '.join(settings)})"
    if isinstance(value, nn.Module) and value.state_dict():
        text += f" state {_hash(value.state_dict())}"
    return text


def vars_of(value: Any) -> dict[str, Any]:
    try:
        return dict(vars(value))
    except TypeError:  # no __dict__ (slots, builtins)
        return {}


def data_identity(data: Iterable[Any] | None) -> str | None:
    """The first batches' shapes and content hash of ``data``, read without disturbing it: a
    DataLoader's own generator is restored. A one-shot iterator is not read (only its type)."""
    if data is None:
        return None
    generator = getattr(data, "generator", None)
    state = generator.get_state() if isinstance(generator, torch.Generator) else None
    try:  # even iter() draws from a DataLoader's generator
        if iter(data) is data:
            return f"{_qualname(type(data))} (an iterator: not read ahead, not identified)"
        return _fingerprint(list(itertools.islice(iter(data), FIRST_BATCHES)))
    finally:
        if state is not None:
            assert generator is not None
            generator.set_state(state)


def _fingerprint(batches: list[Any]) -> str:
    shapes = "; ".join(_shapes(batch) for batch in batches)
    return f"{len(batches)} batch(es) {shapes} sha256 {_hash(batches)}"


def _shapes(batch: Any) -> str:
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return "x".join(map(str, batch.shape)) or "scalar"
    if isinstance(batch, (list, tuple)):
        return "(" + ", ".join(_shapes(b) for b in batch) + ")"
    if isinstance(batch, Mapping):
        return "{" + ", ".join(f"{k}: {_shapes(v)}" for k, v in batch.items()) + "}"
    return type(batch).__name__


def _hash(value: Any) -> str:
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()[:16]


def _feed(digest: Any, value: Any, depth: int = 0) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        try:
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        except (RuntimeError, TypeError):  # sparse, quantized: their values as text
            digest.update(repr(tensor.tolist()).encode())
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).data)
    elif isinstance(value, Mapping) and depth < 8:
        for key in sorted(value, key=str):
            digest.update(repr(key).encode())
            _feed(digest, value[key], depth + 1)
    elif isinstance(value, (list, tuple)) and depth < 8:
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(digest, item, depth + 1)
    elif isinstance(value, _SCALARS):
        digest.update(repr(value).encode())
    else:
        digest.update(_qualname(type(value)).encode())


def _code_hash(fn: types.FunctionType, depth: int) -> str:
    """Bytecode, constants (nested code too), names, closed-over values and defaults."""
    digest = hashlib.sha256()

    def code(co: types.CodeType) -> None:
        digest.update(co.co_code)
        digest.update(repr(co.co_names).encode())
        for const in co.co_consts:
            if isinstance(const, types.CodeType):
                code(const)
            else:
                digest.update(repr(const).encode())

    code(fn.__code__)
    for cell in fn.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell: not yet assigned
            continue
        digest.update(value_identity(contents, depth + 1).encode())
    digest.update(value_identity(fn.__defaults__, depth + 1).encode())
    digest.update(value_identity(fn.__kwdefaults__, depth + 1).encode())
    return digest.hexdigest()[:12]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
