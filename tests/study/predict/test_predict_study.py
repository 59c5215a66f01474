"""Issue 18, ``strategy="predict"`` end to end on small studies (study_script.py): every
candidate probed, the best always trained, the record marks trained/predicted, the cost counts
the range test and the probes and stays in budget, a problem where the law fails falls back to
the probes' order with the reason in one line (with lr_scales: to every candidate), a kill -9
resumes to the same result, and ``strategy="full"`` afterwards trains only what is missing."""

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
from lrscope.study.predict.probes import (
    BY_LAW,
    BY_LAWS_ORDER,
    BY_PROBES,
    compression,
    probe_allowance,
)
from lrscope.study.predict.strategy import run_predict, summary_lines
from lrscope.study.run import check_resumable, run_study, trial_key
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.stats.predicted import fell_back, with_predictions
from lrscope.study.store.predictions import RETIRED_FILE, load_predictions
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


def stored(out: Path, run: str | None = None) -> dict[str, tuple]:
    """key -> (id, status, claims): every trial once (keys are unique in a run), of every run
    (the study's and its probes') or of the run called ``run``."""
    with Store.in_dir(out, create=False) as store:
        found = store.find_run(run) if run is not None else None
        trials = store.trials(found.id) if found is not None else store.trials()
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
    res = study_script.digits(str(tmp_path), "predict", budget=0.25)
    record = load_predictions(tmp_path, "study")
    assert record is not None and res.cost == record.cost
    labels = res.suite.labels()
    # every candidate has a prediction, marked trained exactly when the store has a result
    assert set(labels) <= set(res.predictions)
    measured = {row.label for row in res.leaderboard if row.measured}
    assert {label for label, p in res.predictions.items() if p.trained} == measured
    assert any(not p.trained for p in res.predictions.values())  # it did not train them all
    top = res.leaderboard[0]  # the best, or the first of a tie group: always trained
    assert top.measured and top.label in measured and res.predictions[top.label].trained
    assert res.best in (None, top.label) and (res.best is None) == bool(res.tie)
    # every candidate probed once, at the first seed, in a study of its own; the first
    # full-length run is the best-probed on the validation split (never the test set)
    probes = stored(tmp_path, "study-probes")
    assert record.probe_factor is not None and len(probes) == len(labels)
    with Store.in_dir(tmp_path, create=False) as store:
        finals = {t.label: store.metric_series(t.id, "val_loss")[1][-1]
                  for t in store.trials(store.find_run("study-probes").id)}
        first = min(store.trials(store.find_run("study").id), key=lambda t: t.id)
    best_probed = min(finals, key=lambda label: (finals[label], label))
    assert best_probed.startswith(f"compress({first.label[:-1]}")
    short = -(-60 // record.probe_factor)
    # the record keeps every probe's final value, and the untrained, the next to train first
    assert set(record.probes) == set(labels)
    assert sorted(record.probes.values()) == pytest.approx(sorted(finals.values()))
    done = {key.rsplit("/", 1)[0] for key in stored(tmp_path, "study")}
    assert set(record.untrained) == set(res.predictions) - done and record.untrained
    assert res.untrained == record.untrained
    # by the law's values: trusted, or failed on its values (its order beats the probes')
    assert record.untrained_by in (BY_LAW, BY_LAWS_ORDER)
    assert (record.untrained_by == BY_LAWS_ORDER) == fell_back(record)
    by = {label: p.value for label, p in record.candidates.items()}
    assert [by[label] for label in record.untrained] == sorted(
        by[label] for label in record.untrained)
    # the cost: every stored trial's steps, the probes' and the range test's; within budget
    trials = stored(tmp_path, "study")
    assert res.cost is not None and res.full_cost == res.cost.full_steps
    assert res.cost.range_test_steps == 20
    assert res.cost.full_steps == len(labels) * 3 * 60 + 20
    assert res.cost.steps == 20 + 60 * len(trials) + short * len(probes)  # none diverged here
    assert res.cost.steps <= 0.25 * res.cost.full_steps
    check = record.self_check
    assert check is not None and check.trial in trials
    assert res.trials == len(trials) and res.missing == 0
    # strategy="full" afterwards on the same folder: only the missing trials run
    call = prepared(study_script.digits, tmp_path, strategy="full")
    check_resumable(call.plan, tmp_path)  # strategy and budget are not the study's identity
    ran: list[str] = []

    def heard(event: TrialEvent) -> None:
        if event.state in ("finished", "diverged"):
            ran.append(event.key)

    run_study(call.plan, tmp_path, call.engine, progress=heard)
    after = stored(tmp_path, "study")
    full = {trial_key(label, seed) for label in labels for seed in (0, 1, 2)}
    assert sorted(ran) == sorted(full - set(trials))  # the missing ones, each once
    assert set(after) == full | set(trials)  # (with the schedule optimised on the law, if any)
    assert all(after[key] == trials[key] for key in trials)  # the predict trials untouched
    # the same through compare(): nothing left to train, and the predict study's record (its
    # untrained candidates, its tie, its cost) no longer describes the folder: it is kept
    # aside, and the report, the CSV and the result are the full study's
    full_res = study_script.digits(str(tmp_path), "full")
    assert load_predictions(tmp_path, "study") is None and full_res.predictions == {}
    assert load_predictions(tmp_path, "study", RETIRED_FILE) == record
    assert full_res.cost is None and full_res.untrained == () and full_res.trials == len(after)
    assert "Predicted, then measured" not in (tmp_path / "report.md").read_text()
    assert all(row.status == "measured" for row in full_res.leaderboard)


@pytest.mark.slow
def test_issue18_a_law_that_does_not_hold_is_detected_and_the_best_probed_trained(tmp_path):
    """Overfitting: the validation loss falls, then rises; the study says why in one line, and
    trains the best-probed candidates as far as the budget goes, naming the rest in the probes'
    order (no prediction stands in for a row)."""
    call = prepared(study_script.overfit, tmp_path)
    said: list[str] = []
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget,
                                announce=said.append)
    assert record is not None and record.stopped == "fallback"
    fallback = [line for line in said if "training the best-probed candidates instead" in line]
    assert len(fallback) == 1 and "\n" not in fallback[0]
    # the validation loss turns back on the first full-length run: no law is trusted
    assert fallback[0].startswith("predict: the fit run ") and " overfits: it ended " in fallback[0]
    trials = stored(tmp_path, "study")
    trained = [key.rsplit("/", 1)[0] for key in trials]
    rest = [label for label in suite.labels() if label not in trained]
    assert trained and rest and all(key.endswith("/seed0") for key in trials)
    not_trained = "predict: not trained, by their probes: "
    named = next(line for line in said if line.startswith(not_trained)).removeprefix(not_trained)
    assert sorted(named.split(", ")) == sorted(", ".join(rest).split(", "))
    # the first trained is the best-probed; here another measures better at full length, and
    # the study says that the probes' order of the rest is in doubt, with both values
    measured = {label: loss for label, _, _, loss in rows(tmp_path)}
    first, best = trained[0], min(measured, key=measured.__getitem__)
    assert best != first and said[-1] == (
        f"predict: the probes put {first} before {best}; at full length {first} measured "
        f"{measured[first]:.3g}, {best} {measured[best]:.3g}: their order of the rest may not "
        "hold at full length")
    # the summary under the leaderboard repeats both, the untrained from the record
    assert ", ".join(record.untrained) == named and record.untrained_by == BY_PROBES
    assert summary_lines(record)[-3:-1] == [
        f"predict: not trained, next first by their probes: {named}", said[-1]]
    assert summary_lines(record)[-1].startswith("predict: to train ")
    assert summary_lines(record)[-1].endswith("): what is trained is kept")
    assert record.cost.steps <= call.budget * record.cost.full_steps
    # the leaderboard holds the measured rows only
    with Store.in_dir(tmp_path, create=False) as store:
        run = store.find_run("study")
        assert run is not None
        shown = with_predictions(leaderboard(store, run.id), record)
    assert sorted(row.label for row in shown) == sorted(trained)
    assert all(row.status == "measured" for row in shown)


