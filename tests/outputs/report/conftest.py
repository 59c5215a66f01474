"""Fixtures for the report tests: a store of real training, and its report (once a session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trained_study import build_study

from lrscope.outputs.report.build import ReportFiles, write_report


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only study.sqlite: the trained study and the imported seed logs."""
    return build_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def report(study_dir: Path) -> ReportFiles:
    """The report of ``study_dir``, written once for the session."""
    return write_report(study_dir)
