"""Issue 18: a predict study's report: predicted rows marked, "Predicted, then measured" with its
two figures, the cost and self-check lines; a failed self-check ranks no prediction."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

from predicted_record import UNTRAINED, record_of

from lrscope.outputs.report.build import ReportFiles, write_report
from lrscope.study.predict.probes import BY_LAWS_ORDER
from lrscope.study.store.predictions import save_predictions
from lrscope.study.store.sqlite import STORE_FILENAME


def test_issue18_predicted_rows_are_marked_in_the_csv_markdown_and_html(
        predicted_report: ReportFiles) -> None:
    with predicted_report.leaderboard_csv.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["run"] == "digits-study"]
    assert rows[0]["status"] == "measured" and rows[0]["predicted"] == ""
    cosine = rows[1]  # predicted below the best: right under it, never above
    assert (cosine["label"], cosine["rank"], cosine["status"], cosine["predicted"],
            cosine["predicted_low"], cosine["predicted_high"]) == (
        UNTRAINED, "2", "predicted", "0.01", "0.005", "0.02")
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    md, page = predicted_report.markdown.read_text(), predicted_report.html.read_text()
    assert f"| *2* | *{UNTRAINED}* | *0\\.01 \\[0.005, 0.02\\] (predicted)* | " \
           "*predicted, not trained* |" in md
    assert (f'<tr class="predicted" title="predicted, not trained"><td>2</td><td>{UNTRAINED}'
            "</td>") in page
    assert "Rows in italics are predicted by the loss-curve law, not trained" in md
    assert "1 more candidate predicted by the loss-curve law, not trained" in md  # verdict


def test_issue18_the_predicted_then_measured_section_and_its_two_figures(
        predicted_report: ReportFiles) -> None:
    md = predicted_report.markdown.read_text()
    section = md.split("### Predicted, then measured")[1].split("\n### ")[0]
    assert "Law: multi_power (L0=0.1, alpha=0.5), fitted on " in section
    assert "predict: trained 4.7 runs' worth of steps (range test included), 30% of the full " \
           "study's 15 runs (budget 33%)" in section
    assert "predict: the law's self-check passed: it predicted 0.3 for exponential" in section
    names = [path.name for path in predicted_report.figures]
    for slug in ("predicted-curves", "predicted-vs-measured"):
        figure = next(name for name in names if name.endswith(f"{slug}.png"))
        assert f"(figures/{figure})" in section
    assert predicted_report.markdown.parent.joinpath("figures", figure).stat().st_size > 10_000
    # the untrained, next first, with the law's prediction (nothing was probed: no probe column)
    assert ("Not trained, in the order the study would train them next (by the law's "
            "prediction).\n\n| not trained (next first) | law's prediction \\[95%\\] |\n"
            f"| --- | --- |\n| {UNTRAINED} | 0\\.01 \\[0.005, 0.02\\] |") in section


def test_issue18_the_untrained_in_the_failed_laws_order_with_each_probes_value(
        study_dir: Path, tmp_path: Path) -> None:
    """A probed study whose law failed its self-check: the untrained in the law's order, each
    with its probe's value (said to be a compressed run's) and the law's prediction, not
    trusted; the HTML report holds the same table."""
    shutil.copy(study_dir / STORE_FILENAME, tmp_path / STORE_FILENAME)
    failed = record_of(tmp_path, passed=False)
    record = dataclasses.replace(failed, probe_factor=9, untrained=(UNTRAINED, "wsd(lr=0.5)"),
                                 untrained_by=BY_LAWS_ORDER,
                                 probes={UNTRAINED: 0.25, "wsd(lr=0.5)": None})
    save_predictions(tmp_path, "digits-study", record)
    files = write_report(tmp_path)
    section = files.markdown.read_text().split("### Predicted, then measured")[1]
    assert ("; the next were trained in the law's order instead (its values not trusted), as "
            "far as the budget allowed") in section
    assert ("Not trained, in the order the study would train them next (by the law's order, "
            "its values not trusted); a probe trains the candidate's whole schedule "
            "compressed, so its value is not the candidate's at full length.") in section
    assert ("| not trained (next first) | probe's test loss (1/9 of the run, first seed) | "
            "law's prediction \\[95%\\] (not trusted) |\n| --- | --- | --- |\n"
            f"| {UNTRAINED} | 0\\.25 | 0\\.01 \\[0.005, 0.02\\] |\n"
            "| wsd(lr=0.5) | — | — |") in section
    page = files.html.read_text()
    assert f"<td>{UNTRAINED}</td><td>0.25</td>" in page and "<td>wsd(lr=0.5)</td>" in page


def test_issue18_a_failed_self_check_ranks_no_prediction(study_dir: Path, tmp_path: Path) -> None:
    shutil.copy(study_dir / STORE_FILENAME, tmp_path / STORE_FILENAME)
    save_predictions(tmp_path, "digits-study", record_of(tmp_path, passed=False))
    files = write_report(tmp_path)
    with files.leaderboard_csv.open(encoding="utf-8") as handle:
        assert {r["status"] for r in csv.DictReader(handle)} == {"measured"}
    md = files.markdown.read_text()
    assert "self-check failed" in md
    assert "; every candidate was trained instead" in md
    assert "The law was not trusted (what was trained instead: above): the leaderboard" in md
    assert UNTRAINED not in md.split("### Predicted, then measured")[0]
