"""The suggestion harness (benchmarks/suggestion_quality.py) in its CI size, so it cannot rot: it
runs as a subprocess and must write a table and a CSV with a finite regret for lrscope and for
every peer. Lightning's rule as re-implemented there is checked against Lightning's own code."""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
PEERS = ("torch-lr-finder", "fastai-valley", "lightning", "prodigy", "schedulefree")


@pytest.mark.slow
def test_tiny_run_writes_a_table_and_finite_regrets(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(BENCH / "suggestion_quality.py"), "--tiny",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "table.md").read_text()
    assert "--tiny" in table and "## Must-show targets" in table and "digits-mlp" in table
    with (tmp_path / "regret.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "trained"]
    for finder in ("lrscope", *PEERS):
        regrets = [float(r["regret"]) for r in rows if r["finder"] == finder]
        assert regrets, finder
        # finite: no divergence, no missing answer (a regret can be < 0: the grid is coarse)
        assert all(math.isfinite(v) for v in regrets), (finder, regrets)
    # The cache: a second run trains nothing new.
    again = subprocess.run([sys.executable, str(BENCH / "suggestion_quality.py"), "--tiny",
                            "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                           timeout=240, check=False)
    assert again.returncode == 0 and "trainings:" not in again.stderr, again.stderr[-3000:]


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="needs lightning")
def test_lightning_rule_matches_lightnings_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    from lightning.pytorch.tuner.lr_finder import _LRFinder
    from suggestion_finders import lightning_rule

    rng = np.random.default_rng(0)
    lrs = np.logspace(-7, 1, 100).tolist()
    losses = (2 - np.tanh(np.log10(lrs) + 2) + 0.05 * rng.standard_normal(100)).tolist()
    losses[-3:] = [math.inf, math.nan, math.nan]
    finder = _LRFinder("exponential", 1e-7, 10.0, 100)
    finder.results = {"lr": lrs, "loss": losses}
    assert lightning_rule(lrs, losses) == finder.suggestion()
