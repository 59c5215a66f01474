"""issue 19 item 14: a schedule whose LR overflows is one line and exit 2, from `lrscope
schedules` and from `lrscope compare` before any training (one rule: Schedule.check_finite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.errors import InputError
from lrscope.schedules import parse


def _lrscope(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lrscope", *argv], capture_output=True,
                          text=True, timeout=120)


def test_issue19_item14_schedules_overflow_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = _lrscope("schedules", "exponential(lr=1, gamma=1.5)", "--out",
                    str(tmp_path / "s.png"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "exponential(lr=1, gamma=1.5)" in lines[0]
    assert "overflows at step 1751 of 2345" in lines[0]
    assert not (tmp_path / "s.png").exists()


def test_issue19_item14_compare_refuses_an_overflowing_schedule_before_training(
        tmp_path: Path) -> None:
    out = tmp_path / "study"
    proc = _lrscope("compare", "--task", "digits", "--schedules", "constant(lr=0.1)",
                    "exponential(lr=1, gamma=1.5)", "--steps", "3000", "--seeds", "1",
                    "--parallel", "none", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "schedules: exponential(lr=1, gamma=1.5)" in lines[0]
    assert "of 3000" in lines[0]
    assert not out.exists()  # nothing ran, nothing written


def test_issue19_item14_a_growing_lr_is_fine_while_it_stays_finite() -> None:
    assert parse("exponential(lr=1, gamma=1.5)", total_steps=1751).lrs(1751)[-1] > 1e307
    with pytest.raises(InputError, match="overflows at step 1751 of 1752"):
        parse("exponential(lr=1, gamma=1.5)", total_steps=1752)