@pytest.mark.slow
def test_issue18_with_lr_scales_a_law_that_does_not_hold_trains_every_candidate(tmp_path):
    """A run too short to compress (15 steps) is not probed: two fit runs decide, and when the
    law does not hold every candidate is trained at the first seed, the reason in one line,
    the cost beyond the budget said before it is spent."""
    specs = [spec for spec in study_script.SCHEDULES if not spec.startswith("wsd")]
    call = prepared(study_script.overfit, tmp_path, lr_scales=[0.5, 1.0], budget=0.2,
                    steps=15, specs=specs)
    said: list[str] = []
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget,
                                announce=said.append)
    assert record is not None and record.stopped == "fallback" and record.probe_factor is None
    fallback = [line for line in said if "training every candidate instead" in line]
    assert len(fallback) == 1 and "\n" not in fallback[0]
    assert fallback[0].startswith(("predict: the fit run ", "predict: the law's self-check "))
    # what that will cost is said before it is spent: 10 candidates, some trained
    trained_before = len(record.fit_trials) + (record.self_check is not None)
    assert fallback[0].endswith(f"training every candidate instead ({10 - trained_before} more "
                                "runs: 36% of the full study's steps, beyond the budget of "
                                "20%)"), fallback[0]
    trials = stored(tmp_path)  # no probe study: the study's own trials only
    assert {trial_key(label, 0) for label in suite.labels()} <= set(trials)
    assert len(suite.labels()) == 10 and all(p.trained for p in record.candidates.values())
    assert any(line.startswith("predict: training every candidate took ") for line in said)


