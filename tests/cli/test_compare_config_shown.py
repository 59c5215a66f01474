"""issue 19 item 10: the configuration the report and config.toml show is what the study used,
never null for a setting that was left to its default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


@pytest.mark.slow
def test_issue19_item10_report_and_config_toml_show_resolved_values(tmp_path: Path) -> None:
    out = tmp_path / "study"
    command = [sys.executable, "-m", "lrscope", "compare", "--task", "digits",
               "--schedules", "constant(lr=0.1)", "--seeds", "1", "--epochs", "1",
               "--limit-train", "256", "--range-steps", "20", "--parallel", "none",
               "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    shown = json.loads(re.search(r"Configuration:\s*```\s*(\{.*?\})\s*```", report,
                                 re.DOTALL).group(1))
    # 256 examples less the 10% validation split = 231 at batch 64: 4 steps in the one epoch
    assert shown["model"] == "mlp" and shown["batch_size"] == 64
    assert shown["epochs"] == 1 and shown["steps"] == 4 and shown["eval_every"] == 4
    assert shown["val_fraction"] == 0.1
    assert shown["optimizer"]["momentum"] == 0.9 and shown["optimizer"]["weight_decay"] == 0.0
    assert shown["range_test"]["steps"] == 20 and shown["range_test"]["val_every"] == 2
    assert 0 < shown["target_accuracy"] <= 1  # the one the leaderboard used
    assert "resolved" not in shown
    # config.toml: still the settings as given (rerunning it resumes the same study), with
    # the values used for its defaults listed
    text = (out / "config.toml").read_text()
    for line in ('#   model = "mlp"', "#   batch_size = 64", "#   steps = 4",
                 "#   eval_every = 4", "#   val_fraction = 0.1", "#   momentum = 0.9"):
        assert line in text, text
    assert tomllib.loads(text).get("batch_size") is None
    again = subprocess.run([sys.executable, "-m", "lrscope", "compare", "--config",
                            str(out / "config.toml"), "--parallel", "none"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
