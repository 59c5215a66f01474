"""Issue 16 item 2: where the best's test score is shown, it is said to be optimistic (the
seeds that selected it) and how to get an unbiased one (--confirm-seeds)."""

from __future__ import annotations

from rich.console import Console

from lrscope.outputs.report.build import ReportFiles
from lrscope.outputs.report.leaderboard_output import rich_table
from lrscope.study.stats.confirmation import OPTIMISM_NOTE


def _plain(text: str) -> str:
    return " ".join(text.split())


def test_issue16_item2_terminal_leaderboard_says_the_best_is_optimistic(report: ReportFiles):
    rows = next(rows for run, rows in report.leaderboards if run == "digits-study")
    console = Console(width=200)
    with console.capture() as captured:
        console.print(rich_table(rows))
    printed = _plain(captured.get())
    assert "selected it, so it is optimistic" in printed and "--confirm-seeds N" in printed


def test_issue16_item2_report_leaderboard_says_the_best_is_optimistic(report: ReportFiles):
    markdown = report.markdown.read_text(encoding="utf-8")
    study = markdown[markdown.index("## Run digits-study"):]
    leaderboard = study[study.index("### Leaderboard"):]
    leaderboard = leaderboard[:leaderboard.index("\n### ", 1)]
    assert OPTIMISM_NOTE in leaderboard
    html = report.html.read_text(encoding="utf-8")
    assert "so it is optimistic; --confirm-seeds N" in html
