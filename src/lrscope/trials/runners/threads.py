"""How many torch threads a study's trials run on: the one rule every runner follows.

``usable_cores()`` is the CPUs this process may really use: its affinity mask
(``os.sched_getaffinity``: taskset, a container's cpuset) capped by the cgroup CPU quota
(cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``: ``docker --cpus``,
Kubernetes limits), not ``os.cpu_count()``, the machine's.

A trial runs on ``threads`` torch threads, default 1 on the CPU: the trials lrscope compares are
small, a second intra-op thread gains them little (8.5 s vs 8.9 s, issue 19), and a thread that
the scheduler takes away stalls every parallel op at its barrier, so with another job on the box
two threads took 382 s where one took 8.9 s. More threads per trial are asked for with
``threads`` (``--threads N``), or measured by ``--parallel auto``. Never more threads than usable
cores run at once: ``workers x threads <= usable_cores()`` (threads are capped to the cores).

>>> parse_cpu_max("max 100000"), parse_cpu_max("150000 100000")
(None, 1.5)
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CGROUP_ROOT = Path("/sys/fs/cgroup")


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"QUOTA PERIOD"``; None: ``max``)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100_000.0
    quota = float(parts[0])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup quota under ``root`` allows this process (None: no quota, or no cgroup
    files: not Linux). cgroup v2 first, then v1 (``cpu/`` or ``cpu,cpuacct/``)."""
    try:
        return parse_cpu_max((root / "cpu.max").read_text(encoding="utf-8"))
    except (OSError, ValueError, IndexError):
        pass
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        try:
            quota = int((root / folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
            period = int((root / folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on: affinity, capped by the cgroup quota (rounded up: a
    quota of 1.5 CPUs keeps two threads busy part of the time), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def trial_threads(asked: int | None, cores: int | None = None) -> int:
    """Torch threads per trial: ``asked`` (default 1), at most ``cores`` (default: usable).

    >>> trial_threads(None, 16), trial_threads(4, 16), trial_threads(64, 2)
    (1, 4, 2)
    """
    cores = usable_cores() if cores is None else max(1, cores)
    return max(1, min(asked or 1, cores))


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` for the block, the caller's count put back."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def in_process_threads(asked: int | None, device_type: str, cores: int | None = None) -> int:
    """Torch threads for trials run in this process (``none``, ``batched``, the range test):
    ``asked`` capped to the cores; else 1 on the CPU (see the module docstring) and, on a GPU
    (where threads only feed the host's side), the caller's count capped to the cores."""
    if asked is None and device_type != "cpu":
        asked = torch.get_num_threads()
    return trial_threads(asked, cores)


@dataclass(frozen=True)
class ThreadOptions:
    """The options of the runners that train on this machine's cores (none, batched, processes,
    auto): ``threads`` torch threads per trial (None: the rule above)."""

    threads: int | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], threads: int | None) -> ThreadOptions:
        """The registry's hook (lrscope.trials.runners.make_runner): only ``threads``."""
        return cls(threads)
