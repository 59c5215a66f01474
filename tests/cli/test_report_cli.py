"""``lrscope report DIR`` end to end through the CLI, and its one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lrscope.cli import main
from lrscope.study.store.sqlite import STORE_FILENAME, Store


def small_store(directory: Path) -> Path:
    """Two schedules x three seeds with hand-written evaluations (the CLI's plumbing only)."""
    with Store.in_dir(directory) as store:
        run = store.ensure_run("tiny", config={"target_accuracy": 0.9}).id
        for seed in range(3):
            for label, final in (("cosine(lr=0.1)", 0.30 + seed / 100),
                                 ("constant(lr=0.1)", 0.40 + seed / 50)):
                t = store.start_trial(run, f"{label}/seed{seed}", label=label,
                                      family=label.split("(")[0], seed=seed)
                store.add_metrics(t.trial_id, [(s, "lr", 0.1) for s in range(20)]
                                  + [(s, "train_loss", 2.0 / (s + 1)) for s in range(20)]
                                  + [(10, "test_loss", 2 * final), (20, "test_loss", final),
                                     (10, "test_accuracy", 0.8), (20, "test_accuracy", 0.92)])
                store.finish_trial(t.trial_id, wall_time=1.0)
    return directory


def test_report_writes_the_files_and_prints_the_leaderboard(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: labels are not folded
    assert main(["report", str(small_store(tmp_path))]) == 0
    out = capsys.readouterr().out
    for name in ("report.md", "report.html", "leaderboard.csv"):
        assert (tmp_path / name).is_file() and str(tmp_path / name) in out
    assert "cosine(lr=0.1)" in out and "Leaderboard: tiny" in out
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").read_text().splitlines()))
    assert [r["label"] for r in rows] == ["cosine(lr=0.1)", "constant(lr=0.1)"]
    assert rows[0]["steps_to_target_mean"] == "20.0"
    assert main(["report", str(tmp_path), "--target-accuracy", "0.75"]) == 0
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").read_text().splitlines()))
    assert rows[0]["steps_to_target_mean"] == "10.0"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_missing_dir_is_exit_2_with_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "no such directory" in one_error_line(capsys)


def test_dir_without_a_store_is_exit_2_with_one_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no results store" in one_error_line(capsys)
    assert not (tmp_path / STORE_FILENAME).exists()  # reading never creates a store


def test_a_file_that_is_not_a_store_is_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / STORE_FILENAME).write_text("not a database\n" * 100)
    assert main(["report", str(tmp_path)]) == 2
    assert "not an lrscope results store" in one_error_line(capsys)


def test_bad_target_accuracy_is_exit_2(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(small_store(tmp_path)), "--target-accuracy", "80"]) == 2
    assert "--target-accuracy" in one_error_line(capsys)
