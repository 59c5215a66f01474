"""Issue 19 item 5: the cores this process may use (affinity, cgroup quota), the thread rule
(workers x threads <= cores in every mode), and the user's torch threads put back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.schedules import parse
from lrscope.trials.runners import Job, TrialSetup, run_jobs
from lrscope.trials.runners.processes import pool_shape
from lrscope.trials.runners.threads import cgroup_cpu_limit, usable_cores

HAS_AFFINITY = hasattr(os, "sched_setaffinity")


@pytest.mark.skipif(not HAS_AFFINITY, reason="no CPU affinity on this platform")
def test_issue19_item5_usable_cores_reads_the_affinity_mask():
    # a real process pinned to one CPU, as taskset or a container's cpuset would
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from lrscope.trials.runners.threads import usable_cores; print(usable_cores())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "1"
    assert usable_cores() <= len(os.sched_getaffinity(0))


def test_issue19_item5_cgroup_quota_files_are_parsed(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2) == 1.5
    assert usable_cores(v2) == min(2, usable_cores(tmp_path))  # a quota of 1.5 CPUs: 2 at most
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None  # no quota: the affinity decides
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) == 0.5
    assert usable_cores(v1) == 1  # half a CPU: one thread
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _jobs(n: int, steps: int) -> list[Job]:
    specs = [f"constant(lr={0.05 * (i + 1):g})" for i in range(n)]
    return [Job(f"{s}/seed0", s, parse(s, total_steps=steps), 0, i) for i, s in enumerate(specs)]


@pytest.mark.parametrize("mode", ["none", "batched",
                                  pytest.param("processes", marks=pytest.mark.slow)])
@pytest.mark.parametrize("asked", [None, 1, 64])
def test_issue19_item5_never_more_threads_than_usable_cores(mode, asked):
    setup = TrialSetup(get_task("digits", limit_train=128), steps=6, eval_every=3)
    jobs = _jobs(3, 6)
    cores = usable_cores()
    torch.set_num_threads(cores + 2)  # the caller's own setting, more than the cores
    try:
        results = [r for _, r in run_jobs(jobs, setup, mode, LocalEngine("cpu"), threads=asked)]
        assert torch.get_num_threads() == cores + 2  # put back as found
    finally:
        torch.set_num_threads(1)
    ran = {r.threads for r in results}  # read inside the process that trained each trial
    expected = min(asked or 1, cores)  # default 1 per trial; capped to the cores
    assert ran == {expected}
    workers = pool_shape(len(jobs), threads=asked)[0] if mode == "processes" else 1
    assert workers * expected <= cores


@pytest.mark.slow
def test_issue19_item5_compare_puts_the_users_threads_back_and_says_what_ran(tmp_path):
    import lrscope

    task = get_task("digits", limit_train=256)
    torch.set_num_threads(2)
    try:
        result = lrscope.compare(task.make_model, _sgd, task, schedules=[
            "constant(lr=0.05)", "constant(lr=0.1)"], steps=20, seeds=1, parallel="none",
            device="cpu", out=tmp_path, quiet=True, threads=1,
            range_test=RangeTestSettings(start=1e-4, steps=10))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert len(result.leaderboard) == 2
    saved = json.loads((tmp_path / "parallel.json").read_text())["study"]
    assert saved["mode"] == "none" and saved["workers"] == 1 and saved["threads"] == 1
    assert saved["torch_threads_in_trials"] == [1] and saved["usable_cores"] == usable_cores()


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_issue19_item5_compare_refuses_a_bad_threads_before_work(tmp_path, bad):
    import lrscope
    from lrscope.errors import InputError, InputTypeError

    task = get_task("digits", limit_train=64)
    with pytest.raises((InputError, InputTypeError), match=r"compare: threads=") as err:
        lrscope.compare(task.make_model, _sgd, task,
                        schedules=["constant(lr=0.1)"], steps=5, seeds=1, out=tmp_path,
                        quiet=True, threads=bad)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "study.sqlite").exists()
