"""Snapshot and restore everything a range test changes, so the user's objects come back as
they were (the idea of torch-lr-finder's ``StateCacher``, kept in memory).

A :class:`Snapshot` holds CPU copies of

* the model's ``state_dict`` (parameters and persistent buffers such as BatchNorm's running
  statistics and ``num_batches_tracked``), its non-persistent buffers and its ``.grad``\\ s;
* the optimizer's ``state_dict`` (per-parameter state such as momentum buffers or Adam's
  moments and step, and every param group's hyperparameters: lr, momentum, betas, ...);
* every module's ``training`` flag, and every parameter's and buffer's device and dtype (an
  engine that moves the model to a GPU, or a plugin that casts it to bf16, is undone);
* the random number generators (:mod:`lrscope.rng`).

Copies go to CPU so that a snapshot of a GPU model costs host memory, not device memory.
Restoring is in place: the same parameter tensors, the same optimizer ``param_groups`` list and
group dicts, the same ``optimizer.state`` mapping and per-parameter dicts (their tensors copied
into where shapes allow), so any reference the caller holds stays valid.

>>> import torch
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> before = model.weight.detach().clone()
>>> with preserved(model, opt):
...     _ = model.weight.data.add_(1.0)
...     opt.param_groups[0]["lr"] = 5.0
>>> torch.equal(model.weight, before), opt.param_groups[0]["lr"]
(True, 0.1)
>>> group = opt.param_groups[0]
>>> with preserved(model, opt):
...     opt.param_groups[0]["lr"] = 5.0
>>> opt.param_groups[0] is group, group["lr"]
(True, 0.1)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrscope.rng import RngState


@dataclass(frozen=True)
class Snapshot:
    """CPU copies of a model's and an optimizer's state; see the module docstring."""

    model_state: dict[str, Any]
    extra_buffers: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    training: list[bool]
    placement: dict[str, tuple[torch.device, torch.dtype]]  # params and buffers, by name
    optimizer_state: dict[str, Any]
    # Each group's own "params" list and what it held: a mixed-precision wrapper may swap the
    # caller's parameters for fp32 master copies inside those lists.
    group_params: list[tuple[list[Any], list[Any]]]
    rng: RngState


def to_cpu_copy(tree: Any) -> Any:
    """A deep copy of ``tree`` in which every tensor is a fresh CPU tensor.

    >>> t = torch.ones(2)
    >>> c = to_cpu_copy({"a": [t, 3], "b": (t,)})
    >>> c["a"][0] is t, torch.equal(c["a"][0], t), c["a"][1], type(c["b"]).__name__
    (False, True, 3, 'tuple')
    """
    if isinstance(tree, (int, float, str, bool, type(None))):
        return tree  # immutable: nothing to copy (and deepcopy of many ints is slow)
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return type(tree)((key, to_cpu_copy(value)) for key, value in tree.items())
    if isinstance(tree, list):
        return [to_cpu_copy(value) for value in tree]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(to_cpu_copy(value) for value in tree)
    return copy.deepcopy(tree)


def snapshot(model: nn.Module, optimizer: Any) -> Snapshot:
    """Copy what a training run changes in ``model``, ``optimizer`` and the global RNGs."""
    model_state = to_cpu_copy(model.state_dict())
    # Non-persistent buffers are not in state_dict but a forward pass may still change them.
    extra_buffers = {
        name: buffer.detach().to("cpu", copy=True)
        for name, buffer in model.named_buffers()
        if buffer is not None and name not in model_state
    }
    grads = {
        name: None if p.grad is None else p.grad.detach().to("cpu", copy=True)
        for name, p in model.named_parameters()
    }
    return Snapshot(
        model_state=model_state,
        extra_buffers=extra_buffers,
        grads=grads,
        training=[module.training for module in model.modules()],
        placement={name: (t.device, t.dtype) for name, t in _tensors(model)},
        optimizer_state=to_cpu_copy(optimizer.state_dict()),
        group_params=[(g["params"], list(g["params"])) for g in optimizer.param_groups],
        rng=RngState.capture(),
    )


def _tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from ((name, b) for name, b in model.named_buffers() if b is not None)


@torch.no_grad()
def _put_back(model: nn.Module, placement: dict[str, tuple[torch.device, torch.dtype]]) -> None:
    """Move every parameter and buffer that left its device or dtype back (values follow)."""
    for name, p in model.named_parameters():
        device, dtype = placement.get(name, (p.device, p.dtype))
        if p.device != device or p.dtype != dtype:
            p.data = p.data.to(device=device, dtype=dtype)  # the same Parameter object
            if p.grad is not None:
                p.grad = p.grad.to(device=device, dtype=dtype)
    for module_name, module in model.named_modules():
        for key, buffer in module._buffers.items():
            name = f"{module_name}.{key}" if module_name else key
            if buffer is None or name not in placement:
                continue
            device, dtype = placement[name]
            if buffer.device != device or buffer.dtype != dtype:
                module._buffers[key] = buffer.to(device=device, dtype=dtype)


@torch.no_grad()
def restore(snap: Snapshot, model: nn.Module, optimizer: Any) -> None:
    """Put ``model``, ``optimizer`` and the RNGs back as they were at :func:`snapshot`.

    Parameters and buffers go back to their devices and dtypes, then their values are copied in
    place, so references the caller holds stay valid; the optimizer is restored in place too
    (:func:`restore_optimizer`). The snapshot is left intact and can be restored again.
    """
    _put_back(model, snap.placement)
    model.load_state_dict(snap.model_state)
    buffers = dict(model.named_buffers())
    for name, saved in snap.extra_buffers.items():
        buffers[name].copy_(saved)
    for name, p in model.named_parameters():
        saved_grad = snap.grads.get(name)
        if saved_grad is None:
            p.grad = None
        elif p.grad is None:
            p.grad = saved_grad.to(p.device, copy=True)
        else:
            p.grad.copy_(saved_grad)
    for module, flag in zip(model.modules(), snap.training, strict=True):
        module.training = flag
    for group, (held, params) in zip(optimizer.param_groups, snap.group_params, strict=False):
        held[:] = params  # the caller's parameters, in the caller's list
        group["params"] = held
    restore_optimizer(optimizer, snap.optimizer_state)
    snap.rng.restore()


@torch.no_grad()
def restore_optimizer(optimizer: Any, saved: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(saved)``, but into the objects the optimizer already has.

    torch's ``load_state_dict`` builds new group dicts, a new ``state`` mapping and new state
    tensors; a user holding ``optimizer.param_groups[0]`` (to set its LR, as schedulers do) or
    ``optimizer.state[p]`` would be left with stale copies. Here the values are loaded, then
    moved back into the original list, dicts and (same shape, dtype, device) tensors.

    >>> p = torch.nn.Parameter(torch.ones(2))
    >>> opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    >>> saved, group = copy.deepcopy(opt.state_dict()), opt.param_groups[0]
    >>> group["lr"] = 3.0
    >>> restore_optimizer(opt, saved)
    >>> opt.param_groups[0] is group, group["lr"]
    (True, 0.1)
    """
    groups_list, state = optimizer.param_groups, optimizer.state
    groups = list(groups_list)
    # load_state_dict may keep the very tensors it is given (on CPU); hand it a copy so that
    # training afterwards cannot write into the snapshot.
    optimizer.load_state_dict(to_cpu_copy(saved))
    loaded_groups, loaded_state = optimizer.param_groups, optimizer.state
    if len(loaded_groups) == len(groups):
        for old, new in zip(groups, loaded_groups, strict=True):
            old.clear()
            old.update(new)
        groups_list[:] = groups
        optimizer.param_groups = groups_list
    if isinstance(state, dict) and state is not loaded_state:
        for param in [p for p in state if p not in loaded_state]:
            del state[param]
        for param, values in loaded_state.items():
            mine = state.get(param)
            if not isinstance(mine, dict) or not isinstance(values, dict):
                state[param] = values
                continue
            for key, value in values.items():
                held = mine.get(key)
                if (isinstance(held, torch.Tensor) and isinstance(value, torch.Tensor)
                        and held.shape == value.shape and held.dtype == value.dtype
                        and held.device == value.device):
                    held.copy_(value)
                    values[key] = held
            mine.clear()
            mine.update(values)
        optimizer.state = state


