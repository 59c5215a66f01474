"""Issue 17 item 1: every runner keeps the contract of lrscope.trials.runners.base.Runner.

The same jobs run on every registered runner (none, batched, processes, ray) and on a runner
written here against the contract (``threads``: a module's worth of code, a registry entry and
its options), and each must give the results ``none`` gives (to float precision where the
arithmetic is the same, same_results.py; batched is vmapped, so its matmuls round differently)
and, run through a study, the same store: the same leaderboard rows.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import pytest
from same_results import RTOL, assert_same_result

from lrscope.data.tasks import get_task
from lrscope.engines import Engine, LocalEngine
from lrscope.schedules import parse
from lrscope.session import run_plan
from lrscope.study.plan import StudyPlan
from lrscope.trials.runners import (
    RUNNERS,
    Hooks,
    Job,
    Started,
    TrialSetup,
    make_runner,
    register,
)
from lrscope.trials.runners.base import NO_HOOKS, local_engine_only
from lrscope.trials.runners.threads import in_process_threads, torch_threads
from lrscope.trials.trial import TrialResult

SCHEDULES = ("constant(lr=0.1)", "cosine(lr=0.3)")
SEEDS = (0, 1)
STEPS = 30
EVAL_EVERY = 15


# --- a new runner: the module (a class keeping the contract) and its options ---------------

@dataclasses.dataclass(frozen=True)
class BackgroundOptions:
    """The threads runner's options: torch threads for its trials (None: the thread rule)."""

    threads: int | None = None


@dataclasses.dataclass(frozen=True)
class BackgroundThreadRunner:
    """Trials on a background thread, so the driver records one result while the next trial
    trains. One worker thread: trials seed torch's global RNG to build their model, which
    threads share, so two trials must not overlap."""

    options: BackgroundOptions = dataclasses.field(default_factory=BackgroundOptions)
    name = "threads"
    sequential = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], threads: int | None,
                      ) -> BackgroundThreadRunner:
        return cls(BackgroundOptions(threads))

    def on(self, engine: Engine) -> BackgroundThreadRunner:
        local_engine_only(self.name, engine)
        return self

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        if not jobs:
            return
        threads = in_process_threads(self.options.threads, engine.device.type)
        hooks.start(Started(self.name, 1, threads))

        def trial(job: Job) -> TrialResult:
            hear = None if hooks.on_eval is None else functools.partial(hooks.on_eval, job)
            with torch_threads(threads):  # torch's thread count is per process: set it here
                return setup.run(job, engine, hear)

        with ThreadPoolExecutor(max_workers=1) as pool:
            futures: dict[Future[TrialResult], Job] = {pool.submit(trial, job): job
                                                       for job in jobs}
            waiting = set(futures)
            try:
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield futures[future], future.result()  # a trial's error: raised
            finally:  # the caller stopped early, or a trial failed: start nothing more
                for future in waiting:
                    future.cancel()


@pytest.fixture(scope="module", autouse=True)
def threads_runner() -> Iterator[None]:
    """The registry entry: ``--parallel threads`` exists while these tests run."""
    register("threads", BackgroundThreadRunner.from_settings)
    try:
        yield
    finally:
        RUNNERS.pop("threads")


# --- the contract, on every runner ---------------------------------------------------------

