"""Fixtures for the report tests: a store of real training, and its report (once a session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from predicted_record import record_of
from trained_study import build_study

from lrscope.outputs.report.build import ReportFiles, write_report
from lrscope.study.store.predictions import save_predictions
from lrscope.study.store.sqlite import STORE_FILENAME


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only study.sqlite: the trained study and the imported seed logs."""
    return build_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def report(study_dir: Path) -> ReportFiles:
    """The report of ``study_dir``, written once for the session."""
    return write_report(study_dir)


@pytest.fixture(scope="session")
def predicted_report(study_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    """The same study as a predict study would leave it: its record (DIR/predictions.json, with
    one untrained candidate predicted below the best) beside a copy of its store; the report."""
    directory = tmp_path_factory.mktemp("predicted")
    shutil.copy(study_dir / STORE_FILENAME, directory / STORE_FILENAME)
    save_predictions(directory, "digits-study", record_of(directory))
    return write_report(directory)
