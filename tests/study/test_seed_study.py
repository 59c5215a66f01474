"""The seed study's config, end to end on real Fashion-MNIST, in a CI-sized slice.

Debian's dataset-fashion-mnist must be installed (scripts/setup-venv.sh test does it as root):
this test fails rather than skips without it, so CI really runs it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from lrscope.cli import main
from lrscope.config.study import load_study_config
from lrscope.study.recipes import SEED_SPECS
from lrscope.study.store.sqlite import Store

EXAMPLE = Path(__file__).parents[2] / "examples" / "seed_study.toml"


def test_seed_config_is_the_seed_study():
    config = tomllib.loads(EXAMPLE.read_text())
    assert config["task"] == "fashion-mnist" and config["model"] == "lenet5"
    assert config["batch_size"] == 128 and config["seeds"] == 3
    assert tuple(config["schedules"]) == SEED_SPECS
    assert config["range_test"]["start"] == 1e-5 and config["range_test"]["end"] == 10.0


def test_issue19_item16_seed_config_trains_the_seeds_2345_steps():
    # 5 epochs x 469 batches; with epochs = 5 the 10% validation split (422 batches an epoch
    # at batch 128) gave 2110 steps
    config = load_study_config(EXAMPLE)
    assert config.total_steps(steps_per_epoch=422) == 2345 and config.eval_every == 469
    assert config.resolved_val_fraction() == 0.1


def test_seed_study_runs_on_fashion_mnist(tmp_path, capsys):
    out = tmp_path / "seed"
    code = main(["compare", "--config", str(EXAMPLE), "--limit-train", "1280",
                 "--limit-test", "256", "--steps", "30", "--eval-every", "15", "--seeds", "2",
                 "--range-steps", "25", "--parallel", "none", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    with Store.in_dir(out, create=False) as store:
        run = store.find_run("seed-study")
        assert run is not None
        assert run.config["task"] == "fashion-mnist" and run.config["batch_size"] == 128
        trials = store.trials(run.id)
        assert sorted({t.label for t in trials}) == sorted(SEED_SPECS)
        assert len(trials) == 2 * len(SEED_SPECS)
        assert all(t.status in ("finished", "diverged") for t in trials)
        rt = store.range_test(run.id)
        assert rt is not None and rt.lrs[0] == pytest.approx(1e-5)
        # the range test ramps exponentially toward 10 (it may stop early on divergence)
        assert np.all(np.diff(np.log(rt.lrs)) > 0)
        for t in trials:
            _, losses = store.metric_series(t.id, "train_loss")
            assert 2.0 < losses[0] < 2.6  # 10 classes: cross-entropy starts near ln 10
    assert (out / "report.html").stat().st_size > 10_000
