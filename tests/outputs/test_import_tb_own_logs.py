"""import-tb on event files this test writes itself, so it runs where the seed's logs are absent."""

from __future__ import annotations

import math

import numpy as np

from lrscope.outputs.import_tb import import_logdirs
from lrscope.outputs.tensorboard import TensorBoardWriter
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
        assert summary.labels == ["Exploding", "StepLR"]
        trials = {t.label: t for t in store.trials(summary.run_id)}
        assert trials["StepLR"].status == "finished"
        assert trials["Exploding"].status == "diverged"
        assert trials["Exploding"].diverged_at_step == 2
        steps, values = store.metric_series(trials["StepLR"].id, "train_loss")
        assert steps.tolist() == [0, 1, 2, 3]
        np.testing.assert_allclose(values, [2.3, 1.9, 1.5, 1.2], rtol=1e-6)  # float32 events
        _, test = store.metric_series(trials["StepLR"].id, "test_loss")
        np.testing.assert_allclose(test, [1.1], rtol=1e-6)
        (again,) = import_logdirs(store, [logs])
        assert len(store.trials(summary.run_id)) == 2 and all(a.skipped for a in again.attempts)
