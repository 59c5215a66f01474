"""The study: resume after SIGKILL, divergence recorded, range test reused."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrscope.study.store.sqlite import Store

SCHEDULES = ["constant(lr=0.1)", "exponential(lr=0.3, gamma=0.995)", "onecycle(max_lr=0.4)"]


def compare_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lrscope", "compare", "--task", "digits", "--model", "lenet",
            "--schedules", *SCHEDULES, "--seeds", "2", "--steps", "250", "--eval-every", "50",
            "--range-steps", "30", "--parallel", "none", "--out", str(out), *extra]


def finished_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM trials WHERE status IN ('finished', 'diverged')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # schema not written yet
        return 0


def series_by_key(out: Path) -> dict[str, dict[str, np.ndarray]]:
    with Store.in_dir(out, create=False) as store:
        trials = store.trials()
        assert len({t.key for t in trials}) == len(trials)  # every trial exactly once
        return {t.key: {name: store.metric_series(t.id, name)[1]
                        for name in ("train_loss", "lr", "test_loss", "test_accuracy")}
                for t in trials}


@pytest.mark.slow
def test_sigkill_mid_study_then_rerun_equals_uninterrupted(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(compare_cmd(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while finished_count(killed / "study.sqlite") < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the study never finished two trials"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-trial: the third trial is computing
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done_before = finished_count(killed / "study.sqlite")
    assert 2 <= done_before < 6

    resumed = subprocess.run(compare_cmd(killed), env=env, capture_output=True, text=True,
                             timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    assert finished_count(killed / "study.sqlite") == 6
    fresh = tmp_path / "fresh"
    clean = subprocess.run(compare_cmd(fresh), env=env, capture_output=True, text=True,
                           timeout=400)
    assert clean.returncode == 0, clean.stderr

    a, b = series_by_key(killed), series_by_key(fresh)
    assert sorted(a) == sorted(b) and len(a) == 6
    for key in a:
        for name in a[key]:
            np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=f"{key} {name}")
    # TensorBoard: one event file per trial, even for the trial that was cut off
    for tb in (killed / "tb").iterdir():
        assert len(list(tb.glob("events.out.tfevents.*"))) == 1, tb
    assert (killed / "report.html").exists() and (killed / "leaderboard.csv").exists()


def test_two_processes_on_one_folder_run_every_trial_exactly_once(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "shared"
    cmd = [*compare_cmd(out)[:-2], "--out", str(out)]
    cmd[cmd.index("--steps") + 1] = "150"
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) for _ in range(2)]
    try:
        outputs = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    from lrscope.outputs.report.build import write_report
    from lrscope.study.stats.leaderboard import leaderboard

    with Store.in_dir(out, create=False) as store:
        trials = store.trials()
        assert len(trials) == 6 and {t.status for t in trials} == {"finished"}
        assert [t.claims for t in trials] == [1] * 6  # never claimed twice: never run twice
        owners = {t.owner for t in trials}
        assert None not in owners and len(owners) <= 2
        rows = leaderboard(store, store.runs()[0].id)
    assert sorted(r.label for r in rows) == sorted(SCHEDULES)
    assert {(r.n_trials, r.n_finished) for r in rows} == {(2, 2)}
    series_by_key(out)  # one row per key
    write_report(out)  # once both are done, the report has every trial
    with (out / "leaderboard.csv").open() as f:
        assert sum(1 for _ in f) == 1 + len(SCHEDULES)
