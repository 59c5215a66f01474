"""Issue 16 items 3, 5, 6, 8 and issue 19 items 3, 4: what a leaderboard ranked, said under the
ranked metric's own name and direction; nothing finished means no best; the sensitivity cells
ranked as the rows are; one row per schedule at its best LR scale; no test set compares on what
was ranked."""

from __future__ import annotations

import io
import math

import pytest
from rich.console import Console

from lrscope.outputs.report.leaderboard_output import csv_records, rich_table, shown_rows
from lrscope.study.stats.leaderboard import TrialOutcome, default_target, ranking_note, summarize
from lrscope.study.stats.ranking import RankingMetric, ranked_on_text
from lrscope.study.stats.scales import best_scale_line, best_scales, sensitivity

ACCURACY = RankingMetric("accuracy", "max", "val")


def trial(label: str, seed: int, val: float | None, *, test: float | None = 0.5,
          status: str = "finished", acc: float | None = None) -> TrialOutcome:
    """A trial whose ranking value on validation is ``val`` (lower-better, as stored)."""
    return TrialOutcome(label, "f", seed, status, test, test, acc, acc, (), 1.0, test,
                        final_val_loss=val, worst_val_loss=val)


def table_text(rows, width: int = 250) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(rich_table(rows))
    return console.export_text()


def test_issue16_item3_an_accuracy_ranking_reads_as_accuracy_everywhere() -> None:
    # accuracy 0.95 and 0.90 per seed, stored negated (lower-better) as the ranking reads it
    outcomes = [trial("a", s, -0.95) for s in range(3)] + [trial("b", s, -0.90) for s in range(3)]
    rows = summarize(outcomes, metric=ACCURACY)
    assert [r.label for r in rows] == ["a", "b"]
    assert rows[0].rank_value == pytest.approx(0.95) and rows[0].ranked_on == "val_accuracy"
    header, cells = shown_rows(rows)
    column = header.index("median val accuracy, all seeds")
    assert cells[0][column] == "0.95" and not any("loss, all seeds" in h for h in header)
    assert "validation accuracy" in ranking_note(rows) and "higher is better" in ranking_note(rows)
    assert "test loss" not in ranking_note(rows)
    record = csv_records(rows)[0]
    assert record["rank_loss"] == pytest.approx(0.95) and record["rank_direction"] == "max"
    origins = {"a": ("a0", 3.0), "b": ("b0", 1.0)}
    assert best_scale_line(best_scales(rows, origins)[0]) == "a0: best at x3 (val accuracy 0.95)"
    # the one function every sentence comes from
    assert "validation accuracy" in ranked_on_text(ACCURACY, "top")
    assert "validation accuracy" in ranked_on_text(ACCURACY, "scale")


def test_issue16_item3_rank_by_parses_names_directions_and_refuses_the_rest() -> None:
    assert RankingMetric.parse("accuracy:max") == RankingMetric("accuracy", "max")
    assert RankingMetric.parse("val_rmse").direction == "min"
    assert RankingMetric.parse(("bleu", "min")).direction == "min"
    for bad in ("accuracy:best", "a b", ":max"):
        with pytest.raises(ValueError, match="min or max"):
            RankingMetric.parse(bad)


def test_issue16_item4_a_metric_nothing_measures_names_those_that_exist() -> None:
    with pytest.raises(ValueError, match=r"'acc'.*accuracy, loss"):
        RankingMetric.parse("acc").check({"loss", "accuracy"})


def test_issue16_item5_nothing_finished_has_no_best_and_says_so() -> None:
    outcomes = [trial(label, s, None, test=None, status="diverged")
                for label in ("a", "b") for s in range(2)]
    rows = summarize(outcomes)
    assert all(r.n_finished == 0 for r in rows)
    assert [r.vs_best.method for r in rows] == ["nothing finished"] * 2
    assert "Nothing finished" in table_text(rows)
    finished = summarize([trial("a", 0, 0.2)])
    assert "Nothing finished" not in table_text(finished)


def test_issue16_item6_sensitivity_cells_count_every_seed_as_the_rows_do() -> None:
    # x1: 2 of 3 seeds diverged, the one finished has the lowest value; x3: 3 of 3 at 0.3
    outcomes = [trial("c1", 0, 0.1), trial("c1", 1, None, status="diverged"),
                trial("c1", 2, None, status="diverged"),
                *(trial("c3", s, 0.3) for s in range(3))]
    origins = {"c1": ("c1", 1.0), "c3": ("c1", 3.0)}
    rows = summarize(outcomes, origins=origins)
    cells = sensitivity(outcomes, origins, rows[0].metric)["c1"]
    assert cells[1.0].text(rows[0].metric) == "unfinished (1/3)"
    assert cells[3.0].text(rows[0].metric) == "0.3 (3/3)"
    assert best_scales(rows, origins)[0].scale == 3.0
    assert min(cells, key=lambda s: cells[s].rank_loss) == 3.0  # the cells rank like the rows


def test_issue16_item8_a_nan_final_accuracy_does_not_crash_the_leaderboard() -> None:
    outcomes = [trial("a", 0, 0.2, acc=math.nan), trial("b", 0, 0.3, acc=0.9)]
    assert default_target(outcomes) == 0.85
    assert default_target([trial("a", 0, 0.2, acc=math.nan)]) is None
    rows = summarize(outcomes)
    assert [r.label for r in rows] == ["a", "b"]


def test_issue19_item3_without_a_test_set_vs_best_compares_on_the_ranked_metric() -> None:
    shift = {"a": 0.0, "b": 0.05}
    outcomes = [trial(label, s, -(0.9 - shift[label] + 0.01 * s), test=None)
                for label in ("a", "b") for s in range(3)]
    rows = summarize(outcomes, metric=ACCURACY)
    assert rows[1].versus_on == ACCURACY and rows[1].vs_best.n == 3
    assert rows[1].vs_best.difference == pytest.approx(-0.05)  # in accuracy: b is worse
    header, _ = shown_rows(rows)
    assert "vs best, val accuracy (adjusted p)" in header
    record = csv_records(rows)[1]
    assert record["vs_best_on"] == "val_accuracy"


def test_issue19_item4_one_row_per_schedule_at_its_best_scale() -> None:
    values = {("c", 0.3): 0.6, ("c", 1.0): 0.4, ("c", 3.0): 0.5,
              ("d", 0.3): 0.2, ("d", 1.0): 0.3, ("d", 3.0): 0.9}
    outcomes = [trial(f"{base}x{scale}", s, value + 0.01 * s)
                for (base, scale), value in values.items() for s in range(3)]
    origins = {f"{base}x{scale}": (base, scale) for base, scale in values}
    rows = summarize(outcomes, origins=origins)
    assert [(r.label, r.lr_scale) for r in rows] == [("dx0.3", 0.3), ("cx1.0", 1.0)]
    assert rows[1].vs_best.n == 3  # compared with the best base only, not 5 other scales
    assert [r["lr_scale"] for r in csv_records(rows)] == [0.3, 1.0]
