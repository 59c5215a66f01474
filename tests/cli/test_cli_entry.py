"""The `lrscope` command itself: --version, plain help, only the chosen command loaded, and
progress bars that stay off in pipes and CI."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys

import pytest
from rich.console import Console

import lrscope
from lrscope.cli import COMMANDS, build_parser, main
from lrscope.cli.shared_flags import live_progress


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lrscope {lrscope.__version__}"


@pytest.mark.parametrize("argv", [[], *[[name] for name in COMMANDS]])
def test_help_is_plain_words(capsys, argv):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert "usage: lrscope" in out
    assert "``" not in out and ":func:" not in out and ":class:" not in out


def test_a_mistyped_command_suggests_the_right_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fnd"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'find'?" in err[0]


def test_only_the_chosen_command_is_imported():
    # A fresh interpreter: which modules did `lrscope find --help` and `lrscope --help` load?
    code = ("import sys\nfrom lrscope.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith(('lrscope.study', "
            "'lrscope.outputs.report', 'scipy', 'sklearn', 'matplotlib', 'pydantic'))]\n"
            "print('LOADED', sorted(loaded), file=sys.stderr)")
    for argv, allowed in ((["--help"], set()),
                          (["find", "--help"], {"pydantic", "pydantic_core"})):
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True, timeout=120, check=True)
        line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED"))
        loaded = {name if name.startswith("lrscope") else name.split(".")[0]
                  for name in ast.literal_eval(line.removeprefix("LOADED "))}
        assert loaded <= allowed, (argv, loaded)


def test_progress_bars_only_on_a_real_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert live_progress(Console(force_terminal=True))
    assert not live_progress(Console(force_terminal=False))
    monkeypatch.setenv("CI", "true")
    assert not live_progress(Console(force_terminal=True))


def _lrscope(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real console entry point, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "lrscope", *argv], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(("argv", "meant"), [
    (["compare", "--task", "digits", "--lr", "0.1"], "--lr-scales"),
    (["compare", "--task", "digits", "--seed", "3"], "--seeds"),
    (["find", "--task", "digits", "--see", "3"], "--seed"),
])
def test_issue19_item1_abbreviated_flags_are_refused(tmp_path, argv, meant):
    # Before: `--lr 0.1` ran as `--lr-scales 0.1` and `--seed 3` as `--seeds 3`, exit 0.
    proc = _lrscope(*argv, "--out", str(tmp_path / "x"))
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1, err
    assert "unrecognized arguments" in err[0] and f"'{meant}'" in err[0]
    assert f"(see lrscope {argv[0]} --help)" in err[0]
    assert not (tmp_path / "x").exists()


def test_issue19_item1_no_parser_allows_abbreviations():
    parser = build_parser("all")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert not parser.allow_abbrev
    assert all(not sub.allow_abbrev for sub in subparsers.choices.values())
