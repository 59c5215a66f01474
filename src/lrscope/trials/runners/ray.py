"""``--parallel ray``: every trial a Ray task, on this machine's cores or across a Ray cluster.

Each trial is one Ray task asking for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (a
fraction lets several small trials share one GPU); Ray runs as many at once as the cluster's
resources allow. The study's task (its data) goes into the object store once, in host memory,
and every trial reads it from there and moves it to its own device. Results come back to the
driver as they finish, and the driver alone writes the store, as in every mode.

A worker that dies mid-trial (killed, out of memory, its node lost) makes Ray run that trial
again from step 0, up to ``max_retries`` times. The driver records a trial only when its result
arrives, so a retried trial is recorded once and nothing is lost. An exception raised by the
trial itself is not retried: it is the study's error, as in the other modes.

Which cluster (:func:`cluster_address`): ``address`` (``--ray-address``), else ``$RAY_ADDRESS``,
joins a running cluster, which is left running (``auto``: the one ``ray start`` started on this
machine). Else, when this process is already connected (the caller ran ``ray.init``), that
connection, left as found. Else a local cluster with this machine's cores starts and is shut
down when the trials end (finished, failed or interrupted). Workers import lrscope: on a
cluster, install lrscope and torch on every node (docs/ray.md).

>>> RayOptions().gpus(torch.device("cpu")), RayOptions().gpus(torch.device("cuda"))
(0.0, 0.25)
>>> RayOptions(gpus_per_trial=-1)
Traceback (most recent call last):
    ...
lrscope.errors.InputError: ray_gpus_per_trial: -1 must be >= 0 (a fraction shares a GPU, e.g. 0.25)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lrscope.engines import Engine
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError
from lrscope.trials.runners.base import NO_HOOKS, Hooks, Job, Started, TrialSetup, local_engine_only
from lrscope.trials.runners.threads import usable_cores
from lrscope.trials.trial import TrialResult

RAY_MISSING = "parallel: 'ray' needs Ray: pip install 'lrscope[ray]'"
# A study's trials are small next to a GPU: by default four share one (Ray Tune users set this
# per trial too; --ray-gpus-per-trial changes it).
DEFAULT_GPU_SHARE = 0.25


def require_ray() -> None:
    """InputError (one line, how to install) when Ray is not installed; imports nothing."""
    if importlib.util.find_spec("ray") is None:
        raise InputError(RAY_MISSING)


@dataclass(frozen=True)
class RayOptions:
    """Where ``--parallel ray`` runs and what each trial asks of the cluster."""

    address: str | None = None  # a running cluster's HOST:PORT or "auto"; None: $RAY_ADDRESS
    cpus_per_trial: float = 1.0  # also the trial's torch threads (at least 1)
    gpus_per_trial: float | None = None  # None: DEFAULT_GPU_SHARE on a CUDA device, else 0
    max_retries: int = 3  # runs of a trial whose worker died, after the first

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0:
            raise InputError(f"ray_cpus_per_trial: {self.cpus_per_trial} must be > 0 "
                             "(e.g. 1, or 0.5 to run two trials per core)")
        if self.gpus_per_trial is not None and not self.gpus_per_trial >= 0:
            raise InputError(f"ray_gpus_per_trial: {self.gpus_per_trial} must be >= 0 "
                             "(a fraction shares a GPU, e.g. 0.25)")
        if isinstance(self.max_retries, bool) or not (
                isinstance(self.max_retries, int) and self.max_retries >= 0):
            raise InputError(f"ray max_retries: {self.max_retries!r} must be a whole number >= 0")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], threads: int | None = None,
                      ) -> RayOptions:
        """The options from the study's runner settings (:data:`SETTINGS`: the config's and
        the CLI's ``ray_*`` names; ``ray_resources`` as Ray Tune writes them,
        ``{"cpu": 1, "gpu": 0.25}``, is compare()'s). Torch threads follow the CPUs.

        >>> RayOptions.from_settings({"ray_address": "auto",
        ...                           "ray_resources": {"cpu": 2, "gpu": 0.5}})
        RayOptions(address='auto', cpus_per_trial=2.0, gpus_per_trial=0.5, max_retries=3)
        """
        given = dict(settings.get("ray_resources") or {})
        unknown = sorted(set(given) - {"cpu", "gpu"})
        if unknown:
            raise InputError(f"ray_resources has {', '.join(map(repr, unknown))}; give "
                             'CPUs and GPUs per trial, e.g. {"cpu": 1, "gpu": 0.25}')
        cpus = given.get("cpu", settings.get("ray_cpus_per_trial"))
        gpus = given.get("gpu", settings.get("ray_gpus_per_trial"))
        return cls(address=settings.get("ray_address"),
                   cpus_per_trial=1.0 if cpus is None else float(cpus),
                   gpus_per_trial=None if gpus is None else float(gpus))

    def gpus(self, device: torch.device) -> float:
        """Each trial's share of a GPU: the one given, else a quarter when the study's device
        is CUDA (on the CPU, none)."""
        if self.gpus_per_trial is not None:
            return float(self.gpus_per_trial)
        return DEFAULT_GPU_SHARE if device.type == "cuda" else 0.0


# The runner settings the ray runner reads, with their defaults (a value other than its default
# with another runner is refused: lrscope.trials.runners.make_runner).
SETTINGS: dict[str, Any] = {"ray_address": None, "ray_cpus_per_trial": 1.0,
                            "ray_gpus_per_trial": None, "ray_resources": None}


@dataclass(frozen=True)
class RayRunner:
    """Every trial a Ray task (lrscope.trials.runners.base.Runner); refuses to be made without
    Ray installed (the one check), and ``on`` an engine when the cluster does not answer."""

    options: RayOptions = field(default_factory=RayOptions)
    name = "ray"
    sequential = False

    def __post_init__(self) -> None:
        require_ray()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], threads: int | None) -> RayRunner:
        return cls(RayOptions.from_settings(settings))

    def on(self, engine: Engine) -> RayRunner:
        local_engine_only(self.name, engine)
        # a wrong address: one line now, not minutes of ray.init's retries
        check_reachable(cluster_address(self.options))
        return self

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        if not jobs:
            return
        # 0 workers: as many at once as the cluster's resources allow
        hooks.start(Started(self.name, 0, max(1, int(self.options.cpus_per_trial))))
        yield from run_on_ray(jobs, setup, engine.device, self.options)


def cluster_address(options: RayOptions) -> str | None:
    """The cluster to join: ``options.address``, else ``$RAY_ADDRESS``; None: none given.

    >>> cluster_address(RayOptions(address="10.0.0.1:6379"))
    '10.0.0.1:6379'
    """
    return options.address or os.environ.get("RAY_ADDRESS") or None


def run_on_ray(jobs: Sequence[Job], setup: TrialSetup, device: torch.device,
               options: RayOptions) -> Iterator[tuple[Job, TrialResult]]:
    """Run ``jobs`` as Ray tasks, yielding each with its result as soon as it arrives.

    Trials on a GPU (``options.gpus(device) > 0``) train on the GPU Ray gives their worker;
    the others on its CPU. Stopping early (an error, an interrupt, the caller closing this
    generator) cancels the trials not yet done. Ray is installed: :class:`RayRunner` checked.
    """
    import ray

    gpus = options.gpus(device)
    with connected(options):
        # Host memory in the object store: any node can read it, whatever its devices.
        shared = ray.put(dataclasses.replace(setup, task=setup.task.to("cpu")))
        trial = ray.remote(_trial_task).options(
            num_cpus=options.cpus_per_trial, num_gpus=gpus, max_retries=options.max_retries,
            retry_exceptions=False)
        threads = max(1, int(options.cpus_per_trial))
        waiting = {trial.remote(shared, job, gpus > 0, threads): job for job in jobs}
        try:
            while waiting:
                done, _ = ray.wait(list(waiting), num_returns=1)
                for ref in done:
                    yield waiting.pop(ref), _result(ref)
        finally:
            for ref in waiting:  # the study stopped early: these would only waste the cluster
                ray.cancel(ref, force=True)


def _result(ref: Any) -> TrialResult:  # a ray.ObjectRef
    """The trial's result; a trial's own exception is raised as it is (as in the other modes:
    an InputError stays one line), with Ray's remote traceback as its cause."""
    import ray

    try:
        result: TrialResult = ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, Exception):
            raise err.cause from err
        raise
    return result


