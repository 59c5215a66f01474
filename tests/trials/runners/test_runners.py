"""Parallel modes: processes and batched give the trials `none` gives, recorded once each."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch
from same_results import assert_same_result

from lrscope.config.sections import OptimizerConfig
from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.errors import InputError
from lrscope.schedules import parse
from lrscope.trials.runners import Job, TrialSetup, make_runner, run_jobs
from lrscope.trials.runners.processes import pool_shape, usable_cores


def build_optimizer(config: OptimizerConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    return config.build(model.parameters())


@pytest.fixture(scope="module")
def plan() -> TrialSetup:
    return TrialSetup(task=get_task("digits", limit_train=512), steps=60, eval_every=30,
                      make_optimizer=functools.partial(build_optimizer, OptimizerConfig()))


def with_alpha_dropout() -> torch.nn.Module:
    # AlphaDropout: a model the batched runner refuses (plain dropout it runs exactly).
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32),
                               torch.nn.AlphaDropout(0.1), torch.nn.Linear(32, 10))


def jobs() -> list[Job]:
    specs = ["constant(lr=0.1)", "onecycle(max_lr=0.3)", "constant(lr=100)"]
    return [Job(f"{s}/seed{seed}", s, parse(s, total_steps=60), seed, i)
            for i, (s, seed) in enumerate((s, seed) for s in specs for seed in (0, 1))]


def results(mode: str, plan: TrialSetup) -> dict[str, object]:
    return {job.key: result for job, result in run_jobs(jobs(), plan, mode, LocalEngine())}


@pytest.mark.parametrize("mode", ["processes", "batched", "auto"])
def test_modes_agree_with_sequential(plan, mode):
    reference = results("none", plan)
    got = results(mode, plan)
    assert sorted(got) == sorted(reference)
    for key, ref in reference.items():
        res = got[key]
        assert res.status == ref.status and res.diverged_at_step == ref.diverged_at_step, key
        if mode == "processes":  # the same arithmetic in another process (same_results.py)
            assert_same_result(res, ref, key)
        elif ref.status == "finished":  # vmapped matmuls round differently
            np.testing.assert_allclose(res.train_loss, ref.train_loss, rtol=1e-4)


def test_auto_falls_back_when_batching_is_impossible(plan):
    import dataclasses

    task = dataclasses.replace(plan.task, make_model=with_alpha_dropout)
    dropout_plan = dataclasses.replace(plan, task=task)
    one = jobs()[:2]
    with pytest.raises(InputError, match=r"(?i)dropout"):
        list(run_jobs(one, dropout_plan, "batched", LocalEngine()))
    auto = dict((job.key, r) for job, r in run_jobs(one, dropout_plan, "auto", LocalEngine()))
    assert len(auto) == 2 and all(r.status == "finished" for r in auto.values())


def test_unknown_mode_and_distributed_engine_rules(plan):
    with pytest.raises(InputError, match="parallel"):
        make_runner("threads").on(LocalEngine())

    class FakeDistributed(LocalEngine):
        name = "colossalai"

    with pytest.raises(InputError, match="--parallel none"):
        make_runner("batched").on(FakeDistributed())
    assert make_runner("auto").on(FakeDistributed()).name == "none"


@pytest.mark.parametrize("mode", ["none", "batched"])
def test_evaluations_are_heard_as_they_happen(plan, mode):
    heard: dict[str, list[int]] = {}
    done = []
    for job, result in run_jobs(jobs()[:4], plan, mode, LocalEngine(),
                                on_eval=lambda job, ev: heard.setdefault(job.key, []).append(
                                    ev.step)):
        # every evaluation of a trial is heard before its result arrives
        assert heard[job.key] == [ev.step for ev in result.evaluations]
        done.append(job.key)
    assert sorted(done) == sorted(heard) and all(steps == [30, 60] for steps in heard.values())


class CountedSgd:
    """SGD, as a picklable factory that leaves a trace in ``log`` of the process that unpickled
    it (``unpickled <pid>``) and of the torch threads each trial trained on (``threads <n>``)."""

    def __init__(self, log: str) -> None:
        self.log = log

    def __call__(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        _append(self.log, f"threads {os.getpid()} {torch.get_num_threads()}")
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def __reduce__(self):
        return _revive, (self.log,)


def _revive(log: str) -> CountedSgd:
    _append(log, f"unpickled {os.getpid()}")
    return CountedSgd(log)


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


@pytest.mark.slow
def test_processes_ship_the_setup_once_per_worker(tmp_path, plan):
    log = tmp_path / "log.txt"
    counted = TrialSetup(plan.task, plan.steps, plan.eval_every, CountedSgd(str(log)))
    many = jobs()  # 6 trials
    got = dict((job.key, r) for job, r in run_jobs(many, counted, "processes", LocalEngine()))
    assert sorted(got) == sorted(job.key for job in many)
    lines = log.read_text().splitlines()
    unpickled = [line.split()[1] for line in lines if line.startswith("unpickled")]
    trained = [line.split()[1:] for line in lines if line.startswith("threads")]
    workers, threads = pool_shape(len(many))
    # one unpickle per worker process (not per trial), never in this process
    assert len(unpickled) == len(set(unpickled)) == workers
    assert str(os.getpid()) not in unpickled
    assert len(trained) == len(many) and {pid for pid, _ in trained} <= set(unpickled)
    assert {int(n) for _, n in trained} == {threads}  # each worker on the rule's threads


@pytest.mark.parametrize(("pending", "cores", "asked", "shape"), [
    (24, 2, None, (2, 1)), (1, 2, None, (1, 1)), (3, 16, 4, (3, 4)), (16, 16, 4, (4, 4)),
    (5, 1, 3, (1, 1)), (2, 4, 8, (1, 4)),
])
def test_workers_and_threads_come_from_the_cores(pending, cores, asked, shape):
    """Issue 19 item 5: 1 thread per worker unless asked, never more threads than cores."""
    workers, threads = pool_shape(pending, cores, asked)
    assert (workers, threads) == shape
    assert workers * threads <= cores  # never more threads than cores
    assert pool_shape(pending) == pool_shape(pending, usable_cores())


def test_processes_refuse_an_unpicklable_setup_before_any_work(plan):
    import dataclasses
    import threading

    def build(lock: object, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.1)

    # a lambda travels (cloudpickle); a lock cannot cross a process, and is named
    local = dataclasses.replace(plan, make_optimizer=functools.partial(build, threading.Lock()))
    with pytest.raises(InputError, match="cannot send the optimizer factory"):
        list(run_jobs(jobs()[:2], local, "processes", LocalEngine()))