@pytest.mark.slow
def test_issue18_with_lr_scales_the_probes_at_sqrt_k_times_their_lrs_order_the_runs(tmp_path):
    """With lr_scales every candidate is probed, each at sqrt(k) times its LRs (a run k times
    shorter prefers a higher peak: probes.HORIZON_EXPONENT), and the full-length runs follow
    the probes' order within the budget; no law is fitted (across peaks its order was worse),
    which the study says once; nothing is predicted, and the record is no fallback."""
    from lrscope.schedules import parse
    from lrscope.study.predict.probes import SCALED

    said: list[str] = []
    call = prepared(study_script.overfit, tmp_path, budget=0.2, lr_scales=[0.5, 1.0])
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget,
                                announce=said.append)
    assert record is not None and record.probe_factor is not None
    labels = suite.labels()
    assert len(labels) == 12 and set(record.probes) == set(labels)
    short = -(-150 // record.probe_factor)
    boost = (150 / short) ** 0.5
    probes = stored(tmp_path, "study-probes")
    boosted = [parse(label, total_steps=150).scaled(boost, digits=6).spec() for label in labels]
    assert set(probes) == {f"compress({spec}, factor={150 / short:.6g})/seed0"
                           for spec in boosted}
    assert [line for line in said if line.startswith(SCALED)] == [
        f"{SCALED}the candidates are probed at {boost:.3g} times their LRs (a shorter run "
        "prefers a higher peak), and their probes order the full-length runs; no loss-curve "
        "law is fitted (across peak LRs its order was worse than the probes')"]
    assert summary_lines(record)[1].startswith(SCALED)
    # the runs: the best-probed first, in the probes' order, as far as the budget goes
    by_probe = sorted(labels, key=lambda label: (record.probes[label], label))
    trained = [key.rsplit("/", 1)[0] for key in stored(tmp_path, "study")]
    assert trained == by_probe[:len(trained)] and trained
    assert record.untrained == tuple(by_probe[len(trained):])
    assert record.untrained_by == BY_PROBES and record.stopped == "budget"
    assert not record.fit_trials and record.self_check is None and record.candidates == {}
    assert not fell_back(record) and record.cost.steps <= 0.2 * record.cost.full_steps


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
    """Once the law passed its self-check (least squares, where it holds), the schedule it
    predicts best beyond the suite competes with the untrained candidates; trained, it is a
    measured row, never the best unless measured so. At a budget of 0.8 the probes are 30
    steps of the 60 (at 0.7 they shrink to 20, to leave room for one more full-length run,
    and the law fitted to them fails its check on this problem)."""
    call = prepared(study_script.quadratic, tmp_path, budget=0.8)
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget)
    assert record is not None and record.optimised is not None
    assert record.self_check is not None and record.self_check.passed
    label = next(label for label in record.candidates if label not in suite.labels())
    assert record.candidates[label].trained
    assert trial_key(label, 0) in stored(tmp_path)
    assert label in [row[0] for row in rows(tmp_path)]
    assert record.cost.steps <= 0.8 * record.cost.full_steps