@contextlib.contextmanager
def preserved(model: nn.Module, optimizer: Any, *, cache_dir: str | Path | None = None,
              extra: Any | None = None) -> Iterator[Snapshot]:
    """Run the ``with`` body, then restore model, optimizer and RNGs whatever happened.

    ``cache_dir``: the model's and optimizer's state wait in a file there (memory-mapped when
    read back) instead of in host memory; the file is removed after the restore. ``extra``: one
    more object with ``state_dict``/``load_state_dict`` (a GradScaler) restored with them.
    """
    with rewindable(model, optimizer, cache_dir=cache_dir, extra=extra) as saved:
        yield saved.snapshot


class Rewind:
    """One snapshot that can be put back any number of times (see :func:`rewindable`)."""

    def __init__(self, model: nn.Module, optimizer: Any, cache_dir: str | Path | None,
                 extra: Any | None) -> None:
        self.model, self.optimizer, self.extra = model, optimizer, extra
        self.snapshot = snapshot(model, optimizer)
        self.extra_state = None if extra is None else copy.deepcopy(extra.state_dict())
        self.cache = None if cache_dir is None else snapshot_to_disk(self.snapshot,
                                                                     Path(cache_dir))

    def __call__(self) -> None:
        """Put model, optimizer, ``extra`` and the RNGs back as they were at the snapshot."""
        snap = self.snapshot if self.cache is None else snapshot_from_disk(self.snapshot,
                                                                            self.cache)
        restore(snap, self.model, self.optimizer)
        if self.extra is not None and self.extra_state:
            self.extra.load_state_dict(self.extra_state)

    def discard(self) -> None:
        if self.cache is not None:
            self.cache.unlink(missing_ok=True)


