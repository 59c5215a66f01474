"""Reruns in one process and resumes (issue 16, "Reruns and resumes"): a failed or interrupted
call leaves nothing running, a leaderboard says what it lacks, a changed optimizer, loss or data
is refused, and a grown ``lr_scales`` study never hands one schedule's trial to another."""

from __future__ import annotations

import sqlite3
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import lrscope
from lrscope.study.store.sqlite import Store

G = torch.Generator().manual_seed(0)
X = torch.randn(96, 4, generator=G)
Y = (X.sum(1) > 0).long()
FAIL_SEEDS: set[int] = set()  # a trial of these seeds raises (the "bug" a user then fixes)
FAIL_WITH: type[BaseException] = RuntimeError


def train_data(seed: int) -> DataLoader:
    if seed in FAIL_SEEDS:
        raise FAIL_WITH(f"bad data for seed {seed}")
    return DataLoader(list(zip(X, Y, strict=True)), batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _compare(out, **changes) -> lrscope.CompareResult:
    kwargs = {"loss_fn": nn.functional.cross_entropy, "val_data": train_data(99),
              "schedules": ["constant(lr=0.1)", "cosine(lr=0.3)"], "steps": 12,
              "seeds": [0, 1], "out": out, "quiet": True, "parallel": "none", **changes}
    return lrscope.compare(lambda: nn.Linear(4, 2),
                           kwargs.pop("optimizer", lambda p: torch.optim.SGD(p, lr=0.1)),
                           kwargs.pop("train_data", train_data), **kwargs)


def _statuses(out) -> dict[str, str]:
    with Store.in_dir(out, create=False) as store:
        return {t.key: t.status for t in store.trials()}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_issue16_item10_rerun_after_a_failed_call_runs_its_trials_at_once(tmp_path, error):
    """A call that fails (or is interrupted) in its second trial leaves no trial 'running'; the
    same call again, in the same process, runs them all at once (no lease to wait out)."""
    global FAIL_WITH
    FAIL_SEEDS.add(1)
    FAIL_WITH = error
    try:
        with pytest.raises(error, match="bad data"):
            _compare(tmp_path)
    finally:
        FAIL_SEEDS.clear()
        FAIL_WITH = RuntimeError
    left = _statuses(tmp_path)
    assert "running" not in left.values(), left
    assert left["constant(lr=0.1)/seed1"] == "failed"
    started = time.perf_counter()
    res = _compare(tmp_path)
    assert time.perf_counter() - started < 60
    assert set(_statuses(tmp_path).values()) == {"finished"}
    assert res.missing == 0 and len(res.leaderboard) == 2


def test_issue16_item10_a_trial_of_this_process_is_never_busy_to_itself(tmp_path):
    """A trial left 'running' by a closed store of this process (an earlier call) is not busy to
    the rerun: it is taken over at once, not after the lease timeout."""
    _compare(tmp_path, schedules=["constant(lr=0.1)"], seeds=[0])
    with Store.in_dir(tmp_path) as earlier:
        owner = earlier.owner
    with sqlite3.connect(tmp_path / "study.sqlite") as db:
        db.execute("UPDATE trials SET status = 'running', owner = ?, heartbeat = ?",
                   (owner, time.time()))
    res = _compare(tmp_path, schedules=["constant(lr=0.1)"], seeds=[0])
    with Store.in_dir(tmp_path, create=False) as store:
        (trial,) = store.trials()
    assert (trial.status, trial.claims) == ("finished", 2)
    assert res.missing == 0


def test_issue16_item10_a_leaderboard_says_how_many_trials_it_lacks(tmp_path, capsys):
    """A trial held by a live owner (a store still open) is busy: the result counts it missing,
    and the printed summary says so."""
    _compare(tmp_path, seeds=[0])
    with Store.in_dir(tmp_path) as other:
        run = other.ensure_run("study").id
        other.start_trial(run, "cosine(lr=0.3)/seed1", label="cosine(lr=0.3)")
        res = _compare(tmp_path, quiet=False)
    assert res.missing == 1
    assert "1 trial(s) have no result" in capsys.readouterr().err
