"""Growing a stored study (more seeds, more schedules) runs only the new trials; changing what
a finished trial computed is refused; report-only settings resume; a stale lease is taken."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lrscope.rangetest.loop
from lrscope.config.plans import study_plan
from lrscope.config.study import load_study_config
from lrscope.errors import InputError
from lrscope.study.plan import TrialEvent
from lrscope.study.run import check_resumable, run_study
from lrscope.study.store.sqlite import STORE_FILENAME, Store

A, B, C = "constant(lr=0.1)", "exponential(lr=0.3, gamma=0.99)", "onecycle(max_lr=0.4)"


def study(out: Path, **overrides: Any) -> dict[str, list[str]]:
    """Run (or resume) a small digits study; the keys of the trials by what happened to them."""
    settings = {"task": "digits", "schedules": [A, B], "seeds": 2, "steps": 30,
                "eval_every": 15, "parallel": "none", "limit_train": 256,
                "range_test": {"steps": 20}, **overrides}
    plan = study_plan(load_study_config(overrides=settings))
    check_resumable(plan, out)
    events: dict[str, list[str]] = {}

    def heard(event: TrialEvent) -> None:
        if event.state != "running":
            events.setdefault(event.state, []).append(event.key)

    run_study(plan, out, progress=heard)
    return events


def snapshot(out: Path) -> dict[str, tuple[Any, ...]]:
    with Store.in_dir(out, create=False) as store:
        return {t.key: (t.id, t.started, t.claims, t.owner,
                        store.metric_series(t.id, "train_loss")[1].tolist())
                for t in store.trials()}


def stored_config(out: Path) -> dict[str, Any]:
    with Store.in_dir(out, create=False) as store:
        return store.runs()[0].config


def forbid_range_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on a rerun must reuse the stored range test, never measure again."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the range test ran again")
    monkeypatch.setattr(lrscope.rangetest.loop, "range_test", refuse)


def test_more_seeds_run_only_the_new_trials(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "s"
    first = study(out)
    assert sorted(first["finished"]) == sorted(f"{s}/seed{k}" for s in (A, B) for k in (0, 1))
    before = snapshot(out)
    with Store.in_dir(out, create=False) as store:
        rt = store.range_test(store.runs()[0].id)
    forbid_range_tests(monkeypatch)

    grown = study(out, seeds=3)
    assert sorted(grown["finished"]) == [f"{A}/seed2", f"{B}/seed2"]
    assert sorted(grown["skipped"]) == sorted(before)
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # old trials untouched, metrics and all
    assert stored_config(out)["seeds"] == 3

    listed = study(out, seeds=[1, 5])  # a list: seed 1 is done, seed 5 is new
    assert sorted(listed["finished"]) == [f"{A}/seed5", f"{B}/seed5"]
    assert stored_config(out)["seeds"] == [0, 1, 2, 5]  # the union, for the report
    assert all(claims == 1 for _, _, claims, _, _ in snapshot(out).values())
    with Store.in_dir(out, create=False) as store:
        again = store.range_test(store.runs()[0].id)
    assert rt is not None and again is not None and again.created == rt.created
    np.testing.assert_array_equal(again.lrs, rt.lrs)


def test_another_schedule_runs_only_it_and_report_only_settings_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s"
    study(out)
    before = snapshot(out)
    forbid_range_tests(monkeypatch)
    grown = study(out, schedules=[B, C])
    assert sorted(grown["finished"]) == [f"{C}/seed0", f"{C}/seed1"]
    assert {k: snapshot(out)[k] for k in before} == before
    assert stored_config(out)["schedules"] == [A, B, C]
    # target_accuracy only changes the report: a rerun resumes, runs nothing, and stores it
    resumed = study(out, schedules=[A, B, C], target_accuracy=0.5)
    assert "finished" not in resumed and len(resumed["skipped"]) == 6
    assert stored_config(out)["target_accuracy"] == 0.5


@pytest.mark.parametrize(("change", "field"), [
    ({"steps": 40}, "steps"),
    ({"batch_size": 32}, "batch_size"),
    ({"optimizer": {"name": "sgd", "momentum": 0.5}}, "optimizer"),
    ({"range_test": {"steps": 25}}, "range_test"),
    ({"schedules": []}, "schedules"),  # from a list to the recipe's suite is not growing
])
def test_changing_what_a_trial_computed_is_refused_naming_it(tmp_path: Path, change, field):
    out = tmp_path / "s"
    study(out, run_range_test=False)
    before = stored_config(out)
    with pytest.raises(InputError, match=rf"other settings \({field}[.:]") as err:
        study(out, run_range_test=False, **change)
    assert len(str(err.value).splitlines()) == 1
    assert stored_config(out) == before  # nothing written


def test_a_stale_lease_is_taken_over_a_fresh_one_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "s"
    study(out, run_range_test=False)
    key = f"{B}/seed1"
    with sqlite3.connect(out / STORE_FILENAME) as db:  # another process "is running" it
        db.execute("UPDATE trials SET status = 'running', owner = 'elsewhere:1:ab', "
                   "heartbeat = ? WHERE key = ?", (time.time(), key))
    busy = study(out, run_range_test=False)
    assert busy["busy"] == [key] and "finished" not in busy
    with sqlite3.connect(out / STORE_FILENAME) as db:  # ... and then it died, long ago
        db.execute("UPDATE trials SET heartbeat = ? WHERE key = ?", (time.time() - 86400, key))
    taken = study(out, run_range_test=False)
    assert taken["finished"] == [key] and "busy" not in taken
    trial = snapshot(out)[key]
    assert trial[2] == 2 and trial[3] != "elsewhere:1:ab"  # claimed twice, by us the second time
