"""``--plugin gemini`` with SGD is refused by the config, in one line, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.cli import main

REASON = ("needs Adam or AdamW (lrscope converts them to ColossalAI's HybridAdam), not SGD "
          '(optimizer.name = "sgd"); use --optimizer adam|adamw or --plugin torch_ddp')


def _args(command: str) -> list[str]:
    # compare: no range test, so a refusal could only come from the config
    return [command, "--quiet"] if command == "find" else [command, "--recipe", "seed"]


@pytest.mark.parametrize("command", ["find", "compare"])
@pytest.mark.parametrize("optimizer", [["--optimizer", "sgd"], []], ids=["sgd", "default"])
def test_gemini_with_sgd_is_one_line_exit_2(command: str, optimizer: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*_args(command), "--engine", "colossalai", "--plugin", "gemini", *optimizer,
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f'lrscope {command}: error: --plugin: plugin = "gemini": {REASON}\n'
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["find", "compare"])
def test_gemini_with_sgd_in_a_config_file_names_its_line(command: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text('engine = "colossalai"\nplugin = "gemini"\n\n[optimizer]\nname = "sgd"\n')
    code = main([command, "--config", str(config), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f'lrscope {command}: error: {config}:2: plugin = "gemini": {REASON}\n'


@pytest.mark.parametrize("command", ["find", "compare"])
def test_gemini_with_sgd_from_a_real_process_has_no_traceback(command: str,
                                                              tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "lrscope", command, "--engine", "colossalai",
                           "--plugin", "gemini", "--optimizer", "sgd", "--out",
                           str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr == f'lrscope {command}: error: --plugin: plugin = "gemini": {REASON}\n'
    assert proc.stdout == "" and not (tmp_path / "out").exists()
