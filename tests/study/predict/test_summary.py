"""Issue 18: what the terminal prints under a predict study's leaderboard (summary_lines)."""

from __future__ import annotations

from lrscope.study.predict.probes import BY_LAW, BY_LAWS_ORDER
from lrscope.study.predict.strategy import UNCHECKED, larger_budget_line, summary_lines
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


def test_issue18_the_laws_own_schedule_is_said_for_what_it_is() -> None:
    """The schedule the law optimised is a label no one wrote: the summary (and the report,
    which prints the same lines) says what it is, and whether it was trained."""
    from lrscope.study.store.predictions import Prediction

    spec = "wsd(lr=0.1, warmup_steps=0, decay_steps=6, cooldown='cosine', min_lr=0.02)"
    cost = Cost(520, 2500, 100, 100, 1 / 6)

    def record(trained: bool) -> PredictionRecord:
        return PredictionRecord("annealing", ("a/seed0",),
                                {spec: Prediction(0.1, 0.08, 0.12, trained=trained)}, cost,
                                None, "budget", optimised=spec, law_params={"L0": 0.1},
                                untrained=() if trained else (spec,), untrained_by=BY_LAW)

    said = [line for line in summary_lines(record(False)) if line.startswith(f"predict: {spec}")]
    assert said == [f"predict: {spec} is the law's own schedule (the warmup-stable-decay it "
                    "predicts best at the best candidate's peak and warmup), not trained: the "
                    "budget ended"]
    assert any(line.endswith("trained like any candidate") for line in summary_lines(record(True)))


def test_issue18_the_larger_budget_covers_the_untrained_within_reach_else_all_of_them() -> None:
    """The room to train, from the record: the untrained within reach of the best (the tie's),
    else every untrained one, one run each beside the steps spent, rounded up to a hundredth
    (never below what they need) and at most the full study."""
    cost = Cost(520, 2500, 100, 100, 1 / 6)
    within = PredictionRecord("annealing", ("a/seed0",), {}, cost, None, "budget",
                              tie=("b", "x"), untrained=("b", "c", "d"), untrained_by=BY_LAW)
    assert larger_budget_line(within) == (
        "predict: to train b (untrained, within reach of the best), rerun on the same folder "
        "with a budget of 0.25 (--budget 0.25, budget=0.25): what is trained is kept")
    rest = PredictionRecord("annealing", ("a/seed0",), {}, cost, None, "fallback",
                            untrained=("c", "d"), untrained_by=BY_LAWS_ORDER)
    assert "to train every candidate not trained," in larger_budget_line(rest)
    assert "budget of 0.29 " in larger_budget_line(rest)  # (520 + 200) / 2500 = 0.288
    exact = PredictionRecord("annealing", (), {}, Cost(500, 2500, 100, 100, 1 / 6),
                             untrained=("c",))
    assert "to train c, " in larger_budget_line(exact)
    assert "budget of 0.24 " in larger_budget_line(exact)  # 600 / 2500 exactly: not 0.25
    most = PredictionRecord("annealing", (), {}, Cost(2350, 2500, 100, 100, 0.99),
                            untrained=("c", "d"))  # 2550 > 2500: even a budget of 1 holds one
    assert larger_budget_line(most) == (
        "predict: to train every candidate not trained, a rerun on the same folder with the "
        "largest budget, 1 (--budget 1, budget=1), has room for 1 of them, and --strategy "
        "full (strategy=\"full\") trains every trial still missing: what is trained is kept")
    assert summary_lines(within)[-1] == larger_budget_line(within)
    assert larger_budget_line(within) not in summary_lines(within, untrained=False)
