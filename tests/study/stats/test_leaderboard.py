"""Leaderboard statistics against hand-computed numbers, and its table and CSV outputs."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

from lrscope.outputs.report.leaderboard_output import COLUMNS, rich_table, write_csv
from lrscope.study.stats.leaderboard import TrialOutcome, default_target, leaderboard, summarize
from lrscope.study.stats.uncertainty import compare_paired, compare_unpaired, mean_ci
from lrscope.study.store.sqlite import Store

T_975_DF2 = 4.3027  # Student t table, two-sided 95%, 2 degrees of freedom


def outcome(label: str, seed: int, final_loss: float | None, *, status: str = "finished",
            acc: float | None = None, curve: tuple[tuple[int, float], ...] = (),
            wall: float | None = 1.0, family: str = "f") -> TrialOutcome:
    return TrialOutcome(label, family, seed, status, final_loss,
                        None if final_loss is None else final_loss * 0.9, acc, acc, curve, wall)


def test_mean_ci_matches_a_hand_computed_t_interval() -> None:
    values = [0.30, 0.35, 0.40]  # mean 0.35, sd 0.05
    half = T_975_DF2 * 0.05 / math.sqrt(3)
    estimate = mean_ci(values)
    assert estimate.n == 3
    assert estimate.mean == pytest.approx(0.35)
    assert estimate.low == pytest.approx(0.35 - half, abs=1e-4)
    assert estimate.high == pytest.approx(0.35 + half, abs=1e-4)


def test_one_seed_has_no_interval_and_says_so() -> None:
    estimate = mean_ci([0.42])
    assert (estimate.mean, estimate.low, estimate.high) == (0.42, None, None)
    assert estimate.text() == "0.42" and estimate.single  # the table notes "n=1: no interval"
    row = summarize([outcome("only", 0, 0.42)])[0]
    assert row.final_test_loss.low is None and row.vs_best.method == "best"
    assert mean_ci([]).text() == "—"


def test_diverged_trials_are_counted_and_excluded_from_means() -> None:
    rows = summarize([
        outcome("a", 0, 0.2), outcome("a", 1, 0.4),
        outcome("a", 2, 1e6, status="diverged"), outcome("a", 3, None, status="running"),
    ])
    row = rows[0]
    assert (row.n_trials, row.n_finished, row.n_diverged, row.n_other) == (4, 2, 1, 1)
    assert row.final_test_loss.mean == pytest.approx(0.3)


def test_steps_to_target_averages_the_seeds_that_reached_it() -> None:
    curves = [((100, 0.5), (200, 0.81), (300, 0.9)), ((100, 0.85), (200, 0.9)),
              ((100, 0.5), (200, 0.6))]
    rows = summarize([outcome("a", s, 0.1, acc=c[-1][1], curve=c) for s, c in enumerate(curves)],
                     target_accuracy=0.8)
    assert rows[0].reached_target == 2
    assert rows[0].steps_to_target.mean == pytest.approx(150.0)
    assert rows[0].target_accuracy == 0.8


def test_default_target_is_95_percent_of_the_best_mean_accuracy() -> None:
    outcomes = [outcome("a", 0, 0.1, acc=0.96), outcome("a", 1, 0.1, acc=0.94),
                outcome("b", 0, 0.1, acc=0.5)]
    assert default_target(outcomes) == pytest.approx(math.floor(0.95 * 0.95 * 100) / 100)
    assert default_target([outcome("a", 0, 0.1)]) is None


def test_paired_comparison_picks_the_best_and_gives_a_p_value() -> None:
    best = {s: 0.10 + 0.01 * s for s in range(6)}
    worse = {s: v + 0.05 + 0.001 * s for s, v in best.items()}
    rows = summarize([outcome("worse", s, v) for s, v in worse.items()]
                     + [outcome("best", s, v) for s, v in best.items()])
    assert [r.label for r in rows] == ["best", "worse"]
    assert rows[0].vs_best.method == "best"
    versus = rows[1].vs_best
    # a paired t-test at every n (issue 16 item 1; it was an exact Wilcoxon from 6 pairs)
    assert versus.method == "paired t" and versus.n == 6
    diffs = np.array([worse[s] - best[s] for s in range(6)])
    t = diffs.mean() / (diffs.std(ddof=1) / math.sqrt(6))
    assert versus.p_value == pytest.approx(2 * stats.t.sf(t, 5))  # one pair: nothing to adjust
    assert versus.difference == pytest.approx(0.05 + 0.0025)
    assert versus.low is not None and versus.high is not None and versus.low < versus.high


def test_paired_t_test_for_three_to_five_seeds_matches_the_closed_form() -> None:
    # differences 0.1, 0.2, 0.3: t = 0.2 / (0.1 / sqrt 3) = 2 sqrt 3; with 2 degrees of freedom
    # the two-sided p-value is 1 - t / sqrt(2 + t^2).
    result = compare_paired({0: 1.1, 1: 1.2, 2: 1.3}, {0: 1.0, 1: 1.0, 2: 1.0})
    t = 2 * math.sqrt(3)
    assert result.method == "paired t" and result.n == 3
    assert result.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-9)
    assert result.low == pytest.approx(0.2 - T_975_DF2 * 0.1 / math.sqrt(3), abs=1e-4)


def test_too_few_shared_seeds_say_not_enough_seeds() -> None:
    # four seeds each but only two in common
    result = compare_paired({0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}, {2: 1.0, 3: 2.0, 4: 0.0, 5: 0.0})
    assert (result.method, result.n, result.p_value) == ("not enough seeds", 2, None)
    assert "not enough seeds" in result.text()
    same = compare_paired({0: 1.0, 1: 1.0, 2: 1.0}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert same.p_value == 1.0 and same.difference == 0.0


def test_unpaired_comparison_for_imported_runs() -> None:
    result = compare_unpaired([0.5, 0.6, 0.55], [0.1, 0.12])
    assert result.method == "welch t" and result.difference == pytest.approx(0.44)
    assert result.p_value is not None and 0 <= result.p_value <= 1
    assert compare_unpaired([0.5], [0.1, 0.2]).method == "not enough seeds"


def test_leaderboard_from_a_real_store_and_its_outputs(tmp_path: Path) -> None:
    label = "multistep(milestones=[100, 200])"
    with Store.in_dir(tmp_path) as store:
        run = store.ensure_run("study", config={"target_accuracy": 0.8}).id
        for seed in range(3):
            for name, loss in ((label, 0.2 + seed / 100), ("constant(lr=1)", 0.5 + seed / 50)):
                t = store.start_trial(run, f"{name}/seed{seed}", label=name, seed=seed)
                store.add_metrics(t.trial_id, [(50, "test_loss", loss * 2),
                                               (100, "test_loss", loss),
                                               (50, "test_accuracy", 0.7),
                                               (100, "test_accuracy", 0.85)])
                store.finish_trial(t.trial_id, wall_time=3.0)
        bad = store.start_trial(run, "constant(lr=100)/seed0", label="constant(lr=100)", seed=0)
        store.add_metrics(bad.trial_id, [(0, "train_loss", math.nan)])
        store.finish_trial(bad.trial_id, "diverged", diverged_at_step=0)
        rows = leaderboard(store, run)
    assert [r.label for r in rows] == [label, "constant(lr=1)", "constant(lr=100)"]
    assert rows[0].best_test_loss.mean == pytest.approx(0.21)
    assert rows[0].steps_to_target.mean == 100 and rows[0].target_accuracy == 0.8
    assert rows[2].n_diverged == 1 and rows[2].final_test_loss.mean is None
    assert rows[1].vs_best.method == "paired t"

    path = write_csv(tmp_path / "leaderboard.csv", [("study", rows)])
    records = list(csv.DictReader(path.read_text().splitlines()))
    assert list(records[0]) == COLUMNS and len(records) == 3
    assert float(records[0]["final_test_loss_mean"]) == pytest.approx(0.21)
    assert records[2]["final_test_loss_mean"] == "" and records[2]["n_diverged"] == "1"
    assert records[2]["rank_loss"] == "inf" and records[2]["vs_best_method"] == "not enough seeds"

    console = Console(file=io.StringIO(), width=250, record=True)
    console.print(rich_table(rows))
    text = console.export_text()
    assert label in text and "diverged" in text
    # the caption states the ranking rule and the adjustment
    assert "median final test loss over all seeds" in text and "Bonferroni-adjusted" in text


def test_narrow_terminal_table_keeps_every_row_and_fits(tmp_path: Path) -> None:
    rows = summarize([outcome(f"exponential(lr=1, gamma=0.99{k})", s, 0.1 * k + s / 100)
                      for k in range(1, 4) for s in range(3)])
    console = Console(file=io.StringIO(), width=80, record=True)
    console.print(rich_table(rows, width=80))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "best" in text and text.count("p=") == 2  # short "vs best": difference and p only