def test_issue18_probes_are_read_on_the_validation_split_before_any_full_run(tmp_path):
    """The probes rank the candidates before the study's own run holds a trial: they must be
    read on the validation split, never on the test set (the study's run, still empty, would
    say "test"); and the probe study is the suite compressed, at the first seed only."""
    import math

    from lrscope.schedules import parse
    from lrscope.study.predict.state import StudyState

    call = prepared(study_script.digits, tmp_path, budget=0.25)
    suite = run_study(call.plan, tmp_path, call.engine, wanted=set())
    state = StudyState(call.plan, tmp_path, suite, 0.25)
    probes = state.probes.plan
    assert state.probing and probes.seeds == (0,) and probes.range_test is None
    assert probes.steps == math.ceil(60 / state.probes.factor) and probes.lr_scales is None
    for label, spec in state.probes.labels.items():  # each candidate's whole shape, compressed
        compressed, full = parse(spec), dict(suite.schedules)[label]
        assert [compressed(t) for t in range(probes.steps)] == [
            full(math.floor(t * 60 / probes.steps + 1e-9)) for t in range(probes.steps)]
    run_study(probes, tmp_path, call.engine)
    with Store.in_dir(tmp_path, create=False) as store:
        run = store.find_run(probes.name)
        assert run is not None and run.config["probes_of"] == "study"
        val = {t.label: store.metric_series(t.id, "val_loss")[1] for t in store.trials(run.id)}
    curves = state.probes.curves()
    for label, spec in state.probes.labels.items():
        curve = curves[label]
        assert curve is not None and list(curve.values) == list(val[spec])
    assert state.spent() == 20 + len(suite.labels()) * probes.steps  # range test + probes


@pytest.mark.slow
def test_issue18_a_rerun_with_another_budget_reuses_the_probes_and_trains_more(tmp_path):
    """The budget is not the study's identity: a rerun with a larger one on the same folder
    keeps the probes already trained (another budget would compress them differently, a
    probe study with other settings, which the store refuses) and trains more full-length
    runs; a smaller one afterwards trains nothing."""
    small = study_script.digits(str(tmp_path), "predict", budget=0.2)
    probes, trials = stored(tmp_path, "study-probes"), stored(tmp_path, "study")
    first = load_predictions(tmp_path, "study")
    assert first is not None and first.probe_factor is not None
    larger = study_script.digits(str(tmp_path), "predict", budget=0.45)
    assert stored(tmp_path, "study-probes") == probes  # the same probes, none trained again
    after = stored(tmp_path, "study")
    assert set(trials) < set(after) and all(after[key] == trials[key] for key in trials)
    record = load_predictions(tmp_path, "study")
    assert record is not None and larger.cost == record.cost and larger.cost is not None
    assert small.cost is not None and larger.cost.steps > small.cost.steps
    assert record.probe_factor == first.probe_factor
    full = record.cost.full_steps  # at 0.45 from the start, the probes would be longer
    assert compression(8, 60, probe_allowance(int(0.45 * full) - 20, 60)) < first.probe_factor
    again = study_script.digits(str(tmp_path), "predict", budget=0.2)
    assert stored(tmp_path, "study") == after and stored(tmp_path, "study-probes") == probes
    # and its record describes the folder: the trials the larger budget trained count as
    # measured (none named untrained), as the leaderboard shows them, and in its cost
    measured = {row.label for row in again.leaderboard if row.measured}
    assert measured == {key.rsplit("/", 1)[0] for key in after}
    assert not set(again.untrained) & measured
    assert {label for label, p in again.predictions.items() if p.trained} == measured
    assert again.cost is not None and again.cost.steps == larger.cost.steps
    assert again.trials == len(after)
    rerun = load_predictions(tmp_path, "study")
    assert rerun is not None and any(
        line.startswith("predict: this folder also holds ") for line in rerun.lines)
    assert not [label for line in rerun.lines if line.startswith("predict: not trained")
                for label in measured if label in line]


