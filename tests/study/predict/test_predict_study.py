"""Issue 18, ``strategy="predict"`` end to end on small digits studies (study_script.py): the
best is always trained, the record marks trained/predicted, the cost counts the range test and
stays in budget when the law is trusted, a problem where the law fails falls back to training
with the reason in one line, a kill -9 resumes to the same result, and ``strategy="full"``
afterwards trains only what is missing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lrscope
from lrscope.study.api import PreparedCompare, prepare_compare
from lrscope.study.plan import TrialEvent
from lrscope.study.predict.records import load_predictions
from lrscope.study.predict.strategy import run_predict
from lrscope.study.run import check_resumable, run_study, trial_key
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.store.sqlite import Store

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import study_script  # noqa: E402  (beside this file: also run as a script)


def prepared(problem, out: Path, **changes) -> PreparedCompare:
    """The checked call ``problem`` makes, to run without its report (faster)."""
    calls: list[PreparedCompare] = []

    def capture(*args, **kwargs):
        calls.append(prepare_compare(*args, **kwargs))
        raise _Captured

    real, study_script.lrscope.compare = lrscope.compare, capture
    try:
        problem(str(out), **changes)
    except _Captured:
        pass
    finally:
        study_script.lrscope.compare = real
    return calls[0]


class _Captured(Exception):
    pass


def stored(out: Path) -> dict[str, tuple]:
    """key -> (id, status, claims): every trial once (keys are unique in a run)."""
    with Store.in_dir(out, create=False) as store:
        trials = store.trials()
        keys = [t.key for t in trials]
        assert len(keys) == len(set(keys)), "a trial was stored twice"
        return {t.key: (t.id, t.status, t.started) for t in trials}


def rows(out: Path) -> list[tuple]:
    with Store.in_dir(out, create=False) as store:
        run = store.find_run("study")
        assert run is not None
        return [(r.label, r.n_trials, r.n_finished, r.rank_loss)
                for r in leaderboard(store, run.id)]


@pytest.mark.slow
def test_issue18_predict_trains_a_subset_names_a_trained_best_and_full_fills_the_rest(tmp_path):
    res = study_script.digits(str(tmp_path), "predict", budget=0.35)
    record = load_predictions(tmp_path, "study")
    assert record is not None and res.cost == record.cost
    labels = res.suite.labels()
    # every candidate has a prediction, marked trained exactly when the store has a result
    assert set(labels) <= set(res.predictions)
    measured = {row.label for row in res.leaderboard}
    assert {label for label, p in res.predictions.items() if p.trained} == measured
    assert any(not p.trained for p in res.predictions.values())  # it did not train them all
    assert res.best is not None and res.best in measured and res.predictions[res.best].trained
    # the cost: every stored trial's steps, and the range test's
    trials = stored(tmp_path)
    assert res.cost is not None and res.full_cost == res.cost.full_steps
    assert res.cost.range_test_steps == 20
    assert res.cost.full_steps == len(labels) * 3 * 60 + 20
    assert res.cost.steps == 20 + 60 * len(trials)  # none diverged here
    check = record.self_check
    assert check is not None and check.trial in trials
    if check.passed:  # the law was trusted: the budget held
        assert res.cost.steps <= 0.35 * res.cost.full_steps
    else:
        assert all(trial_key(label, 0) in trials for label in labels)
    assert res.trials == len(trials) and res.missing == 0
    # strategy="full" afterwards on the same folder: only the missing trials run
    call = prepared(study_script.digits, tmp_path, strategy="full")
    check_resumable(call.plan, tmp_path)  # strategy and budget are not the study's identity
    ran: list[str] = []

    def heard(event: TrialEvent) -> None:
        if event.state in ("finished", "diverged"):
            ran.append(event.key)

    run_study(call.plan, tmp_path, call.engine, progress=heard)
    after = stored(tmp_path)
    full = {trial_key(label, seed) for label in labels for seed in (0, 1, 2)}
    assert sorted(ran) == sorted(full - set(trials))  # the missing ones, each once
    assert set(after) == full | set(trials)  # (with the schedule optimised on the law, if any)
    assert all(after[key] == trials[key] for key in trials)  # the predict trials untouched


@pytest.mark.slow
def test_issue18_a_law_that_does_not_hold_is_detected_and_every_candidate_trained(tmp_path):
    """Overfitting: the validation loss falls, then rises; the self-check says why, in one
    line, and the study trains every candidate (no prediction stands in for a row)."""
    call = prepared(study_script.overfit, tmp_path)
    said: list[str] = []
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget,
                                announce=said.append)
    assert record is not None and record.stopped == "fallback"
    fallback = [line for line in said if "training every candidate instead" in line]
    assert len(fallback) == 1 and "\n" not in fallback[0]
    assert fallback[0].startswith(("predict: the law's self-check failed: ",
                                   "predict: the law could not be fitted"))
    trials = stored(tmp_path)
    assert {trial_key(label, 0) for label in suite.labels()} <= set(trials)
    assert all(p.trained for p in record.candidates.values())
    assert record.cost.steps >= record.cost.range_test_steps + 60 * len(suite.labels())


def _finished(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE status IN "
                                "('finished', 'diverged')").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_issue18_kill_9_mid_predict_study_then_rerun_equals_uninterrupted(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(lrscope.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(HERE / "study_script.py"), str(killed),
                             "predict"], env=env)
    deadline = time.monotonic() + 300
    while _finished(killed / "study.sqlite") < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the study never got going"
        time.sleep(0.05)
    assert proc.poll() is None, "the study ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = stored(killed)
    assert not (killed / "predictions.json").exists()  # killed mid-study, after its fit runs
    call = prepared(study_script.digits, killed)
    check_resumable(call.plan, killed)
    _, resumed = run_predict(call.plan, killed, call.engine, call.budget)
    reference = prepared(study_script.digits, clean)
    _, uninterrupted = run_predict(reference.plan, clean, reference.engine, reference.budget)
    assert resumed == uninterrupted  # the same decisions, predictions, cost and lines
    assert rows(killed) == rows(clean)
    after, expected = stored(killed), stored(clean)
    assert sorted(after) == sorted(expected)  # every trial once, the same ones
    done = [key for key, (_, status, _) in before.items() if status == "finished"]
    assert all(after[key] == before[key] for key in done)  # finished trials not rerun
    # a third run trains nothing and changes nothing
    _, again = run_predict(call.plan, killed, call.engine, call.budget)
    assert again == resumed and stored(killed) == after


@pytest.mark.slow
def test_issue18_item2_the_schedule_optimised_on_the_law_is_trained_as_a_candidate(tmp_path):
    """With a run to spare, the schedule the law predicts best (beyond the suite) is trained at
    the first seed and ranked as a measured row; it is never the best unless measured so."""
    call = prepared(study_script.digits, tmp_path, budget=0.7)
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget)
    assert record is not None and record.optimised is not None
    label = next(label for label in record.candidates if label not in suite.labels())
    assert record.candidates[label].trained
    assert trial_key(label, 0) in stored(tmp_path)
    assert label in [row[0] for row in rows(tmp_path)]
    assert record.cost.steps <= 0.7 * record.cost.full_steps
