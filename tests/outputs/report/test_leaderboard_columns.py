"""Issue 19 item 7: the leaderboard's first columns are what it ranked on, a narrow terminal
drops test columns before the ranked one; item 15: one-seed values print alone, with one
footnote."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lrscope.outputs.report.leaderboard_output import COLUMNS, csv_records, rich_table, shown_rows
from lrscope.study.stats.leaderboard import LeaderboardRow, TrialOutcome, summarize
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.stats.uncertainty import ONE_VALUE_NOTE

VAL_LOSS = RankingMetric().on("val")


def trial(label: str, seed: int, val: float, test: float, acc: float = 0.9) -> TrialOutcome:
    return TrialOutcome(label, "f", seed, "finished", test, test * 0.9, acc, acc,
                        ((10, acc),), 1.5, test, final_val_loss=val, worst_val_loss=val)


def rows_of(seeds: int = 3) -> list[LeaderboardRow]:
    return summarize([trial(label, s, val + 0.013 * s, val + 0.05 + 0.011 * s * (k + 1),
                            0.9 - 0.01 * s)
                      for k, (label, val) in enumerate((("onecycle(max_lr=0.3)", 0.20),
                                                        ("cosine(lr=0.3)", 0.25),
                                                        ("constant(lr=0.1)", 0.41)))
                      for s in range(seeds)], metric=VAL_LOSS, target_accuracy=0.85)


def printed(rows: list[LeaderboardRow], width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(rich_table(rows, width=width))
    return console.export_text()


def test_issue19_item7_the_ranked_column_comes_first_then_the_test_columns() -> None:
    rows = rows_of()
    header, cells = shown_rows(rows)
    assert header[:3] == ["#", "schedule", "median val loss, all seeds"]
    assert cells[0][2] == VAL_LOSS.text(rows[0].rank_loss)
    tests = [i for i, name in enumerate(header) if "test" in name]
    assert tests and min(tests) > 2
    assert set(csv_records(rows)[0]) == set(COLUMNS)  # leaderboard.csv keeps its columns
    assert COLUMNS[:4] == ["run", "rank", "label", "family"] and COLUMNS[-5] == "lr_scale"


@pytest.mark.parametrize("width", [80, 100, 120])
def test_issue19_item7_a_narrow_terminal_drops_test_columns_not_the_ranked_one(
        width: int) -> None:
    rows = rows_of()
    text = printed(rows, width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for row in rows:  # every row with its ranked value, whole
        line = next(line for line in text.splitlines() if f" {row.label} " in line)
        assert f" {VAL_LOSS.text(row.rank_loss, 3)} " in line
    assert "median" in text and "seeds" in text.split("─")[0]  # the ranked column's name
    assert "best" in text and "p=" in text  # vs best kept while it fits


def test_issue19_item7_wider_terminals_keep_more_test_columns() -> None:
    rows = rows_of()
    narrow, wide = printed(rows, 80), printed(rows, 200)
    assert "steps to" not in narrow and "wall" not in narrow
    assert "steps to" in wide and "wall (s)" in wide and "best test acc" in wide


def test_issue19_item15_one_seed_values_print_alone_with_one_footnote() -> None:
    rows = rows_of(seeds=1)
    for width in (80, 250):
        text = " ".join(printed(rows, width).split())
        assert "(n=1, no CI)" not in text and "no CI" not in text
        assert text.count(" ".join(ONE_VALUE_NOTE.split())) == 1
    header, cells = shown_rows(rows)
    column = header.index("final test loss")
    assert cells[0][column] == f"{rows[0].final_test_loss.mean:.4g}"
    assert "n=1" not in printed(rows_of(seeds=3), 250)  # no footnote where every value has one
