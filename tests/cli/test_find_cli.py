"""``lrscope find`` end to end on digits: every output file, the config file, and bad input."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.cli import main
from lrscope.config.find import load_config
from lrscope.outputs.tensorboard import LOSS_TEST, LOSS_TRAIN, LR_TRAIN, read_scalars
from lrscope.rangetest.result import RangeTestResult

RULES = {"steepest", "valley", "minimum", "midpoint", "below_minimum", "divergence"}


def _find(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``lrscope find --quiet ARGV`` run in this process."""
    try:
        code = main(["find", "--quiet", *argv])
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small find run on digits shared by the output tests: (folder, stdout)."""
    out = tmp_path_factory.mktemp("find") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["find", "--task", "digits", "--steps", "30", "--start", "1e-4",
                     "--end", "10", "--val-every", "5", "--out", str(out)])
    assert code == 0
    return out, buffer.getvalue()


def test_every_output_file_is_written(digits_run: tuple[Path, str]) -> None:
    out, stdout = digits_run
    for name in ("result.json", "history.csv", "history.json", "loss_vs_lr.png",
                 "lr_vs_step.png", "config.toml", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in ("loss_vs_lr.png", "lr_vs_step.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in stdout and "Suggested learning rates" in stdout


def test_result_json_has_the_public_keys(digits_run: tuple[Path, str]) -> None:
    out, stdout = digits_run
    result = json.loads((out / "result.json").read_text())
    assert {"suggestion", "suggestions", "stopped", "steps", "engine", "world_size",
            "config", "task", "model", "rule"} <= set(result)
    assert set(result["suggestions"]) == RULES
    assert result["suggestion"] == result["suggestions"][result["rule"]]
    assert 1e-4 <= result["suggestion"] <= 10
    assert result["stopped"] in ("completed", "diverged") and 2 <= result["steps"] <= 30
    assert (result["engine"], result["world_size"], result["task"], result["model"]) == (
        "local", 1, "digits", "mlp")
    assert result["config"]["range_test"]["steps"] == 30
    assert f"{result['suggestion']:.3g}" in stdout


def test_history_csv_and_json_agree_with_the_result(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    summary = json.loads((out / "result.json").read_text())
    with (out / "history.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed_loss", "val_loss", "zero_lag_loss"]
    assert len(rows) == summary["steps"] and [int(r["step"]) for r in rows] == list(
        range(len(rows)))
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs) and math.isclose(lrs[0], 1e-4, rel_tol=1e-9)
    measured = [int(r["step"]) for r in rows if r["val_loss"] != ""]
    assert measured == [s for s in range(len(rows)) if (s + 1) % 5 == 0]
    history = json.loads((out / "history.json").read_text())
    assert [float(h["loss"]) for h in history] == [float(r["loss"]) for r in rows]
    rebuilt = RangeTestResult.from_stored(summary, history)
    assert rebuilt.suggestion == summary["suggestion"] and rebuilt.steps == summary["steps"]


def test_tensorboard_events_carry_the_seed_tags(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    steps = json.loads((out / "result.json").read_text())["steps"]
    scalars = read_scalars(out / "tb")
    assert [s for s, _ in scalars[LR_TRAIN]] == list(range(steps))
    assert len(scalars[LOSS_TRAIN]) == steps
    assert [s for s, _ in scalars[LOSS_TEST]] == [s for s in range(steps) if (s + 1) % 5 == 0]
    with (out / "history.csv").open() as stream:
        first = next(csv.DictReader(stream))
    assert math.isclose(scalars[LOSS_TRAIN][0][1], float(first["loss"]), rel_tol=1e-6)


def test_saved_config_reruns_the_same_experiment(digits_run: tuple[Path, str],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = digits_run
    saved = load_config(out / "config.toml")
    assert saved.model_dump(mode="json") == json.loads((out / "config.json").read_text())
    assert (saved.model, saved.batch_size, saved.optimizer.momentum) == ("mlp", 64, 0.9)
    again = tmp_path / "again"
    code, _, err = _find(capsys, "--config", str(out / "config.toml"), "--out", str(again))
    assert code == 0, err
    with (out / "history.csv").open() as a, (again / "history.csv").open() as b:
        assert a.read() == b.read()  # same seed, same config: the same run


def test_config_file_with_flag_overrides(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "find.toml"
    config.write_text('model = "lenet"\nseed = 2\n[optimizer]\nname = "adam"\n'
                      '[range_test]\nstart = 1e-5\nend = 1.0\nsteps = 50\nmode = "linear"\n'
                      'val_every = 0\n')
    code, _, err = _find(capsys, "--config", str(config), "--steps", "12", "--out",
                         str(tmp_path / "out"))
    assert code == 0, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (result["model"], result["seed"], result["optimizer"]) == ("lenet", 2, "adam")
    assert (result["num_steps"], result["mode"], result["end_lr"]) == (12, "linear", 1.0)
    with (tmp_path / "out" / "history.csv").open() as stream:
        assert "val_loss" not in next(csv.reader(stream))  # validation switched off


def test_default_out_under_runs_and_a_user_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "my_find_task.py").write_text(
        "import torch\n"
        "def build():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.randn(64, 3, generator=g)\n"
        "    y = (x[:, 0] > 0).long()\n"
        "    return (lambda: torch.nn.Linear(3, 2), x, y, x[:16], y[:16])\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        code, stdout, err = _find(capsys, "--task", "my_find_task:build", "--steps", "10")
    finally:
        sys.modules.pop("my_find_task", None)
    assert code == 0, err
    made = list((tmp_path / "runs").glob("find-my_find_task_build-*"))
    assert len(made) == 1 and (made[0] / "result.json").is_file()
    assert made[0].name in stdout


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--mode", "log"], "--mode: range_test.mode = \"log\": must be 'exp' or 'linear'"),
    (["--start", "1", "--end", "0.1"], "range_test.end = 0.1: must be greater than start"),
    (["--steps", "1"], "range_test.steps = 1: must be greater than or equal to 2"),
    (["--task", "digitz"], "unknown task 'digitz' (did you mean 'digits'?)"),
    (["--model", "lenet5"], "unknown model 'lenet5' for task digits (did you mean 'lenet'?)"),
    (["--task", "mnist"], "--data-dir"),
    (["--engine", "cpu"], "--engine: engine = \"cpu\": must be 'local' or 'colossalai'"),
    (["--steps", "ten"], "argument --range-steps/--steps: invalid int value: 'ten'"),
    (["--seeds", "0"], "--seeds: seeds = 0: must be greater than or equal to 1"),
    (["--seeds", "two"], "argument --seeds: invalid int value: 'two'"),
])
def test_bad_flags_are_one_line_and_exit_2(argv: list[str], fragment: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _find(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


def test_seeds_write_the_spread_and_every_seeds_history(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = _find(capsys, "--steps", "12", "--start", "1e-3", "--seed", "4",
                              "--seeds", "2", "--out", str(tmp_path))
    assert code == 0, err
    result = json.loads((tmp_path / "result.json").read_text())
    per_seed = result["per_seed_suggestions"]
    assert result["seeds"] == [4, 5] and [s["seed"] for s in per_seed] == [4, 5]
    headlines = [s["suggestion"] for s in per_seed]
    assert result["spread"] == pytest.approx(max(headlines) / min(headlines))
    assert result["config"]["seeds"] == 2 and "history_seeds.csv" in result["files"]
    with (tmp_path / "history_seeds.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0])[:3] == ["seed", "step", "lr"]
    assert [int(r["seed"]) for r in rows] == [4] * per_seed[0]["steps"] + [5] * per_seed[1][
        "steps"]
    with (tmp_path / "history.csv").open() as stream:  # the combined curve, as before
        assert len(list(csv.DictReader(stream))) == result["steps"]
    shown = " ".join(stdout.split())  # rich may wrap the table's caption
    assert "Headline over 2 seeds" in shown and f"spread {result['spread']:.2f}x" in shown


def test_bad_config_in_a_subprocess_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('task = "digits"\n\n[range_test]\nstart = 1e-5\nstpes = 10\n')
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "lrscope", "find", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr == (f"lrscope find: error: {config}:5: unknown key 'stpes' in "
                           "[range_test] (did you mean 'steps'?); allowed: start, end, steps, "
                           "epochs, mode, beta, diverge_th, accumulation_steps, val_every, "
                           "val_examples, prefer\n")
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()


def test_fashion_mnist_slice_runs_lenet5(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _find(capsys, "--task", "fashion-mnist", "--limit-train", "512",
                         "--limit-test", "128", "--steps", "8", "--out", str(tmp_path))
    assert code == 0, err
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["task"], result["model"], result["batch_size"]) == ("fashion-mnist",
                                                                      "lenet5", 128)
    assert result["train_examples"] == 512 and result["steps"] == 8


@pytest.mark.slow
@pytest.mark.colossalai
def test_colossalai_engine_is_passed_through(tmp_path: Path) -> None:
    # A subprocess: the engine launches a (one-process) process group, which must not outlive
    # the run or leak into this test process.
    proc = subprocess.run([sys.executable, "-m", "lrscope", "find", "--quiet", "--engine",
                           "colossalai", "--plugin", "torch_ddp", "--steps", "6", "--out",
                           str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (result["engine"], result["world_size"], result["steps"]) == ("colossalai", 1, 6)
    assert result["config"]["plugin"] == "torch_ddp"


def test_blown_up_losses_stay_readable_in_the_history(tmp_path: Path) -> None:
    from lrscope.cli.find_output import write_history

    rows = [{"step": 0, "lr": 0.1, "loss": 2.0, "smoothed_loss": 2.0, "val_loss": 1.9},
            {"step": 1, "lr": 1.0, "loss": math.inf, "smoothed_loss": math.inf, "val_loss": None},
            {"step": 2, "lr": 10.0, "loss": math.nan, "smoothed_loss": math.nan,
             "val_loss": None}]
    write_history(rows, tmp_path)

    def no_constants(token: str) -> None:
        raise AssertionError(f"history.json is not strict JSON: {token}")

    history = json.loads((tmp_path / "history.json").read_text(), parse_constant=no_constants)
    assert [h["loss"] for h in history] == [2.0, "inf", "nan"]
    assert math.isnan(float(history[2]["loss"])) and history[1]["val_loss"] is None
    with (tmp_path / "history.csv").open() as stream:
        table = list(csv.DictReader(stream))
    assert [r["loss"] for r in table] == ["2.0", "inf", "nan"]
    assert [r["val_loss"] for r in table] == ["1.9", "", ""]
    rebuilt = RangeTestResult.from_stored({"stopped": "diverged"}, history)
    assert rebuilt.steps == 3 and math.isinf(rebuilt.losses[1])


def test_a_ramp_too_narrow_is_warned_about_and_still_exits_0(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # 1e-3 -> 3e-2 on digits: the loss still falls at the last LR.
    code, stdout, _ = _find(capsys, "--task", "digits", "--steps", "20", "--start", "1e-3",
                            "--end", "3e-2", "--val-every", "0", "--out", str(tmp_path / "o"))
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert code == 0 and result["warnings"] and result["reason"]
    for warning in result["warnings"]:
        assert f"warning: {warning}" in " ".join(stdout.split())
    assert any("raise --end / end_lr" in w or "never fell" in w for w in result["warnings"])
