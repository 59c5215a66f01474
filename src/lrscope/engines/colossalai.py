"""The ColossalAI engine: model and optimizer go through ``colossalai.booster.Booster``.

One process works as it is; many come from ``torchrun`` (or ``colossalai run``)::

    torchrun --nproc_per_node 2 -m lrscope compare --engine colossalai --plugin torch_ddp ...

* Launch: under torchrun (see :func:`~lrscope.engines.distributed.is_launched_by_torchrun`)
  ``colossalai.launch_from_torch``; otherwise ``colossalai.launch`` as rank 0 of 1 on
  127.0.0.1. The backend follows the accelerator: gloo on CPU, NCCL on CUDA. A process group
  that already exists is reused and left alone at :meth:`close`.
* Timeout: every collective (gradient all-reduce, :meth:`mean`) fails after ``timeout_s``
  seconds (default 60, or the ``LRSCOPE_COLLECTIVE_TIMEOUT_S`` environment variable) when a
  peer died or hangs, so no rank waits forever. It also bounds how long rank 0 may work alone
  (e.g. writing files) while the others wait at the next collective: raise it for big models.
* ``colossalai.launch`` reseeds every RNG (seed 1024); the engine puts the caller's RNG states
  back, so seeding before or after creating the engine gives the same run.
* Lifetime: :meth:`teardown` puts the caller's layers back and lets go of the Booster;
  :meth:`close` (also at exit and at the end of a ``with`` block, error or not) tears down what
  is left, collects the wrappers and only then lets the process group go (destroying a group
  under a live DDP model can deadlock the exit); see
  :func:`~lrscope.engines.distributed.release_process_group` for when it is destroyed.
"""

from __future__ import annotations

import atexit
import gc
import sys
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.utils._pytree as pytree  # torch's own nested-container walker
from torch import nn

from lrscope._checks import seconds
from lrscope.engines.base import Engine
from lrscope.engines.colossalai_plugins import (
    check_plugin,
    make_plugin,
    optimizer_for_plugin,
    quiet_colossalai,
)
from lrscope.engines.distributed import (
    acquire_process_group,
    collective_timeout,
    is_launched_by_torchrun,
    rank_slice,
    release_process_group,
)
from lrscope.errors import InputError
from lrscope.rng import preserved_rng

DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_VARIABLE = "LRSCOPE_COLLECTIVE_TIMEOUT_S"


@dataclass(eq=False)
class _Boosted:
    """What one :meth:`ColossalAIEngine.setup` made, kept until its teardown."""

    booster: Any
    model: nn.Module
    optimizer: Any
    batchnorms: list[tuple[nn.Module, str, nn.Module]]


@dataclass(eq=False)
class _Retired:
    """A torn-down setup whose wrappers the caller may still hold: its Booster keeps the
    plugin, and so the plugin's process sub-groups, alive until the wrappers are gone."""

    booster: Any
    model: weakref.ref[nn.Module]
    optimizer: weakref.ref[Any]

    def in_use(self) -> bool:
        return self.model() is not None or self.optimizer() is not None