CONNECT_TIMEOUT_S = 3.0  # a head node answers in milliseconds; a wrong address never does


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """InputError (one line, naming the address) unless something listens at the cluster
    ``address`` names: ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto`` (the cluster whose
    address ``ray start`` wrote on this machine). A plain socket connect with a timeout, before
    ``ray.init``, which on a wrong address retries for minutes and prints Ray's raw warnings
    (issue 19 item 6). None (no address: a local cluster) passes.

    >>> check_reachable("127.0.0.1:1", timeout=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: ray_address '127.0.0.1:1': nothing answers at 127.0.0.1:1 ...
    """
    if address is None or address == "local":
        return
    target = address
    if address == "auto":
        found = _address_file()
        if not found.is_file():
            raise InputError(
                "ray_address 'auto': no Ray cluster was started on this machine (no "
                f"{found}); start one with `ray start --head`, give its HOST:PORT, or leave "
                "the address out for a local cluster")
        target = found.read_text().strip()
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"ray_address {address!r}: not HOST:PORT (e.g. 10.0.0.1:6379), "
                         "ray://HOST:PORT or auto")
    stale = f" (read from {_address_file()}, left by a cluster that has stopped?)" \
        if address == "auto" else ""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        why = (f"no answer within {timeout:g} s" if isinstance(err, TimeoutError)
               else (err.strerror or str(err)).lower())
        raise InputError(
            f"ray_address {address!r}: nothing answers at {host}:{port}{stale} ({why}); start "
            "the cluster (`ray start --head`) or fix --ray-address / $RAY_ADDRESS") from None


