"""`--parallel ray` on real local Ray clusters: the trials `none` gives, each recorded once even
when a worker is killed mid-trial, resume, and joining a running cluster without stopping it."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from same_results import RTOL

import lrscope
from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.errors import InputError
from lrscope.session import run_plan
from lrscope.study.plan import StudyPlan, TrialEvent
from lrscope.study.store.sqlite import Store
from lrscope.trials.runners import RayOptions, make_runner
from lrscope.trials.runners.ray import RAY_MISSING, cluster_address

ray = pytest.importorskip("ray")

SCHEDULES = ("constant(lr=0.1)", "cosine(lr=0.3)")
STEPS = 30
RAY_BIN = Path(sys.executable).with_name("ray")


def small_plan(mode: str, seeds: tuple[int, ...] = (0, 1), task=None) -> StudyPlan:
    return StudyPlan(name="s", task=task or get_task("digits", limit_train=256),
                     config={"test": "ray"}, seeds=seeds, steps=STEPS, eval_every=15,
                     schedules=SCHEDULES, range_test=None, parallel=mode,
                     runner_options={"ray_cpus_per_trial": 1})


@pytest.fixture(scope="module")
def cluster():
    """This module's own 2-CPU local cluster, which lrscope uses because we are connected."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    # Workers cannot import this test module: ship its functions (the stalling model) by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


def trial_rows(out: Path) -> list[tuple[str, str, int]]:
    """(key, status, number of rows with that key) of every trial in the store, read by SQL."""
    with sqlite3.connect(out / "study.sqlite") as db:
        return db.execute("SELECT key, status, COUNT(*) FROM trials GROUP BY key "
                          "ORDER BY key").fetchall()


def train_losses(out: Path) -> dict[str, np.ndarray]:
    with Store.in_dir(out, create=False) as store:
        return {t.key: store.metric_series(t.id, "train_loss")[1] for t in store.trials()}


def without_times(rows: list) -> list:
    return [dataclasses.replace(row, wall_time=None) for row in rows]


@pytest.mark.slow
def test_ray_gives_the_leaderboard_and_losses_of_none(cluster, tmp_path):
    engine = LocalEngine("cpu")
    none = run_plan(small_plan("none"), tmp_path / "none", engine)
    on_ray = run_plan(small_plan("ray"), tmp_path / "ray", engine)
    assert none is not None and on_ray is not None
    # the same arithmetic in a worker, to float precision (same_results.py)
    rows = [[(r.label, r.rank, r.n_finished, r.n_diverged) for r in res.leaderboard]
            for res in (on_ray, none)]
    assert rows[0] == rows[1]
    assert [r.rank_loss for r in on_ray.leaderboard] == pytest.approx(
        [r.rank_loss for r in none.leaderboard], rel=RTOL)
    reference, got = train_losses(tmp_path / "none"), train_losses(tmp_path / "ray")
    assert sorted(got) == sorted(reference) and len(got) == 4
    for key, losses in reference.items():
        assert len(losses) == STEPS
        np.testing.assert_allclose(got[key], losses, rtol=RTOL, err_msg=key)
    assert ray.is_initialized()  # lrscope left the caller's connection as it found it