@contextlib.contextmanager
def rewindable(model: nn.Module, optimizer: Any, *, cache_dir: str | Path | None = None,
               extra: Any | None = None) -> Iterator[Rewind]:
    """:func:`preserved` that also hands out the rewind: ``rewind()`` puts everything back now,
    as often as needed, so several runs start from one snapshot (``range_test(seeds=N)``).

    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> before = model.weight.detach().clone()
    >>> with rewindable(model, opt) as rewind:
    ...     _ = model.weight.data.add_(1.0)
    ...     rewind()
    ...     rewound = torch.equal(model.weight, before)
    ...     _ = model.weight.data.add_(2.0)
    >>> rewound, torch.equal(model.weight, before)
    (True, True)
    """
    rewind = Rewind(model, optimizer, cache_dir, extra)
    try:
        yield rewind
    finally:
        rewind()
        rewind.discard()  # only once restored: a failed restore leaves the file to recover from


def snapshot_to_disk(snap: Snapshot, folder: Path) -> Path:
    """Move ``snap``'s model and optimizer copies into a new file in ``folder``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="lrscope-snapshot-", suffix=".pt", dir=folder)
    os.close(handle)
    path = Path(name)
    torch.save({"model": snap.model_state, "optimizer": snap.optimizer_state}, path)
    snap.model_state.clear()  # the copies now live on disk only
    snap.optimizer_state.clear()
    return path


def snapshot_from_disk(snap: Snapshot, path: Path) -> Snapshot:
    """``snap`` with its copies read back (memory-mapped) from :func:`snapshot_to_disk`'s file."""
    saved = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    return dataclasses.replace(snap, model_state=saved["model"], optimizer_state=saved["optimizer"])
