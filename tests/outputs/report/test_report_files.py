"""The report written from a store of real training: sections, escaping, CSV, rewriting."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from trained_study import SCHEDULES, SCRIPT_LABEL, SEED_LOGS, SEEDS

from lrscope.outputs.report.build import ReportFiles, write_report
from lrscope.study.stats.verdict import tie_group
from lrscope.study.store.sqlite import STORE_FILENAME, Store

needs_seed_logs = pytest.mark.skipif(not SEED_LOGS.is_dir(), reason="the seed's logs are absent")


def test_the_report_has_the_seed_studys_sections(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    headings = re.findall(r"^#+ (.*)$", md, flags=re.M)
    assert "Run digits-study (study)" in headings
    assert ("Run tb_logs (import)" in headings) == SEED_LOGS.is_dir()
    study = headings[headings.index("Run digits-study (study)"):]
    if SEED_LOGS.is_dir():
        study = study[:study.index("Run tb_logs (import)")]
    for title in ("Range test", "Leaderboard", "Family: constant", "Family: step",
                  "Family: exponential", "Family: onecycle", "The best three side by side",
                  "Recipe and configuration"):
        assert title in study, title
    assert study.index("Range test") < study.index("Leaderboard") < study.index("Family: step")
    assert "max_lr = divergence LR / 3 (Smith)" in md  # the recipe stored with the run


def test_every_figure_is_written_linked_and_embedded(report: ReportFiles) -> None:
    on_disk = sorted((report.markdown.parent / "figures").glob("*.png"))
    assert sorted(report.figures) == on_disk and len(on_disk) >= 8
    md, page = report.markdown.read_text(), report.html.read_text()
    for figure in on_disk:
        assert f"(figures/{figure.name})" in md
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count("<img src=\"data:image/png;base64,") == len(on_disk)
    assert "figures/" not in page  # self-contained: nothing referenced outside the file


@needs_seed_logs
def test_imported_runs_are_drawn_beside_the_study(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    study_part = md.split("## Run tb_logs (import)")[0]
    for family in ("step", "exponential", "onecycle"):
        section = study_part.split(f"### Family: {family}")[1].split("###")[0]
        assert "imported TensorBoard runs of the same family" in section, family
    constant = study_part.split("### Family: constant")[1].split("###")[0]
    assert "imported" not in constant  # the seed has no constant LR run


def test_names_from_configs_are_escaped(report: ReportFiles) -> None:
    page, md = report.html.read_text(), report.markdown.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "<script" not in md.lower() and "&lt;script&gt;" in md


def test_leaderboard_csv_and_diverged_schedule(report: ReportFiles) -> None:
    records = list(csv.DictReader(report.leaderboard_csv.read_text().splitlines()))
    study = [r for r in records if r["run"] == "digits-study"]
    assert sorted(r["label"] for r in study) == sorted(SCHEDULES)
    # 8 schedules: the seed's range test is the run's range test, not a row (issue 19 item 12)
    assert len([r for r in records if r["run"] == "tb_logs"]) == (8 if SEED_LOGS.is_dir() else 0)
    blown = next(r for r in study if r["label"] == "constant(lr=100)")
    assert blown["n_diverged"] == str(len(SEEDS)) and blown["final_test_loss_mean"] == ""
    assert blown["rank"] == str(len(SCHEDULES))  # no finished trial: ranked last
    best = next(r for r in study if r["rank"] == "1")
    assert best["vs_best_method"] == "best" and float(best["final_test_accuracy_mean"]) > 0.8
    script = next(r for r in study if r["label"] == SCRIPT_LABEL)
    assert script["vs_best_method"] in ("paired t", "best")


def test_the_report_needs_only_the_store_and_rewrites_cleanly(report: ReportFiles,
                                                               tmp_path: Path) -> None:
    shutil.copy(report.markdown.parent / STORE_FILENAME, tmp_path / STORE_FILENAME)
    stale = tmp_path / "figures" / "report-r9-99-stale.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    again = write_report(tmp_path)
    assert not stale.exists()
    assert len(again.figures) == len(report.figures)
    assert again.markdown.read_text().replace(str(tmp_path), "X") == \
        report.markdown.read_text().replace(str(report.markdown.parent), "X")


def test_a_store_with_a_trial_still_running_can_be_reported(tmp_path: Path) -> None:
    with Store.in_dir(tmp_path) as store:
        run = store.ensure_run("live").id
        for label, status in (("a", "finished"), ("b", "running")):
            t = store.start_trial(run, f"{label}/seed0", label=label, family="constant")
            store.add_metrics(t.trial_id, [(s, "train_loss", 2.0 - s / 10) for s in range(10)]
                              + [(s, "lr", 0.1) for s in range(10)] + [(10, "test_loss", 1.0)])
            if status == "finished":
                store.finish_trial(t.trial_id, wall_time=1.0)
    files = write_report(tmp_path)
    md = files.markdown.read_text()
    assert "2 trials: 1 finished, 0 diverged, 1 failed or unfinished" in md
    assert [r.label for r in files.leaderboards[0][1]] == ["a", "b"]
    assert len(files.figures) == 2  # the constant family (a vs b) and the best three


def test_an_empty_store_gives_a_report_saying_so(tmp_path: Path) -> None:
    Store.in_dir(tmp_path).close()
    files = write_report(tmp_path)
    assert "no runs yet" in files.markdown.read_text() and files.figures == []


HOSTILE_RUN = "![x](http://evil/x.png)"
HOSTILE_LABEL = "[a](http://evil)"


def _rendered_markdown(md: str) -> list[str]:
    """report.md as HTML by two real renderers: CommonMark with tables (markdown-it-py, what
    GitHub-like viewers parse) and Python-Markdown with tables (a common viewer's library)."""
    import markdown
    from markdown_it import MarkdownIt

    return [MarkdownIt("commonmark").enable("table").render(md),
            markdown.markdown(md, extensions=["tables"])]


def test_issue16_item20_names_cannot_inject_markdown_images_or_links(tmp_path: Path) -> None:
    """A study or schedule name is text: no renderer of report.md turns it into a remote image
    or a link, and it reads as written."""
    with Store.in_dir(tmp_path) as store:
        run = store.ensure_run(HOSTILE_RUN).id
        for label in (HOSTILE_LABEL, "*b*_c_"):
            t = store.start_trial(run, f"{label}/seed0", label=label, family="constant")
            store.add_metrics(t.trial_id, [(s, "train_loss", 2.0 - s / 10) for s in range(10)]
                              + [(s, "lr", 0.1) for s in range(10)] + [(10, "test_loss", 1.0)])
            store.finish_trial(t.trial_id, wall_time=1.0)
    md = write_report(tmp_path).markdown.read_text()
    for html in _rendered_markdown(md):
        targets = re.findall(r'(?:src|href)="([^"]*)"', html)
        assert targets and all(t.startswith("figures/") for t in targets), targets
        assert HOSTILE_RUN in html and HOSTILE_LABEL in html  # shown as the text it is
        assert "*b*_c_" in html and "<em>b</em>" not in html and "<em>c</em>" not in html


def test_issue19_item9_the_verdict_opens_the_report(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    headings = re.findall(r"^#+ (.*)$", md, flags=re.M)
    assert headings[1] == "Verdict" and headings.index("Verdict") < headings.index(
        "Run digits-study (study)")
    verdict = md.split("## Verdict")[1].split("\n## ")[0]
    rows = next(r for r in report.leaderboards if r[0] == "digits-study")[1]
    best = rows[0].label
    # issue 18: a top the seeds cannot separate is a tie group, not a winner
    opening = (f"No winner: {best} ranks first" if tie_group(rows) else f"Best: {best}")
    assert f"{opening}, by the median final test loss over all seeds" in verdict
    assert "at 3 seeds" in verdict
    # this store was written by hand, without DIR/parallel.json: said, not invented
    assert "was not recorded with this study" in verdict


def test_issue19_item7_best_three_caption_says_what_it_draws(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    caption = md.split("### The best three side by side")[1].split("###")[0]
    assert "ranked best by the median final test loss over all seeds" in caption
    assert "learning rate, train loss and test loss" in caption
    assert "finished seeds" in caption