def _address_file() -> Path:
    """Where ``ray start`` writes the local cluster's address (Ray's own rule when it has one)."""
    try:
        from ray._private.utils import get_ray_address_file

        return Path(get_ray_address_file(None))
    except (ImportError, AttributeError):  # another Ray version: its usual place
        return Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"


# One entry per held() open, innermost last: whether a batch under it started the connection.
_HELD: list[bool] = []


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Batches of trials run inside share one connection: the first batch's (a local cluster
    takes seconds to start), ended when this ends; none is started when no batch runs."""
    _HELD.append(False)
    try:
        yield
    finally:
        if _HELD.pop():
            import ray

            ray.shutdown()


@contextlib.contextmanager
def connected(options: RayOptions) -> Iterator[None]:
    """Connected to the cluster :func:`cluster_address` names, this process's own connection,
    or a local cluster started here; ends only what it started, or leaves it to the
    :func:`held` it runs under."""
    import ray

    address = cluster_address(options)
    if ray.is_initialized():  # the caller's connection, or a held one: not ours to end
        yield
        return
    if address is not None:  # reachable: RayRunner.on checked
        # Joining: ray.shutdown() below only disconnects this driver; the cluster keeps running.
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # address="local": a new cluster, even when `ray start` runs one on this machine
        # (ray.init() would join that one silently).
        ray.init(address="local", num_cpus=usable_cores(), include_dashboard=False,
                 logging_level=logging.WARNING)
    if _HELD:
        _HELD[-1] = True  # held() ends it, after the last batch
        yield
        return
    try:
        yield
    finally:
        ray.shutdown()


def _trial_task(setup: TrialSetup, job: Job, on_gpu: bool, threads: int) -> TrialResult:
    """One trial in a Ray worker (Ray's CUDA_VISIBLE_DEVICES makes its GPU ``cuda``)."""
    torch.set_num_threads(threads)
    device = "cuda" if on_gpu else "cpu"
    setup = dataclasses.replace(setup, task=setup.task.to(device))
    return setup.run(job, LocalEngine(device))
