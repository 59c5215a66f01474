"""``lrscope import-tb LOGDIR... --out DIR`` through the CLI, on the seed study's logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrscope.cli import main
from lrscope.study.store.sqlite import Store
from seed_logs import SEED_LOGS


@pytest.mark.skipif(not SEED_LOGS.is_dir(), reason="the seed study's logs are absent")
def test_import_then_import_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    attempts = len(list(SEED_LOGS.glob("*/events.out.tfevents.*")))
    assert main(["import-tb", str(SEED_LOGS), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{attempts} attempts ({attempts} new, 2 diverged); range test: " in out
    assert f"lrscope report {tmp_path}" in out
    assert main(["import-tb", str(SEED_LOGS), "--out", str(tmp_path)]) == 0
    assert f"{attempts} attempts (0 new, 2 diverged)" in capsys.readouterr().out
    with Store.in_dir(tmp_path, create=False) as store:
        # The range test is kept as the run's range test, not as a trial (issue 19 item 12).
        assert len(store.runs()) == 1 and len(store.trials()) == attempts - 1
        assert store.range_test(store.runs()[0].id) is not None


def test_missing_logdir_is_exit_2_and_makes_nothing(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["import-tb", str(tmp_path / "absent"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err and "Traceback" not in err
    assert not out.exists()


def test_logdir_without_event_files_is_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").mkdir()
    assert main(["import-tb", str(tmp_path / "logs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no TensorBoard event files" in err


def test_out_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["import-tb", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err
