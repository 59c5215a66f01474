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
