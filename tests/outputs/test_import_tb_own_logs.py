"""import-tb on event files this test writes itself, so it runs where the seed's logs are absent."""

from __future__ import annotations

import math

import numpy as np

from lrscope.outputs.import_tb import import_logdirs
from lrscope.outputs.report.build import write_report
from lrscope.outputs.tensorboard import TensorBoardWriter
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.store.sqlite import Store


def write_run(folder, losses, test_losses):
    with TensorBoardWriter(folder) as tb:
        for step, loss in enumerate(losses):
            tb.log_step(step, lr=0.1 * 0.99**step, loss=loss)
        for step, loss in test_losses:
            tb.log_eval(step, loss=loss, accuracy=0.5)


def test_own_logs_import_once_with_divergence(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs / "StepLR", [2.3, 1.9, 1.5, 1.2], [(3, 1.1)])
    write_run(logs / "Exploding", [2.3, 5.0, math.nan, math.nan], [])
    with Store.in_dir(tmp_path / "out") as store:
        (summary,) = import_logdirs(store, [logs])
        # "Exploding" names no schedule: its LR curve (x0.99 a step) does.
        assert summary.labels == ["ExponentialLR (Exploding)", "StepLR"]
        trials = {t.label: t for t in store.trials(summary.run_id)}
        assert trials["StepLR"].status == "finished"
        exploding = trials["ExponentialLR (Exploding)"]
        assert (exploding.status, exploding.diverged_at_step, exploding.family) == (
            "diverged", 2, "exponential")
        steps, values = store.metric_series(trials["StepLR"].id, "train_loss")
        assert steps.tolist() == [0, 1, 2, 3]
        np.testing.assert_allclose(values, [2.3, 1.9, 1.5, 1.2], rtol=1e-6)  # float32 events
        _, test = store.metric_series(trials["StepLR"].id, "test_loss")
        np.testing.assert_allclose(test, [1.1], rtol=1e-6)
        (again,) = import_logdirs(store, [logs])
        assert len(store.trials(summary.run_id)) == 2 and all(a.skipped for a in again.attempts)


def write_curve(folder, lrs):
    with TensorBoardWriter(folder) as tb:
        for step, lr in enumerate(lrs):
            tb.log_step(step, lr=float(lr), loss=2.3 / (1 + step / 50))
        tb.log_eval(len(lrs) - 1, loss=0.5, accuracy=0.8)


def test_issue19_item12_range_test_kept_apart_and_runs_named_by_their_lr(tmp_path):
    """A ramp is the run's range test, not a leaderboard row; a folder whose name says nothing
    (TensorBoard's ``ParallelMode.GLOBAL_rank_0``) is named by its LR curve."""
    t = np.arange(300)
    logs = tmp_path / "logs"
    write_curve(logs / "ParallelMode.GLOBAL_rank_0", 0.1 + 0.9 * np.abs((t + 50) % 100 - 50) / 50)
    write_curve(logs / "version_3", 0.5 * 0.5 ** (t // 100))
    write_curve(logs / "lr_find", np.geomspace(1e-6, 1.0, 300))
    with Store.in_dir(tmp_path / "out") as store:
        (summary,) = import_logdirs(store, [logs])
        assert summary.range_test_label == "lr_find"
        rows = [r.label for r in leaderboard(store, summary.run_id)]
        assert sorted(rows) == ["CyclicLR (ParallelMode.GLOBAL_rank_0)", "StepLR (version_3)"]
        assert store.range_test(summary.run_id) is not None
        (again,) = import_logdirs(store, [logs])  # the range test is not imported as a trial
        assert all(a.skipped for a in again.attempts) and len(store.trials()) == 2
    report = write_report(tmp_path / "out").markdown.read_text()
    leaderboard_part = report[report.index("Leaderboard"):]
    assert "Range test" in report[:report.index("Leaderboard")]
    assert "lr_find" not in leaderboard_part and "CyclicLR (ParallelMode" in leaderboard_part
