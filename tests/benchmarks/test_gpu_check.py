"""benchmarks/gpu_check.sh on a machine without CUDA: one clear line and exit 1, nothing set up.

Skipped where a CUDA device is present: there the script really runs the checks (minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.sh"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_says_so_and_exits_1(tmp_path):
    log = tmp_path / "gpu_check.log"
    env = {**os.environ, "GPU_CHECK_PYTHON": sys.executable, "GPU_CHECK_LOG": str(log)}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("no CUDA device: nothing to check"), done.stderr
    assert not log.exists()  # it stopped before any step or setup


def test_a_cpu_device_outside_a_dry_run_is_refused():
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "only for --dry-run" in done.stderr
