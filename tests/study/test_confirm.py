"""Issue 16 item 2: ``confirm_seeds=N`` retrains the best, and the schedules the study could
not separate from it, at N fresh seeds, as trials of a run of their own (real training)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

import lrscope
from lrscope.errors import InputError
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.study.confirm import candidates
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.store.sqlite import Store

_G = torch.Generator().manual_seed(0)
_X = torch.randn(256, 4, generator=_G)
_Y = (_X.sum(1) > 0).long()
# the best, a rival, and one far worse (lr 1e-4 barely moves in 30 steps): it is separated
SCHEDULES = ["cosine(lr=0.5)", "constant(lr=0.3)", "constant(lr=0.0001)"]


def train_data(seed: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(list(zip(_X, _Y, strict=True)), batch_size=32, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


def model() -> nn.Module:
    return nn.Linear(4, 2)


def sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def study(out, confirm_seeds=None, test=True, schedules=SCHEDULES) -> lrscope.CompareResult:
    return lrscope.compare(model, sgd, train_data, loss_fn=nn.functional.cross_entropy,
                           val_data=train_data(99), test_data=train_data(98) if test else None,
                           schedules=schedules, steps=30, seeds=3, out=out, quiet=True,
                           parallel="none", confirm_seeds=confirm_seeds,
                           range_test=RangeTestSettings(start=1e-4, end=1.0, steps=20))


def _trials(out):
    with Store.in_dir(out, create=False) as store:
        return {run.name: [(t.label, t.seed, t.status, t.started, t.wall_time)
                           for t in store.trials(run.id)] for run in store.runs()}


@pytest.mark.slow
def test_issue16_item2_confirm_seeds_retrains_the_best_and_its_rivals_at_fresh_seeds(tmp_path):
    out = tmp_path / "s"
    plain = study(out)
    assert plain.confirmation is None
    before = (out / "leaderboard.csv").read_text()
    res = study(out, confirm_seeds=2)  # resumes the study, then confirms

    trials = _trials(out)
    assert set(trials) == {"study", "study/confirm"}
    study_seeds = {seed for _, seed, *_ in trials["study"]}
    confirm_seeds = {seed for _, seed, *_ in trials["study/confirm"]}
    assert study_seeds == {0, 1, 2} and confirm_seeds == {3, 4}  # fresh: none of the study's
    # only the winner and the schedules its "vs best" test did not separate from it
    with Store.in_dir(out, create=False) as store:
        rows = leaderboard(store, store.find_run("study").id)
    expected = candidates(rows)
    assert expected[0] == rows[0].label and res.best == (None if res.tie else rows[0].label)
    assert "constant(lr=0.0001)" not in expected  # separated from the best: not retrained
    assert len(expected) == 2  # the rival the study could not separate is retrained
    assert sorted({label for label, *_ in trials["study/confirm"]}) == sorted(expected)
    assert len(trials["study/confirm"]) == 2 * len(expected)
    assert all(status == "finished" for *_, status, _, _ in trials["study/confirm"])

    # the typed result: per label, the fresh seeds' estimates beside the study's
    assert res.confirmation is not None and res.confirmation.labels() == expected
    best = res.confirmation[rows[0].label]
    assert best.seeds == (3, 4) and best.fresh.n == 2 and best.in_sample.n == 3
    assert best.fresh.mean != best.in_sample.mean
    assert best.in_sample.mean == pytest.approx(rows[0].final_test_loss.mean)
    report = (out / "report.md").read_text()
    assert "Confirmation at fresh seeds" in report and "fresh seeds (3, 4" in report
    assert "study/confirm" not in report  # read into its study, never a run of its own
    # the selection leaderboard is unchanged by the confirmation
    assert [r.label for r in res.leaderboard] == [r.label for r in plain.leaderboard]
    assert (out / "leaderboard.csv").read_text() == before

    # rerunning the same call trains nothing new
    again = study(out, confirm_seeds=2)
    assert _trials(out) == trials
    assert again.confirmation == res.confirmation


@pytest.mark.slow
def test_issue16_item2_without_a_test_set_the_confirmation_reads_validation(tmp_path):
    """No test set: the fresh seeds' ranking metric on validation, and the report says so."""
    res = study(tmp_path / "v", confirm_seeds=2, test=False, schedules=SCHEDULES[:2])
    assert res.confirmation is not None and res.confirmation.metric == "val_loss"
    assert not res.confirmation.on_test
    confirmed = res.confirmation[res.confirmation.labels()[0]]
    assert confirmed.fresh.n == 2 and confirmed.fresh_accuracy.mean is None
    report = (tmp_path / "v" / "report.md").read_text()
    assert "There is no test set" in report and "final validation loss" in report


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_issue16_item2_bad_confirm_seeds_is_one_line_before_any_work(tmp_path, bad):
    out = tmp_path / "bad"
    with pytest.raises(InputError, match="confirm_seeds") as caught:
        study(out, confirm_seeds=bad)
    assert len(str(caught.value).splitlines()) == 1
    assert not out.exists()  # nothing ran, nothing was written


def test_issue16_item2_the_leaderboard_csv_lists_the_study_only(tmp_path):
    """A store holding a confirmation run: the CSV and the report's runs are the study's."""
    out = tmp_path / "c"
    with Store.in_dir(out) as store:
        run = store.ensure_run("study", config={"seeds": [0]})
        t = store.start_trial(run.id, "a/seed0", label="a", seed=0)
        store.add_metrics(t.trial_id, [(1, "test_loss", 0.5)])
        store.finish_trial(t.trial_id)
        confirm = store.ensure_run("study/confirm", config={
            "confirms": "study", "latest": {"schedules": ["a"], "seeds": [1]}})
        t = store.start_trial(confirm.id, "a/seed1", label="a", seed=1)
        store.add_metrics(t.trial_id, [(1, "test_loss", 0.7)])
        store.finish_trial(t.trial_id)
    from lrscope.outputs.report.build import write_report

    files = write_report(out)
    with files.leaderboard_csv.open() as handle:
        assert {row["run"] for row in csv.DictReader(handle)} == {"study"}
    assert files.confirmations["study"]["a"].fresh.mean == pytest.approx(0.7)
    assert files.confirmations["study"]["a"].in_sample.mean == pytest.approx(0.5)