class ColossalAIEngine(Engine):
    """Steps through a ColossalAI Booster with ``plugin`` (see
    :mod:`lrscope.engines.colossalai_plugins`); ``plugin_options`` go to its constructor.

    ``shard(batch)`` gives each rank ``n // world_size`` contiguous rows of a global batch of
    ``n`` rows, on the engine's device; the last ``n % world_size`` rows are dropped (see
    :func:`~lrscope.engines.distributed.rank_slice`), so keep the batch size a multiple of the
    number of processes to use every row.
    """

    name = "colossalai"

    def __init__(self, plugin: str = "torch_ddp", *, timeout_s: float | None = None,
                 plugin_options: dict[str, Any] | None = None) -> None:
        self.plugin = check_plugin(plugin)
        self.plugin_options = dict(plugin_options or {})
        self.timeout_s = _timeout(timeout_s)
        self._boosted: list[_Boosted] = []
        self._retired: list[_Retired] = []
        self._closed = False
        with quiet_colossalai():
            import colossalai.booster  # noqa: F401  (lazy: ~4 s, optional dependency)
            from colossalai.accelerator import get_accelerator
        self.created_group = acquire_process_group(self._launch, self.timeout_s)
        # DDP's one-time performance note for weights with a size-1 dimension (a 1-channel
        # conv): their strides are ambiguous, the gradients are right. Only this message.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        atexit.register(self._close_at_exit)
        self._rank, self._world_size = dist.get_rank(), dist.get_world_size()
        self._device = torch.device(get_accelerator().get_current_device())

    @staticmethod
    def _launch() -> None:
        import colossalai

        # colossalai.launch reseeds Python, NumPy and torch: the caller's streams are put back.
        with quiet_colossalai(), preserved_rng():
            if is_launched_by_torchrun():
                colossalai.launch_from_torch(verbose=False)
            else:
                # Port 0: the store binds a free port itself, so two engines never race for one.
                colossalai.launch(rank=0, world_size=1, host="127.0.0.1", port=0, verbose=False)

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def device(self) -> torch.device:
        return self._device

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """``booster.boost(model, optimizer)`` with a fresh Booster and plugin.

        With ``torch_ddp`` and ``hybrid`` the wrappers train the caller's own parameters and
        optimizer (same tensors, same ``param_groups``). ``gemini`` trains a HybridAdam made
        from the caller's Adam or AdamW and refuses other optimizers before anything is built
        (see :func:`~lrscope.engines.colossalai_plugins.optimizer_for_plugin`); the caller's
        optimizer is then left untouched, and the LRs go to the optimizer returned here.
        """
        self._check_open()
        train_optimizer = optimizer_for_plugin(self.plugin, optimizer)
        from colossalai.booster import Booster

        self._release_retired()

        batchnorms = _batchnorm_children(model)
        with (collective_timeout(self.timeout_s), quiet_colossalai(), self._collective("setup"),
              _keep_batchnorm(self._device)):
            booster = Booster(plugin=make_plugin(self.plugin, self.plugin_options))
            boosted_model, boosted_optimizer, *_ = booster.boost(model, train_optimizer)
        self._boosted.append(_Boosted(booster, boosted_model, boosted_optimizer, batchnorms))
        return boosted_model, boosted_optimizer

    def shard(self, batch: Any) -> Any:
        sliced = rank_slice(batch, self._rank, self._world_size)
        if self._device.type == "cpu":
            return sliced
        return pytree.tree_map_only(
            torch.Tensor, lambda t: t.to(self._device, non_blocking=True), sliced)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        boosted = next((b for b in self._boosted if b.optimizer is optimizer), None)
        if boosted is None:
            raise InputError("optimizer: not one returned by this engine's setup(); pass the "
                             "optimizer that setup() returned")
        with self._collective("backward"):
            boosted.booster.backward(loss, optimizer)

    def mean(self, value: float | torch.Tensor) -> float:
        number = float(value.detach() if isinstance(value, torch.Tensor) else value)
        if self._world_size == 1:
            return number
        return float(self.mean_tensor(torch.tensor(number, dtype=torch.float64)))

    def mean_tensor(self, values: torch.Tensor) -> torch.Tensor:
        if self._world_size == 1:
            return values
        total = values.detach().to(self._device, torch.float64).clone()
        with self._collective("mean"):
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return (total / self._world_size).to(values.device, values.dtype)

    def teardown(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Drop the Booster and wrappers made for ``model``; the raw model keeps its (trained)
        parameters and its own layers. The wrappers the caller still holds must not be used.

        No ``gc.collect()`` here: the caller usually still holds the wrappers, and a full
        collection costs ~1 s once ColossalAI is imported. Nothing is destroyed while they
        live; :meth:`close` collects them before it destroys any process group.
        """
        for boosted in [b for b in self._boosted if b.model is model or b.optimizer is optimizer]:
            _restore_children(boosted.batchnorms)
            # HybridParallelPlugin binds the optimizer's method onto the model, a cycle
            # (model -> optimizer -> model): break it so that the wrappers die by reference
            # counting once the caller drops them, without a gc.collect() (~1 s) per setup.
            vars(boosted.model).pop("update_master_params", None)
            self._boosted.remove(boosted)
            self._retired.append(_Retired(boosted.booster, weakref.ref(boosted.model),
                                          weakref.ref(boosted.optimizer)))
        self._retired = [r for r in self._retired if r.in_use()]

    def close(self) -> None:
        """Tear down what is left, collect the wrappers, then release (and, if this engine's
        launch made it, destroy) the process group. Safe to call more than once; runs at
        interpreter exit if not called."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        for boosted in list(self._boosted):
            self.teardown(boosted.model, boosted.optimizer)
        gc.collect()  # DDP wrappers die before any group they use (else the exit can deadlock)
        self._retired.clear()  # then the plugins' sub-groups
        release_process_group()

    def _close_at_exit(self) -> None:
        # After an uncaught error, the reported traceback's frames still hold the wrappers.
        for name in ("last_exc", "last_traceback", "last_value", "last_type"):
            if hasattr(sys, name):
                delattr(sys, name)
        self.close()

    def _release_retired(self) -> None:
        if any(r.in_use() for r in self._retired):
            gc.collect()  # wrappers caught in reference cycles need a collection
        self._retired = [r for r in self._retired if r.in_use()]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this ColossalAIEngine is closed; make a new one")

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Say which rank failed and why a communication error happened, in the error itself."""
        try:
            yield
        except RuntimeError as err:
            if not _is_communication_error(err):
                raise
            raise RuntimeError(
                f"lrscope colossalai engine, rank {self._rank} of {self._world_size}: {what} "
                f"failed: another rank stopped or did not answer within {self.timeout_s:g} s "
                f"(timeout_s / {TIMEOUT_VARIABLE}): {err}") from err


def _is_communication_error(err: RuntimeError) -> bool:
    # gloo raises plain RuntimeErrors ("[...gloo/transport/tcp/pair.cc] Connection closed by
    # peer", "Timed out waiting 5000ms for recv"); NCCL raises DistBackendError.
    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(
        marker in text for marker in ("gloo", "nccl", "timed out", "connection"))


def _timeout(timeout_s: float | None) -> float:
    return seconds(timeout_s, TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S, "timeout_s")


@contextmanager
def _keep_batchnorm(device: torch.device) -> Iterator[None]:
    """On CPU, stop the plugins from turning BatchNorm into SyncBatchNorm during ``boost``.

    SyncBatchNorm has no CPU kernel and DDP refuses it on CPU; BatchNorm statistics then stay
    per rank, as with plain DDP. On CUDA the conversion happens and teardown undoes it.
    """
    if device.type != "cpu":
        yield
        return
    convert = nn.SyncBatchNorm.__dict__["convert_sync_batchnorm"]
    nn.SyncBatchNorm.convert_sync_batchnorm = classmethod(  # type: ignore[method-assign,assignment]
        lambda cls, module, process_group=None: module)
    try:
        yield
    finally:
        nn.SyncBatchNorm.convert_sync_batchnorm = convert  # type: ignore[method-assign]


def _batchnorm_children(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    return [(parent, name, child) for parent in model.modules()
            for name, child in parent.named_children()
            if isinstance(child, nn.modules.batchnorm._BatchNorm)]


def _restore_children(children: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, name, child in children:
        if getattr(parent, name) is not child:
            parent.add_module(name, child)
