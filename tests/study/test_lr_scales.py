"""A fair peak LR per schedule (issue 10 item 3): every schedule at several multiples of its
peak LR, each ranked at its best scale on validation, and the report's sensitivity figure."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from lrscope.data.tasks import get_task
from lrscope.errors import InputError
from lrscope.outputs.report.build import write_report
from lrscope.study.plan import StudyPlan
from lrscope.study.recipes import explicit, with_lr_scales
from lrscope.study.run import run_study
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.stats.scales import best_scale_line, best_scales
from lrscope.study.store.sqlite import Store

SPECS = ("constant(lr=0.05)", "exponential(lr=0.1, gamma=0.99)")
SCALES = (0.3, 1.0, 3.0)


def test_scaled_suite_labels_configs_and_rules():
    suite = with_lr_scales(explicit(list(SPECS), 20), SCALES, 20)
    assert suite.labels() == ["constant(lr=0.015)", "constant(lr=0.05)", "constant(lr=0.15)",
                              "exponential(lr=0.03, gamma=0.99)", SPECS[1],
                              "exponential(lr=0.3, gamma=0.99)"]
    assert suite.trial_config("exponential(lr=0.3, gamma=0.99)") == \
        {"lr_scale": 3.0, "base": SPECS[1]}
    assert all(s.lr == pytest.approx(0.3) for label, s in suite.schedules  # type: ignore
               if label == "exponential(lr=0.3, gamma=0.99)")
    assert "x0.3, x1, x3" in suite.rules
    assert with_lr_scales(suite, None, 20) is suite and explicit(list(SPECS), 20).origins == {}
    with pytest.raises(InputError, match="same schedule"):
        with_lr_scales(explicit(["constant(lr=0.1)", "constant(lr=0.3)"], 20), [1, 3], 20)


@pytest.fixture(scope="module")
def scaled_study(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("scales")
    task = get_task("digits", limit_train=256, limit_test=64).with_validation(0.25)
    plan = StudyPlan(name="scales", task=task, config={"lr_scales": list(SCALES)}, seeds=(0, 1),
                     steps=12, eval_every=6, range_test=None, schedules=SPECS,
                     lr_scales=SCALES, parallel="none")
    run_study(plan, out)
    return out


def test_every_base_scale_and_seed_is_stored_with_its_config(scaled_study):
    with Store.in_dir(scaled_study, create=False) as store:
        trials = store.trials()
    seen = {(t.config["base"], t.config["lr_scale"], t.seed) for t in trials}
    assert seen == {(b, s, k) for b in SPECS for s in SCALES for k in (0, 1)}
    assert all(t.status == "finished" and t.key == f"{t.label}/seed{t.seed}" for t in trials)
    assert {t.config["steps"] for t in trials} == {12}


def test_best_scale_is_the_lowest_mean_validation_loss_in_the_store(scaled_study):
    with Store.in_dir(scaled_study, create=False) as store:
        run = store.runs()[0]
        trials = store.trials(run.id)
        rows = leaderboard(store, run.id)
        finals: dict[tuple[str, float], list[float]] = defaultdict(list)
        for t in trials:
            finals[t.config["base"], t.config["lr_scale"]].append(
                float(store.metric_series(t.id, "val_loss")[1][-1]))
    best = best_scales(rows, trials)
    assert [b.base for b in best] and {b.base for b in best} == set(SPECS)
    # issue 19 item 4: one row per schedule, at its best scale (the others: sensitivity)
    assert len(rows) == len(SPECS)
    assert {(r.label, r.lr_scale) for r in rows} == {(b.label, b.scale) for b in best}
    for b in best:
        means = {scale: np.mean(v) for (base, scale), v in finals.items() if base == b.base}
        assert b.scale == min(means, key=means.__getitem__)
        assert b.rank_loss == pytest.approx(means[b.scale])  # 2 seeds: median == mean
        assert b.ranked_on == "val_loss"
    assert best[0].rank_loss <= best[1].rank_loss  # best base first


def test_report_has_the_sensitivity_figure_and_the_winners(scaled_study):
    files = write_report(scaled_study)
    text = files.markdown.read_text(encoding="utf-8")
    assert "LR sensitivity" in text
    figure = [f for f in files.figures if "lr-sensitivity" in f.name]
    assert len(figure) == 1 and figure[0].stat().st_size > 0
    with Store.in_dir(scaled_study, create=False) as store:
        run = store.runs()[0]
        best = best_scales(leaderboard(store, run.id), store.trials(run.id))
    for b in best:
        assert best_scale_line(b) in text
    html = files.html.read_text(encoding="utf-8")
    assert "LR sensitivity" in html and html.count("<img") == len(files.figures)