def stalling_model(make_model, folder: str) -> torch.nn.Module:
    """The task's model; at its 6th training forward, the first worker to get there (it takes
    the file ``armed``) writes its pid and waits to be killed."""
    model = make_model()
    calls = itertools.count()

    def stall(module: torch.nn.Module, args: object) -> None:
        if module.training and next(calls) == 5:
            try:
                os.rename(Path(folder, "armed"), Path(folder, "taken"))
            except FileNotFoundError:  # another trial took it, or this is Ray's retry
                return
            Path(folder, "pid.tmp").write_text(str(os.getpid()))
            os.replace(Path(folder, "pid.tmp"), Path(folder, "pid"))
            time.sleep(120)

    model.register_forward_pre_hook(stall)
    return model


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_and_recorded_once(cluster, tmp_path):
    task = get_task("digits", limit_train=256)
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "armed").touch()
    task = dataclasses.replace(task, make_model=functools.partial(
        stalling_model, task.make_model, str(marks)))
    killed: list[int] = []

    def kill_the_stalled_worker() -> None:
        deadline = time.monotonic() + 120
        while not (marks / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int((marks / "pid").read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_stalled_worker, daemon=True)
    killer.start()
    out = tmp_path / "study"
    result = run_plan(small_plan("ray", task=task), out, LocalEngine("cpu"))
    killer.join(timeout=5)
    assert killed and killed[0] != os.getpid()  # a worker died mid-trial...
    assert result is not None and all(row.n_finished == 2 for row in result.leaderboard)
    # ...and every trial is in the store exactly once, finished, with every step's loss
    assert trial_rows(out) == [(f"{s}/seed{seed}", "finished", 1)
                               for s in sorted(SCHEDULES) for seed in (0, 1)]
    assert all(len(losses) == STEPS for losses in train_losses(out).values())


@pytest.mark.slow
def test_an_interrupted_ray_study_reruns_only_the_missing_trials(cluster, tmp_path,
                                                                 monkeypatch):
    # The interrupted run's claims are this (live) process's: they go stale after the lease.
    monkeypatch.setenv("LRSCOPE_LEASE_TIMEOUT", "1")
    out = tmp_path / "study"
    first: list[str] = []

    def interrupt_after_one(event: TrialEvent) -> None:
        if event.state == "finished":
            first.append(event.key)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(small_plan("ray"), out, LocalEngine("cpu"), progress=interrupt_after_one)
    assert len(first) == 1
    time.sleep(1.5)
    events: list[TrialEvent] = []
    run_plan(small_plan("ray"), out, LocalEngine("cpu"), progress=events.append)
    assert [e.key for e in events if e.state == "skipped"] == first
    ran = [e.key for e in events if e.state == "finished"]
    assert len(ran) == 3 and first[0] not in ran
    assert [count for _, status, count in trial_rows(out) if status == "finished"] == [1] * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, head: subprocess.Popen) -> None:
    """Until the head's GCS answers on ``port`` (``ray start`` takes seconds)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and head.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"ray start --head did not listen on {port} (exit code {head.poll()})")


JOINING_DRIVER = textwrap.dedent("""
    import dataclasses, functools, sys, torch, lrscope
    from lrscope.data.tasks import get_task
    from lrscope.rangetest.settings import RangeTestSettings

    def model(make_model, where):
        import ray
        if ray.is_initialized():  # in a trial's worker (not the driver's range test)
            with open(where, "a") as f:
                f.write(ray.get_runtime_context().gcs_address + "\\n")
        return make_model()

    task = get_task("digits", limit_train=256)
    task = dataclasses.replace(task, make_model=functools.partial(model, task.make_model,
                                                                  sys.argv[2]))
    res = lrscope.compare(task.make_model, lambda p: torch.optim.SGD(p, lr=0.1), task,
                          schedules=["constant(lr=0.1)", "cosine(lr=0.3)"], steps=20, seeds=1,
                          range_test=RangeTestSettings(start=1e-4, steps=10),
                          parallel="ray", ray_address=sys.argv[1], out=sys.argv[3], quiet=True)
    import ray
    print("rows", len(res.leaderboard), "connected", ray.is_initialized())
""")


@pytest.mark.slow
def test_ray_address_joins_a_running_cluster_and_leaves_it_running(tmp_path):
    port = free_port()
    src = str(Path(lrscope.__file__).parents[1])
    # Token auth off on both sides: whether Ray turns it on depends on ~/.ray (docs/ray.md)
    env = {**os.environ, "PYTHONPATH": src, "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    # --block: the head lives as long as this one process, so the test stops exactly what it
    # started (`ray stop` would stop every Ray on the machine).
    head = subprocess.Popen(
        [str(RAY_BIN), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
         "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, head)
        where = tmp_path / "gcs"
        driver = subprocess.run(
            [sys.executable, "-c", JOINING_DRIVER, f"127.0.0.1:{port}", str(where),
             str(tmp_path / "study")], env=env, capture_output=True, text=True, timeout=240)
        assert driver.returncode == 0, driver.stderr[-3000:]
        assert "rows 2 connected False" in driver.stdout  # disconnected at the end
        seen = where.read_text().split()
        assert len(seen) == 2 and all(a.endswith(f":{port}") for a in seen), seen
        assert head.poll() is None  # the cluster lrscope joined is still running
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


FAILING_DRIVER = textwrap.dedent("""
    import dataclasses, sys, tempfile
    import ray
    from lrscope.data.tasks import get_task
    from lrscope.engines import LocalEngine
    from lrscope.session import run_plan
    from lrscope.study.plan import StudyPlan

    def broken_model():
        raise ArithmeticError("no model today")

    task = dataclasses.replace(get_task("digits", limit_train=64), make_model=broken_model)
    plan = StudyPlan(name="s", task=task, config={}, seeds=(0,), steps=4, eval_every=2,
                     schedules=("constant(lr=0.1)",), range_test=None, parallel="ray")
    try:
        run_plan(plan, tempfile.mkdtemp(), LocalEngine("cpu"))
    except ArithmeticError as err:
        print("raised", type(err).__name__, "no model today" in str(err))
    print("connected", ray.is_initialized())
