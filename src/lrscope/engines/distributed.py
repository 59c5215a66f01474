"""Process groups for the distributed engines: launch detection, lifetime, timeouts, sharding.

Nothing here imports ColossalAI; the ColossalAI engine hands in its own ``launch`` function.

* :func:`is_launched_by_torchrun` says whether this process was started by ``torchrun`` (or by
  ``colossalai run``, which calls torchrun).
* :func:`acquire_process_group` / :func:`release_process_group` count the engines using the
  default process group. A group created here is destroyed when the last engine releases it
  (under torchrun: at exit, see :func:`release_process_group`); a group someone else created
  is never destroyed here.
* :func:`collective_timeout` makes every group created inside it time out after ``seconds``:
  a rank whose peer died or hangs fails with an error instead of waiting torch's default
  30 minutes (gloo) / 10 minutes (NCCL).
* :func:`rank_slice` is the rank's share of a global batch.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.distributed_c10d as c10d
import torch.utils._pytree as pytree  # torch's own nested-container walker

from lrscope.errors import InputError

# What torchrun sets for every worker; `colossalai run` launches through torchrun.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

_users = 0  # engines holding the default group
_created_here = False  # whether acquire_process_group created it (and so may destroy it)


def is_launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether every variable torchrun gives its workers is set.

    >>> is_launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0",
    ...                          "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    True
    >>> is_launched_by_torchrun({"RANK": "0"})
    False
    """
    env = os.environ if environ is None else environ
    return all(name in env for name in TORCHRUN_VARIABLES)


@contextmanager
def collective_timeout(seconds: float) -> Iterator[None]:
    """Process groups created inside get ``seconds`` as their timeout.

    ``colossalai.launch`` and the plugins' sub-groups (``new_group``) take no timeout argument;
    torch reads these module defaults when a group is created, so setting them for the duration
    of the launch and of ``Booster.boost`` reaches every group the engine makes.

    >>> with collective_timeout(5):
    ...     c10d.default_pg_timeout
    datetime.timedelta(seconds=5)
    >>> c10d.default_pg_timeout > timedelta(seconds=5)
    True
    """
    if seconds <= 0:
        raise InputError(f"timeout_s={seconds!r}: must be > 0 seconds")
    names = [n for n in ("default_pg_timeout", "default_pg_nccl_timeout") if hasattr(c10d, n)]
    saved = {name: getattr(c10d, name) for name in names}
    for name in names:
        setattr(c10d, name, timedelta(seconds=seconds))
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(c10d, name, value)


def acquire_process_group(launch: Callable[[], None], timeout_s: float) -> bool:
    """Make sure the default process group exists, calling ``launch()`` if it does not.

    Returns whether the group was created here. Every call must be paired with one
    :func:`release_process_group`.
    """
    global _users, _created_here
    if not dist.is_initialized():
        with collective_timeout(timeout_s):
            launch()
        _created_here = True
        _users = 0
        # Registered before the engines' own exit hooks, so it runs after them (LIFO).
        atexit.register(_destroy_at_exit)
    _users += 1
    return _created_here


def release_process_group() -> None:
    """Drop one user. When the last user of a group created here leaves, destroy it now in a
    single process; under torchrun keep it for the next engine and destroy it at exit.

    Why: torchrun's store keeps the first group's keys, and a group made again in the same
    worker connects to stale addresses (measured: 3 of 3 runs of six create/destroy rounds
    failed or hung). Callers release the DDP wrappers and run ``gc.collect()`` first:
    destroying the group while a DDP model is alive can deadlock the exit.
    """
    global _users
    _users = max(0, _users - 1)
    if _users == 0 and not is_launched_by_torchrun():
        _destroy_if_created_here()


def _destroy_if_created_here() -> None:
    global _created_here
    if _created_here and _users == 0 and dist.is_initialized():
        _created_here = False
        dist.destroy_process_group()


def _destroy_at_exit() -> None:
    atexit.unregister(_destroy_at_exit)
    _destroy_if_created_here()


def rank_slice(batch: Any, rank: int, world_size: int) -> Any:
    """Rank ``rank``'s contiguous share of every tensor in ``batch`` (nested tuples/lists/dicts).

    Each rank gets ``n // world_size`` rows, rank 0 first; the last ``n % world_size`` rows
    of a batch whose size is not a multiple of ``world_size`` are dropped. Equal shares keep
    the mean of the ranks' mean losses (and the averaged gradients) equal to those of one
    process on the kept rows. Non-tensor leaves are passed through unchanged.

    >>> x, y = torch.arange(10).reshape(5, 2), torch.arange(5)
    >>> [rank_slice((x, y), r, 2)[1].tolist() for r in range(2)]
    [[0, 1], [2, 3]]
    >>> rank_slice({"x": x}, 0, 1)["x"] is x
    True
    """
    if world_size == 1:
        return batch
    sizes = {len(t) for t in pytree.tree_leaves(batch) if isinstance(t, torch.Tensor)}
    if len(sizes) > 1:
        raise InputError(f"batch: tensors differ in length {sorted(sizes)}; a batch is sharded "
                         "along its first dimension, which must be the same for all tensors")
    rows = sizes.pop() if sizes else 0
    per_rank = rows // world_size
    if per_rank == 0:
        raise InputError(f"batch of {rows} rows cannot be split over {world_size} ranks; use a "
                         f"batch size of at least {world_size} (a multiple keeps every row)")
    start = rank * per_rank
    return pytree.tree_map_only(torch.Tensor, lambda t: t[start:start + per_rank], batch)
