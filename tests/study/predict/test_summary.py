"""Issue 18: what the terminal prints under a predict study's leaderboard (summary_lines)."""

from __future__ import annotations

from lrscope.study.predict.probes import BY_LAW, BY_LAWS_ORDER
from lrscope.study.predict.strategy import UNCHECKED, summary_lines
from lrscope.study.store.predictions import Cost, PredictionRecord, SelfCheck


def test_issue18_a_law_never_tested_says_its_predictions_are_unchecked() -> None:
    """The budget can end before any run the law was not fitted on (a small suite, a small
    budget): its order of the untrained stands, said to be untested; a law that was checked,
    or a study with nothing left untrained, does not say it."""
    cost = Cost(520, 2500, 100, 100, 1 / 6)
    never = PredictionRecord("annealing", ("a/seed0",), {}, cost, None, "budget",
                             law_params={"L0": 0.1}, untrained=("b", "c"), untrained_by=BY_LAW)
    lines = summary_lines(never)
    assert lines[1] == UNCHECKED and lines[2].startswith("predict: not trained, next first by")
    checked = SelfCheck("b/seed0", 0.5, 0.9, 0.4, 0.05, False, "its error is larger")
    failed = PredictionRecord("annealing", ("a/seed0",), {}, cost, checked, "fallback",
                              law_params={"L0": 0.1}, untrained=("c",),
                              untrained_by=BY_LAWS_ORDER)
    everything = PredictionRecord("annealing", ("a/seed0",), {}, cost, None, "all trained",
                                  law_params={"L0": 0.1}, untrained_by=BY_LAW)
    assert UNCHECKED not in summary_lines(failed) + summary_lines(everything)
