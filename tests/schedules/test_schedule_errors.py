"""Bad input: one clear line naming what is wrong, a ValueError from the API and exit code 2
with that same line from ``lrscope schedules``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope import cli
from lrscope import schedules as S
from lrscope.errors import InputError, InputTypeError

# (spec, the message's start: it names the family or argument and says how to fix it)
BAD_SPECS = {
    "negative lr": ("exponential(lr=-1, gamma=0.9)",
                    "exponential: lr=-1 is out of range; it must be finite and > 0"),
    "gamma zero": ("exponential(lr=1, gamma=0)",
                   "exponential: gamma=0 is out of range; it must be finite and > 0"),
    "gamma negative": ("step(lr=1, step_size=10, gamma=-0.5)",
                       "step: gamma=-0.5 is out of range; it must be finite and > 0"),
    "max_lr below base_lr": (
        "cyclic(base_lr=1, max_lr=0.1)",
        "cyclic: max_lr=0.1 is less than base_lr=1; max_lr must be >= base_lr",
    ),
    "unknown family": ("onecylce(max_lr=1.1)",
                       "unknown schedule family 'onecylce' (did you mean 'onecycle'?); known "
                       "families: compress, constant, cosine"),
    "unknown argument": ("onecycle(max_l=1.1)",
                         "onecycle: unknown argument 'max_l' (did you mean 'max_lr'?); onecycle "
                         "takes max_lr, total_steps"),
    "missing argument": ("exponential(gamma=0.9)",
                         "exponential: missing required argument lr; e.g. exponential(lr=...)"),
    "malformed": ("onecycle(max_lr=1.1", "malformed schedule spec 'onecycle(max_lr=1.1' "),
    "positional": ("step(1, 100)", "step: arguments must be named, e.g. step(lr=0.1)"),
    "not a literal": ("exponential(lr=1/3, gamma=0.9)", "exponential: lr=1 / 3 is not a literal"),
    "wrong type": ("step(lr=1, step_size=2.5)", "step: step_size=2.5 must be an integer"),
    "bad choice": ("onecycle(max_lr=1, anneal_strategy=cosine)",
                   "onecycle: anneal_strategy='cosine' is not one of cos, linear"),
    "repeated": ("constant(lr=1, lr=2)", "constant: argument 'lr' is given twice"),
    "wsd too long": ("wsd(lr=1, total_steps=100, warmup_steps=50, decay_steps=60)",
                     "wsd: warmup_steps=50 plus 60 decay steps exceed total_steps=100"),
}
MISSING_TOTAL = ("missing total steps for onecycle: give total_steps=N in the spec or the "
                 "run's length (e.g. --steps N)")


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_api_raises_a_value_error_naming_the_fault(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        S.parse(spec)
    assert isinstance(info.value, InputError)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_wrong_type_is_also_a_type_error() -> None:
    with pytest.raises(TypeError):
        S.parse("step(lr=1, step_size=2.5)")
    assert issubclass(InputTypeError, ValueError)


def test_api_missing_total_steps_for_onecycle() -> None:
    schedule = S.parse("onecycle(max_lr=1.1)")  # fine until evaluated: the run may fill it
    with pytest.raises(ValueError) as info:
        schedule(0)
    assert str(info.value) == MISSING_TOTAL


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["schedules", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_cli_exits_2_with_the_same_one_line(spec, message, tmp_path: Path, capsys) -> None:
    code, err = run_cli(capsys, spec, "--steps", "100", "--out", str(tmp_path / "f.png"))
    assert code == 2
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith(f"lrscope schedules: error: {message}")
    assert err == f"lrscope schedules: error: {api_error(spec)}\n"
    assert not (tmp_path / "f.png").exists()


def api_error(spec: str) -> InputError:
    with pytest.raises(InputError) as info:
        S.parse(spec, total_steps=100)
    return info.value


def test_cli_missing_total_steps_for_onecycle(tmp_path: Path, capsys) -> None:
    code, err = run_cli(capsys, "onecycle(max_lr=1.1)", "--out", str(tmp_path / "f.png"))
    assert (code, err) == (2, f"lrscope schedules: error: {MISSING_TOTAL}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--steps", "0"], "--steps=0 is out of range; it must be >= 1"),
     (["--out", "fig.xyz"], "--out='fig.xyz': unknown figure format '.xyz'; use one of")],
)
def test_cli_bad_options(argv: list[str], message: str, tmp_path: Path, capsys,
                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "constant(lr=1)", *argv)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"lrscope schedules: error: {message}")


def test_cli_in_a_real_process_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "lrscope", "schedules", "onecycle(max_l=1.1)", "--steps", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "lrscope schedules: error: onecycle: unknown argument 'max_l' (did you mean 'max_lr'?); "
        "onecycle takes " + ", ".join(f.name for f in dataclasses.fields(S.OneCycle)) + "\n"
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert not list(tmp_path.iterdir())
