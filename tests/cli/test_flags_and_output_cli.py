"""issue 19 item 15: find and compare name the range-test flags alike, `schedules` writes under
runs/, --target-accuracy shows its default, a resumed run says what was already done without a
TTY, tables follow COLUMNS without breaking a schedule name, and no "± 0"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.study.stats.precision import interval_text


def _lrscope(*argv: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lrscope", *argv], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, **(env or {})})


def test_issue19_item15_find_takes_compares_range_flag_names_and_the_old_ones(tmp_path):
    for names in (("--range-start", "--range-end", "--range-steps"),
                  ("--start", "--end", "--steps")):
        out = tmp_path / names[0].strip("-")
        proc = _lrscope("find", "--task", "digits", "--quiet", names[0], "1e-4", names[1], "1",
                        names[2], "12", "--val-every", "0", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        saved = json.loads((out / "config.json").read_text())["range_test"]
        assert (saved["start"], saved["end"], saved["steps"]) == (1e-4, 1.0, 12)


def test_issue19_item15_help_and_default_folder(tmp_path):
    help_text = " ".join(_lrscope("compare", "--help").stdout.split())
    assert "default: 95% of the best mean final test accuracy" in help_text
    proc = _lrscope("schedules", "constant(lr=0.1)", "--steps", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "schedules.png").is_file()


def test_issue19_item15_no_plus_minus_zero():
    assert interval_text(0.975, 0.0) == "0.975 (all seeds equal)"


@pytest.mark.slow
def test_issue19_item15_resumed_run_counts_done_trials_and_follows_columns(tmp_path):
    args = ("compare", "--task", "digits", "--schedules", "constant(lr=0.1)",
            "exponential(lr=0.1, gamma=0.999)", "--seeds", "1", "--steps", "20",
            "--range-steps", "20", "--parallel", "none", "--out", str(tmp_path / "s"))
    assert _lrscope(*args).returncode == 0
    again = _lrscope(*args, env={"COLUMNS": "90"})  # a pipe: no TTY, no progress bar
    assert again.returncode == 0, again.stderr
    assert "trials: 2/2 already done" in again.stderr
    table = [line for line in again.stdout.splitlines() if "│" in line or "constant(" in line]
    out = str(tmp_path / "s")  # a line naming a path may run past COLUMNS: never broken
    assert table and max(len(line) for line in again.stdout.splitlines() if out not in line) <= 90
    assert f"report: {out}/report.html" in again.stdout.splitlines()
    assert "exponential(lr=0.1," in again.stdout  # wrapped at the space, never mid-token
    assert "gamma=0.999)" in again.stdout
