"""Reruns in one process and resumes (issue 16, "Reruns and resumes"): a failed or interrupted
call leaves nothing running, a leaderboard says what it lacks, a changed optimizer, loss or data
is refused, and a grown ``lr_scales`` study never hands one schedule's trial to another."""

from __future__ import annotations

import functools
import sqlite3
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import lrscope
from lrscope.errors import InputError
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


# module-level lambdas: every one is stored under the same name, test_rerun.<lambda>
OPTIMIZERS = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1)}


def _compare(out, **changes) -> lrscope.CompareResult:
    kwargs = {"loss_fn": nn.functional.cross_entropy, "val_data": train_data(99),
              "schedules": ["constant(lr=0.1)", "cosine(lr=0.3)"], "steps": 12,
              "seeds": [0, 1], "out": out, "quiet": True, "parallel": "none", **changes}
    return lrscope.compare(lambda: nn.Linear(4, 2), kwargs.pop("optimizer", OPTIMIZERS["sgd"]),
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
    assert "1 of 4 trials have no result" in " ".join(capsys.readouterr().err.split())


def _other_data(seed: int) -> DataLoader:
    return DataLoader(list(zip(X * 2, Y, strict=True)), batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


ONE = {"schedules": ["constant(lr=0.1)"], "seeds": [0], "steps": 6}
CHANGES = {  # issue 16's report: SGD then Adam, label smoothing, another test set; and more
    "optimizer": {"optimizer": lambda p: torch.optim.Adam(p, lr=0.1)},
    "optimizer_lr": {"optimizer": lambda p: torch.optim.SGD(p, lr=0.2)},
    "loss_fn": {"loss_fn": nn.CrossEntropyLoss(label_smoothing=0.1)},
    "loss_fn_partial": {"loss_fn": functools.partial(nn.functional.cross_entropy,
                                                     label_smoothing=0.1)},
    "loss_fn_lambda": {"loss_fn": lambda out, y: nn.functional.cross_entropy(out, y) * 2},
    "val_data": {"val_data": _other_data(99)},
    "test_data": {"test_data": _other_data(7)},
    "train_data": {"train_data": _other_data},
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    out = tmp_path_factory.mktemp("stored")
    _compare(out, **ONE)
    return out


@pytest.mark.parametrize("field", list(CHANGES))
def test_issue16_item9_a_changed_optimizer_loss_or_data_is_refused(stored, field):
    """Each piece changed alone (same names: lambdas, partials) is refused in one line naming
    it, before anything is written."""
    with Store.in_dir(stored, create=False) as store:
        before = [(t.key, t.claims) for t in store.trials()]
    with pytest.raises(InputError) as refused:
        _compare(stored, **ONE, **CHANGES[field])
    message = str(refused.value)
    assert f"identity.{field.split('_lr')[0].replace('_partial', '').replace('_lambda', '')}:" \
        in message and "\n" not in message, message
    with Store.in_dir(stored, create=False) as store:
        assert [(t.key, t.claims) for t in store.trials()] == before


def test_issue16_item9_the_same_call_again_resumes(stored):
    """The identities are stable: the same pieces rebuilt (new lambdas, new loaders) resume,
    and reading the data ahead leaves a loader's own generator where it was."""
    from lrscope.study.identity import data_identity

    val = train_data(99)
    state = val.generator.get_state()
    assert data_identity(val) == data_identity(train_data(99))
    assert torch.equal(val.generator.get_state(), state)  # the training order is untouched
    res = _compare(stored, **ONE, val_data=val)
    with Store.in_dir(stored, create=False) as store:
        assert [t.claims for t in store.trials()] == [1]
    assert res.missing == 0


def test_issue17_item3_one_resume_policy_for_every_front_end() -> None:
    """One resume policy (lrscope.study.resume REPORT_ONLY, MAY_GROW): the config's plan,
    compare()'s and the confirmation's resume under it; none writes its own list."""
    import inspect

    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config
    from lrscope.study import api, confirm
    from lrscope.study.resume import MAY_GROW, REPORT_ONLY

    plan = study_plan(load_study_config(overrides={"steps": 20, "limit_train": 64,
                                                   "schedules": ["constant(lr=0.1)"]}))
    assert (plan.may_grow, plan.report_only) == (MAY_GROW, REPORT_ONLY)
    for module in (api, confirm):
        assert "may_grow=" not in inspect.getsource(module), module.__name__