def test_issue18_a_single_candidate_is_not_probed(tmp_path):
    """Probes order the candidates; with one there is nothing to order, so none is trained
    (the study goes to its full-length run at once)."""
    import dataclasses

    from lrscope.study.predict.state import StudyState

    call = prepared(study_script.digits, tmp_path, budget=0.25)
    plan = dataclasses.replace(call.plan, schedules=call.plan.schedules[:1])
    suite = run_study(plan, tmp_path, call.engine, wanted=set())
    assert len(suite.labels()) == 1
    assert not StudyState(plan, tmp_path, suite, 0.25).probing


@pytest.mark.slow
def test_issue18_the_verdicts_wall_time_is_the_whole_predict_study(tmp_path):
    """DIR/parallel.json's study_wall_s (the verdict's "Ran in") covers the whole call: the
    range test, the probes and the law's fits too, not only the batches of the study's own
    trials; a rerun that trains nothing leaves it as it was."""
    import time

    from lrscope.study.store.ran import how_it_ran

    call = prepared(study_script.digits, tmp_path, budget=0.25)
    began = time.perf_counter()
    run_predict(call.plan, tmp_path, call.engine, call.budget)
    whole = time.perf_counter() - began
    entry = how_it_ran(tmp_path, "study")
    assert 0.9 * whole <= entry["study_wall_s"] <= whole + 0.01, (entry, whole)
    assert entry["study_wall_s"] > how_it_ran(tmp_path, "study-probes")["study_wall_s"]
    run_predict(call.plan, tmp_path, call.engine, call.budget)
    assert how_it_ran(tmp_path, "study") == entry


@pytest.mark.slow
def test_issue18_a_budget_left_after_every_candidate_races_the_seeds_without_a_law(tmp_path):
    """A law that does not hold at a large budget: every candidate is trained in the probes'
    order, and the budget left races the seeds on the measurements (the race needs no law),
    as the route with lr_scales does; found with --budget 1, which stopped at half the full
    study's steps with one seed of each and no winner."""
    call = prepared(study_script.overfit, tmp_path, budget=1.0)
    suite, record = run_predict(call.plan, tmp_path, call.engine, call.budget)
    assert record is not None and record.stopped == "fallback" and not record.untrained
    trials = stored(tmp_path, "study")
    assert {trial_key(label, 0) for label in suite.labels()} <= set(trials)
    more = sorted(key for key in trials if not key.endswith("/seed0"))
    assert more, "no seed was raced"
    assert record.cost.steps <= record.cost.full_steps