""")


@pytest.mark.slow
def test_a_local_cluster_is_started_and_shut_down_even_when_a_trial_fails(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(lrscope.__file__).parents[1])}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.run([sys.executable, "-c", FAILING_DRIVER], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=240)
    assert driver.returncode == 0, driver.stderr[-3000:]
    # the trial's own error, as its own type (not retried), and no cluster left behind
    assert driver.stdout.split() == ["raised", "ArithmeticError", "True", "connected", "False"]


def test_ray_options_and_the_address_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert cluster_address(RayOptions()) == "10.0.0.7:6379"
    assert cluster_address(RayOptions(address="auto")) == "auto"
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_address(RayOptions()) is None
    assert RayOptions(gpus_per_trial=0.5).gpus(torch.device("cuda")) == 0.5
    with pytest.raises(InputError, match="ray_cpus_per_trial"):
        RayOptions(cpus_per_trial=0)


def test_without_ray_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is missing
    with pytest.raises(InputError) as err:
        make_runner("ray").on(LocalEngine("cpu"))
    assert str(err.value) == RAY_MISSING == "parallel: 'ray' needs Ray: pip install 'lrscope[ray]'"
    with pytest.raises(InputError, match="lrscope\\[ray\\]"):  # before any work
        small_plan("ray")


def test_ray_is_refused_with_a_distributed_engine():
    class FakeDistributed(LocalEngine):
        name = "colossalai"

    with pytest.raises(InputError, match="--parallel none"):
        make_runner("ray").on(FakeDistributed())


def _closed_port() -> int:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", ["address", "stale auto"])
def test_issue19_item6_a_wrong_ray_address_is_one_line_fast(tmp_path, kind):
    port = _closed_port()
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "raytmp")}
    if kind == "address":
        address = f"127.0.0.1:{port}"
    else:  # the address file of a local cluster that has stopped
        (tmp_path / "raytmp" / "ray").mkdir(parents=True)
        (tmp_path / "raytmp" / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}")
        address = "auto"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lrscope", "compare", "--task", "digits", "--parallel", "ray",
         "--ray-address", address, "--seeds", "1", "--steps", "40",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"ray_address '{address}'" in lines[0] and f"127.0.0.1:{port}" in lines[0]
    assert elapsed < 15, elapsed
    assert not (tmp_path / "out").exists()


ONE_CLUSTER_DRIVER = textwrap.dedent("""
    import dataclasses, functools, sys, torch, lrscope
    from lrscope.data.tasks import get_task
    from lrscope.rangetest.settings import RangeTestSettings

    def model(make_model, where):
        import ray
        if ray.is_initialized():  # in a trial's worker: which cluster it runs on
            with open(where, "a") as f:
                f.write(ray.get_runtime_context().get_node_id() + "\\n")
        return make_model()

    task = get_task("digits", limit_train=256)
    task = dataclasses.replace(task, make_model=functools.partial(model, task.make_model,
                                                                  sys.argv[1]))
    res = lrscope.compare(task.make_model, lambda p: torch.optim.SGD(p, lr=0.1), task,
                          schedules=["constant(lr=0.1)", "cosine(lr=0.3)", "linear(lr=0.3)"],
                          steps=24, seeds=2, strategy="predict", budget=0.9, confirm_seeds=1,
                          range_test=RangeTestSettings(start=1e-4, steps=10),
                          parallel="ray", out=sys.argv[2], quiet=True)
    import ray
    print("trials", res.trials, "connected", ray.is_initialized())
""")


@pytest.mark.slow
def test_a_predict_study_and_its_confirmation_start_one_local_cluster(tmp_path):
    # a predict study trains in many small batches (probes, one run, the next, the seeds'
    # race), then the confirmation: each used to start and stop a local cluster of its own
    # (seconds each, against a fraction of a second for its trials)
    env = {**os.environ, "PYTHONPATH": str(Path(lrscope.__file__).parents[1])}
    env.pop("RAY_ADDRESS", None)
    where = tmp_path / "nodes"
    driver = subprocess.run([sys.executable, "-c", ONE_CLUSTER_DRIVER, str(where),
                             str(tmp_path / "study")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert driver.returncode == 0, driver.stderr[-3000:]
    trials, connected = driver.stdout.split()[1::2]
    assert connected == "False"  # the cluster it started is shut down at the end
    nodes = where.read_text().split()
    # every trial (the probes', the study's, the confirmation's) on one cluster's node
    assert len(nodes) > int(trials) >= 3 and len(set(nodes)) == 1, (trials, nodes)
