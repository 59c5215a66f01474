"""report.html in real headless Chromium: no errors, every figure shown, no script run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from trained_study import SCRIPT_LABEL

from lrscope.outputs.report.build import ReportFiles

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_report_opens_without_errors_and_shows_every_figure(browser: Any,
                                                            report: ReportFiles) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.html.as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate(
        "Array.from(document.images).map(i => ({ok: i.complete, width: i.naturalWidth}))")
    assert errors == []
    assert len(images) == len(report.figures)
    assert all(i["ok"] and i["width"] > 0 for i in images), images
    # The label is shown as text and its script never ran.
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert SCRIPT_LABEL in page.inner_text("body")
    assert page.evaluate("document.scripts.length") == 0
    page.close()


def test_issue19_items7_9_verdict_first_ranked_column_first_and_captions(
        browser: Any, report: ReportFiles) -> None:
    """As a reader sees it: the verdict is the first section, above the leaderboard; the
    leaderboard's first columns are the ranked metric, then the test columns; the best-three
    figure is captioned by what it draws."""
    page = browser.new_page()
    page.goto(report.html.as_uri())
    page.wait_for_load_state("load")
    headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.innerText)")
    assert headings[0] == "Verdict"
    verdict_y = page.locator("h2", has_text="Verdict").bounding_box()["y"]
    table = page.locator("table", has=page.locator("th", has_text="vs best")).first
    assert verdict_y < table.bounding_box()["y"]
    verdict = page.evaluate(
        "() => { const h = Array.from(document.querySelectorAll('h2')).find("
        "e => e.innerText === 'Verdict'); let t = '', n = h.nextElementSibling;"
        " while (n && n.tagName !== 'H2') { t += n.innerText + ' '; n = n.nextElementSibling; }"
        " return t; }")
    assert ("Best: " in verdict or "No winner: " in verdict) and "at 3 seeds" in verdict
    header = table.locator("th").all_inner_texts()
    assert header[:3] == ["#", "schedule", "median test loss, all seeds"]
    assert header.index("final test loss") > 2
    caption = page.locator("figure", has=page.locator("img[alt='the best three']")).first \
        .inner_text()
    assert "ranked best by the median final test loss" in caption
    assert "learning rate, train loss and test loss" in caption
    page.close()


def test_issue18_a_predicted_row_is_marked_and_both_figures_shown(
        browser: Any, predicted_report: ReportFiles) -> None:
    """A predict study's report as a reader sees it: the untrained candidate's row is set apart
    (italic, titled "predicted, not trained") and the section's two figures load."""
    page = browser.new_page()
    page.goto(predicted_report.html.as_uri())
    page.wait_for_load_state("load")
    row = page.locator("tr.predicted").first
    assert "predicted, not trained" in row.inner_text()
    assert row.evaluate("r => getComputedStyle(r.cells[0]).fontStyle") == "italic"
    measured = page.locator("tr", has_text="onecycle(max_lr=1.0)").first
    assert measured.evaluate("r => getComputedStyle(r.cells[0]).fontStyle") == "normal"
    for alt in ("predicted and measured curves", "predicted against measured"):
        image = page.locator(f"img[alt='{alt}']")
        assert image.evaluate("i => i.complete && i.naturalWidth > 0"), alt
    page.close()