@pytest.mark.slow
def test_issue18_predict_on_a_full_studys_folder_trains_and_fits_nothing(tmp_path):
    """A folder the full study trained holds every measurement a predict study could ask for:
    it trains no probe (they cost 0.8 of a run there before, and a self-check on runs the full
    study had made printed as a fallback), fits no law, reports measurements only, and its
    rerun writes the same record."""
    study_script.digits(str(tmp_path), "full")
    before = stored(tmp_path, "study")
    res = study_script.digits(str(tmp_path), "predict", budget=0.25)
    assert stored(tmp_path) == before  # nothing trained, no probe study
    record = load_predictions(tmp_path, "study")
    assert record is not None and not record.fit_trials and not record.probes
    assert record.candidates == {} and not record.untrained and record.self_check is None
    assert record.stopped in ("separated", "all trained")
    assert any(line.startswith(f"predict: this folder also holds {len(before)} trials")
               for line in record.lines)
    assert res.cost is not None and res.cost.steps == res.cost.full_steps
    assert all(row.status == "measured" for row in res.leaderboard)
    report = (tmp_path / "report.md").read_text()
    assert "No law was fitted and nothing predicted" in report
    assert "predicted-curves" not in report
    study_script.digits(str(tmp_path), "predict", budget=0.25)
    assert load_predictions(tmp_path, "study") == record and stored(tmp_path) == before


@pytest.mark.slow
def test_issue18_the_budget_said_to_train_the_untrained_has_room_for_them(tmp_path):
    """A study that stops with candidates untrained says which budget, on the same folder, has
    room to train them; the rerun with it trains them (what was trained is kept)."""
    import re

    from lrscope.study.predict.strategy import larger_budget_line

    first = study_script.digits(str(tmp_path), "predict", budget=0.2)
    record = load_predictions(tmp_path, "study")
    assert record is not None and record.untrained and first.untrained == record.untrained
    line = larger_budget_line(record)
    assert line in summary_lines(record)
    found = re.search(r"--budget ([0-9.]+), budget=([0-9.]+)", line)
    assert found is not None and found[1] == found[2]
    budget = float(found[1])
    within = [label for label in record.untrained if label in record.tie]
    named = within or list(record.untrained)
    assert budget == pytest.approx(
        (record.cost.steps + len(named) * record.cost.run_steps) / record.cost.full_steps,
        abs=0.01)
    before = stored(tmp_path, "study")
    again = study_script.digits(str(tmp_path), "predict", budget=budget)
    after = stored(tmp_path, "study")
    assert all(after[key] == value for key, value in before.items())  # kept, not retrained
    assert {trial_key(label, 0) for label in named} <= set(after)
    assert not set(named) & set(again.untrained)


@pytest.mark.slow
def test_issue18_a_race_the_budget_ended_says_the_runs_it_lacks_and_the_room_for_them(tmp_path):
    """Every candidate trained, the budget ends the seeds' race with a tie: the study says how
    many runs would give the best and its tie every seed, and what budget has room for them
    (here none does, the probes took a share: the largest's room and the full study); a rerun
    with the largest budget trains that many and keeps the rest."""
    import re

    res = study_script.digits(str(tmp_path), "predict", budget=0.45)
    record = load_predictions(tmp_path, "study")
    assert record is not None and not record.untrained and res.tie
    said = [line for line in record.lines if line.startswith("predict: to race ")]
    assert len(said) == 1 and said[0] == summary_lines(record)[-1]
    found = re.search(r"and the (\d+) not separated from it to 3 seeds each \((\d+) more runs\)"
                      r".* has room for (\d+) of them", said[0])
    assert found is not None and said[0].startswith(f"predict: to race {res.leaderboard[0].label}")
    racing = [res.leaderboard[0].label, *res.tie]
    before = stored(tmp_path, "study")
    lacking = [trial_key(label, seed) for label in racing for seed in (0, 1, 2)
               if trial_key(label, seed) not in before]
    assert int(found[1]) == len(res.tie) and int(found[2]) == len(lacking)
    room = (record.cost.full_steps - record.cost.steps) // record.cost.run_steps
    assert int(found[3]) == room < len(lacking)
    study_script.digits(str(tmp_path), "predict", budget=1.0)
    after = stored(tmp_path, "study")
    assert all(after[key] == value for key, value in before.items())
    assert len(after) - len(before) == room and set(after) - set(before) <= set(lacking)
