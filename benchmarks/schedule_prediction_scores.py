"""The numbers of benchmarks/schedule_prediction.py, from the cached studies of one problem.

A strategy's *ranking* is its selection statistic per candidate: the median final validation
loss over the seeds it trained (the leaderboard's rank statistic; a diverged seed is inf), and
for a candidate ``predict`` did not train, the law's predicted value (what its leaderboard
merges below the first, measured row) or, once the study stopped trusting its law, its place in
the study's list of the untrained, after the measured ones (:func:`predict_ranking`). The
*truth* of a candidate is its mean final test loss over the truth seeds; the global oracle is
the lowest truth value of anything trained there (every candidate and the oracle grid's pick).
Regret = truth(pick) / reference - 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from schedule_prediction_runs import arm_name, per_candidate
from scipy.stats import kendalltau

from lrscope.study.predict.probes import BY_LAWS_ORDER, BY_PROBES

BIG = 1e30  # stands for inf in a ranking (kendalltau wants finite numbers)


@dataclass(frozen=True)
class Score:
    """One strategy on one problem (None where it does not apply)."""

    problem: str
    # full, one seed (the full study's first seed alone: every candidate once, what predict
    # falls back to), predict, each also +scales; oracle grid
    strategy: str
    candidates: int
    pick: str | None
    tau: float | None
    regret_best: float | None  # vs the truly best candidate of its own suite
    regret_oracle: float | None
    runs: float  # trial steps incl. the range test / steps of one run
    fraction: float | None  # of the full study's steps (same suite)
    law_error: float | None = None  # median |predicted - truth| / truth, untrained candidates
    law_coverage: float | None = None  # share of those whose truth lies in the interval
    self_check: str = ""  # "passed 3.1%" / "FAILED 12%" / ""
    stopped: str = ""
    # False when the truth cannot tell the candidates apart (see :func:`informative`)
    informative: bool = True
    # the seed the study ran first, its range test's (None: the study seeds' first: the main
    # rows; see schedule_prediction_runs.arm_name)
    first_seed: int | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _tau(ranking: dict[str, float], truth: dict[str, float]) -> float | None:
    labels = [label for label in ranking if label in truth]
    if len(labels) < 3:
        return None
    def finite(v: float) -> float:
        return v if math.isfinite(v) else BIG
    tau = kendalltau([finite(ranking[k]) for k in labels], [finite(truth[k]) for k in labels])
    return None if math.isnan(tau.statistic) else float(tau.statistic)


def _regret(value: float | None, reference: float) -> float | None:
    if value is None:
        return None
    return math.inf if not math.isfinite(value) else value / reference - 1


def predict_ranking(study: dict[str, Any]) -> dict[str, float]:
    """The ranking the study states: with a trusted law, measured candidates at their median
    validation loss and the rest at their prediction (the leaderboard's rows); once the law
    was not trusted (no predicted row is shown), the measured ones by their value, then the
    untrained in the order the study lists them (``record.untrained``: the failed law's
    order, or the probes'), as ranks. A record without that list (older than it): the law's
    values stand in for the untrained."""
    measured = per_candidate(study, "val")
    record = study.get("record") or {}
    if record.get("untrained_by") in (BY_LAWS_ORDER, BY_PROBES):
        stated = [*sorted(measured, key=lambda label: measured[label]),
                  *(label for label in record["untrained"] if label not in measured)]
        return {label: float(rank) for rank, label in enumerate(stated)}
    ranking = {label: p["value"] for label, p in record.get("candidates", {}).items()
               if label not in measured}
    return {**ranking, **measured}


def untrained_order(study: dict[str, Any],
                    truth: dict[str, float]) -> tuple[str, float | None, float | None]:
    """How a predict study put its untrained candidates in order (the record's
    ``untrained_by``), and the Kendall tau against the truth of that set ordered by the law's
    values and by the probes' (None where either is missing): which of the two orders the
    study should follow once the law's values fail their self-check."""
    record = study.get("record") or {}
    untrained = [label for label in record.get("untrained", ()) if label in truth]
    law = {label: p["value"] for label, p in record.get("candidates", {}).items()
           if label in untrained}
    probes = {label: value for label, value in (record.get("probes") or {}).items()
              if label in untrained and value is not None}
    return (record.get("untrained_by", ""), _tau(law, truth) if len(law) == len(untrained)
            else None, _tau(probes, truth) if len(probes) == len(untrained) else None)


def law_numbers(study: dict[str, Any],
                truth_val: dict[str, float]) -> tuple[float | None, float | None, str, str]:
    """The law's error on held-out candidates: every candidate whose curve the law was not
    fitted on (neither a fit run nor the self-check run; whether it was trained afterwards does
    not change what the law said), against its truth: the mean final validation loss over the
    truth seeds (the metric the law predicts); and the share inside the claimed interval."""
    record = study.get("record") or {}
    check = record.get("self_check")
    seen = {key.rsplit("/", 1)[0] for key in record.get("fit_trials", ())}
    if check:
        seen.add(check["trial"].rsplit("/", 1)[0])
    errors, inside = [], []
    for label, p in record.get("candidates", {}).items():
        true = truth_val.get(label)
        if label in seen or true is None or not math.isfinite(true):
            continue
        errors.append(abs(p["value"] - true) / abs(true))
        inside.append(p["low"] <= true <= p["high"])
    said = ""
    if check:
        relative = abs(check["error"]) / abs(check["measured"]) if check["measured"] else math.inf
        said = f"{'passed' if check['passed'] else 'FAILED'} {100 * relative:.1f}%"
    return (float(np.median(errors)) if errors else None,
            float(np.mean(inside)) if inside else None, said, record.get("stopped", ""))


SPREAD = 0.005  # truth values within 0.5% of each other: nothing to choose between


def informative(truth: dict[str, float]) -> bool:
    """Whether the candidates' truths differ by more than :data:`SPREAD` (a suite whose peak
    LR is so low that nothing learns ends every candidate at the same chance-level loss:
    regret 0% and an undefined tau say nothing about a strategy there).

    >>> informative({"a": 2.3049, "b": 2.3050}), informative({"a": 0.1, "b": 0.2})
    (False, True)
    """
    finite = [v for v in truth.values() if math.isfinite(v)]
    return len(finite) > 1 and max(finite) / min(finite) - 1 > SPREAD


def full_steps(study: dict[str, Any], candidates: int, seeds: int) -> int:
    return candidates * seeds * study["steps"] + study["range_steps"]


def _score(base: Score, study: dict[str, Any], truth_test: dict[str, float],
           truth_val: dict[str, float], oracle_value: float, full_cost: int) -> Score:
    """``base`` (a full or predict study's score) filled in from its cached ``study``."""
    steps = study["steps"]
    if study.get("crashed"):  # compare raised: no pick, no ranking, what it trained
        cost = len(study["trials"]) * steps + study["range_steps"]
        return replace(base, runs=cost / steps, fraction=cost / full_cost,
                       stopped="crashed: " + study["crashed"][:60])
    own = sorted(study.get("suite") or study["origins"])  # its candidates (its range test's)
    truth = {k: truth_test[k] for k in own if k in truth_test}
    whole = len(truth) == len(own)  # tau and the suite's best need every candidate's truth
    pick = study["pick"]
    value = truth_test.get(pick) if pick else None
    if base.strategy.startswith("one seed"):  # every candidate once, and the range test
        ranking = per_candidate(study, "val")
        cost, law = len(own) * steps + study["range_steps"], (None, None, "", "")
    elif base.strategy.startswith("full"):
        ranking = per_candidate(study, "val")
        cost, law = full_cost, (None, None, "", "")
    else:
        ranking = predict_ranking(study)
        cost = study.get("cost_steps")
        if cost is None:  # no record of the cost: what its store shows it trained
            cost = len(study["trials"]) * steps + study["range_steps"]
        law = law_numbers(study, truth_val)
    return replace(base, pick=pick,
                   tau=_tau({k: v for k, v in ranking.items() if k in truth}, truth)
                   if whole else None,
                   regret_best=_regret(value, min(truth.values())) if whole else None,
                   regret_oracle=_regret(value, oracle_value), runs=cost / steps,
                   fraction=cost / full_cost, law_error=law[0], law_coverage=law[1],
                   self_check=law[2], stopped=law[3])


def score_problem(problem: str, arms: dict[str, Any],
                  study_seeds: tuple[int, ...],
                  firsts: tuple[int, ...] | None = None) -> list[Score]:
    """Every strategy's score on one problem, once per arm it ran: ``<arm>-s<seed>`` had
    ``seed`` first (its own range test, so its own suite; ``first_seed`` says so)."""
    truth_test = per_candidate(arms["truth"], "test", "mean")
    truth_val = per_candidate(arms["truth"], "val", "mean")
    oracle_value = min(truth_test.values())
    steps = arms["full"]["steps"]
    telling = informative({k: truth_test[k] for k in arms["full-scales"]["origins"]
                           if k in truth_test})
    scores = []
    for suffix, tag in (("", ""), ("+scales", "-scales")):
        candidates = len(arms["full" + tag]["origins"])
        full_cost = full_steps(arms["full" + tag], candidates, len(study_seeds))
        for strategy in ("full", "one seed", "predict"):
            for first in firsts or study_seeds:
                study = arms.get(arm_name("predict" if strategy == "predict" else "full",
                                          bool(tag), first, study_seeds))
                if study is None:
                    continue
                if strategy == "one seed":  # the full study's first seed alone
                    study = {**study, "trials": [t for t in study["trials"]
                                                 if t["seed"] == first]}
                    values = per_candidate(study, "val")
                    study["pick"] = min(values, key=lambda label: (values[label], label))
                base = Score(problem, strategy + suffix, candidates, None, None, None, None,
                             math.nan, None, informative=telling,
                             first_seed=None if first == study_seeds[0] else first)
                scores.append(_score(base, study, truth_test, truth_val, oracle_value,
                                     full_cost))
    oracle = arms["oracle"]
    pick = oracle["pick"]
    scores.append(Score(problem, "oracle grid", len(set(oracle["origins"])), pick, None, None,
                        _regret(truth_test.get(pick) if pick else None, oracle_value),
                        (len(oracle["trials"]) * steps + oracle["range_steps"]) / steps, None,
                        informative=telling))
    return scores
