"""A predict study's record (DIR/predictions.json) for the trained study of trained_study.py:
what :func:`lrscope.study.predict.strategy.run_predict` would write, built by hand so that the
report is tested apart from the law."""

from __future__ import annotations

from pathlib import Path

from trained_study import SCHEDULES, STEPS

from lrscope.study.predict.probes import BY_LAW
from lrscope.study.store.predictions import Cost, Prediction, PredictionRecord, SelfCheck
from lrscope.study.store.sqlite import Store

UNTRAINED = "cosine(lr=0.5)"
FIT = ("step(lr=0.5, step_size=40, gamma=0.5)/seed0", "onecycle(max_lr=1.0)/seed0")


def record_of(directory: Path, passed: bool = True) -> PredictionRecord:
    """A record as a predict study writes it, its predictions near the measured test losses."""
    candidates = {}
    with Store.in_dir(directory, create=False) as store:
        run = store.find_run("digits-study")
        assert run is not None
        for trial in store.trials(run.id):
            if trial.seed == 0 and trial.label in SCHEDULES and trial.status == "finished":
                steps, values = store.metric_series(trial.id, "test_loss")
                curve = values * 1.05  # the law, a little off
                candidates[trial.label] = Prediction(
                    float(curve[-1]), float(curve[-1] * 0.9), float(curve[-1] * 1.1), True,
                    tuple(int(s) for s in steps), tuple(float(v) for v in curve))
    candidates[UNTRAINED] = Prediction(0.01, 0.005, 0.02)  # predicted below the best
    return PredictionRecord(
        "multi_power", FIT, candidates, Cost(4 * STEPS + 80, 15 * STEPS + 80, 80, STEPS, 1 / 3),
        SelfCheck("exponential(lr=0.5, gamma=0.995)/seed0", 0.3, 0.31, 0.01, 0.05, passed,
                  "" if passed else "error larger than the gap"),
        "budget" if passed else "fallback", law_params={"L0": 0.1, "alpha": 0.5},
        # a failed law without probes trains every candidate: nothing is left untrained
        untrained=(UNTRAINED,) if passed else (), untrained_by=BY_LAW if passed else "")