RUNNER_NAMES = ["none", "batched", "processes", "threads",
                pytest.param("ray", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def setup() -> TrialSetup:
    return TrialSetup(get_task("digits", limit_train=256), STEPS, EVAL_EVERY)


def jobs() -> list[Job]:
    pairs = [(spec, seed) for spec in SCHEDULES for seed in SEEDS]
    return [Job(f"{spec}/seed{seed}", spec, parse(spec, total_steps=STEPS), seed, index)
            for index, (spec, seed) in enumerate(pairs)]


def run_all(name: str, setup: TrialSetup) -> tuple[dict[str, TrialResult], list[Started]]:
    engine = LocalEngine("cpu")
    told: list[Started] = []
    runner = make_runner(name).on(engine)
    got: dict[str, TrialResult] = {}
    for job, result in runner.run(jobs(), setup, engine, Hooks(on_start=told.append)):
        assert job.key not in got, f"{name} yielded {job.key} twice"
        got[job.key] = result
    return got, told


@pytest.fixture(scope="module")
def reference(setup: TrialSetup) -> dict[str, TrialResult]:
    return run_all("none", setup)[0]


def ray_left_as_found(name: str) -> Iterator[None]:
    if name != "ray":
        yield
        return
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    yield
    assert not ray.is_initialized(), "the ray runner must shut down the cluster it started"


@pytest.fixture
def own_cluster(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                ) -> Iterator[None]:
    """With ray: no cluster to join, so the runner starts a local one (and must end it)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield from ray_left_as_found(request.node.callspec.params["name"])


@pytest.mark.parametrize("name", RUNNER_NAMES)
def test_issue17_item1_every_runner_gives_nones_results(setup, reference, own_cluster, name):
    got, told = run_all(name, setup)
    assert sorted(got) == sorted(reference)  # every job, exactly once
    assert [started.mode for started in told] == [name]  # told once, before the first trial
    for key, ref in reference.items():
        res = got[key]
        assert res.status == ref.status == "finished", key
        assert len(res.train_loss) == STEPS
        if name == "batched":  # vmapped matmuls round differently (as test_equivalence allows)
            np.testing.assert_allclose(res.train_loss[-1], ref.train_loss[-1], rtol=1e-4,
                                       err_msg=key)
            assert [ev.step for ev in res.evaluations] == [ev.step for ev in ref.evaluations]
        else:  # the same arithmetic, in this process, a worker or a thread (same_results.py)
            assert_same_result(res, ref, key)


def study(parallel: str) -> StudyPlan:
    return StudyPlan(name="contract", task=get_task("digits", limit_train=256),
                     config={"test": "runner contract"}, seeds=SEEDS, steps=STEPS,
                     eval_every=EVAL_EVERY, schedules=SCHEDULES, range_test=None,
                     parallel=parallel)


def flat(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A leaderboard row as one level of dotted keys (pytest.approx compares no nesting)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}."))
        elif f"{prefix}{key}" != "wall_time":  # time is not a result
            out[f"{prefix}{key}"] = value
    return out


def rows(result: Any) -> list[dict[str, Any]]:
    return [flat(dataclasses.asdict(row)) for row in result.leaderboard]


@pytest.fixture(scope="module")
def reference_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    result = run_plan(study("none"), tmp_path_factory.mktemp("none"), LocalEngine("cpu"))
    return rows(result)


@pytest.mark.parametrize("name", RUNNER_NAMES)
def test_issue17_item1_every_runner_writes_the_same_store(reference_rows, own_cluster, tmp_path,
                                                          name):
    result = run_plan(study(name), tmp_path, LocalEngine("cpu"))  # the driver writes the store
    got = rows(result)
    assert [row["label"] for row in got] == [row["label"] for row in reference_rows]
    for row, ref in zip(got, reference_rows, strict=True):
        assert row["n_finished"] == ref["n_finished"] == len(SEEDS)
        # numbers within float rounding (batched: vmapped; elsewhere same_results.py), the
        # rest equal
        numbers = [key for key, value in ref.items()
                   if isinstance(value, float) and not isinstance(value, bool)]
        assert {k: v for k, v in row.items() if k not in numbers} == {
            k: v for k, v in ref.items() if k not in numbers}
        assert [row[k] for k in numbers] == pytest.approx(
            [ref[k] for k in numbers], rel=1e-4 if name == "batched" else RTOL, nan_ok=True)


def test_issue17_item1_a_runner_name_or_setting_is_refused_once_before_work():
    with pytest.raises(ValueError, match=r"parallel='many' is not one of .*threads"):
        make_runner("many")  # the registry's names, the test's runner included
    with pytest.raises(ValueError, match=r"parallel is 'threads'.*--parallel ray"):
        make_runner("threads", {"ray_address": "10.0.0.1:6379"})
