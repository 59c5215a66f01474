"""Probes: every candidate trained once, its schedule compressed into a fraction of the run.

A loss-curve law fitted on two full-length runs must extrapolate to every other shape; the
probes show it every shape, cheaply: each candidate's schedule played whole, warmup to decay,
in ``ceil(T / k)`` steps (:class:`lrscope.schedules.Compress`), at the first seed, evaluated 8
times. The law is then fitted on the probes' curves and the full-length runs together (the
full runs tell it what the horizon buys), and the best it predicts is trained at full length
next. Measured on the schedule-prediction benchmark (docs/benchmarks.md): within a sixth of the
full study's steps, probes + law ranked the default suite better (Kendall tau 0.64) and picked
better than fit runs alone, which fell back to training every candidate.

The probes form a study of their own in the same folder (``<name>-probes``; ordinary trials:
stored, leased, resumed, run by any runner), which the report leaves out. A run too short to
compress (under 16 steps) is not probed. A compressed run prefers a higher peak LR than a full
one, so the probes of a suite with ``lr_scales`` run at sqrt(k) times their LRs
(:func:`lr_boost`): at their own LRs they favour the highest scale.

>>> compression(candidates=8, steps=300, allowance=1.9 * 300)
5
>>> compression(candidates=8, steps=36, allowance=16)  # probes of 9 steps at least
4
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from lrscope.study.plan import StudyPlan
from lrscope.study.predict.choice import lr_sequences
from lrscope.study.recipes import Suite, explicit
from lrscope.study.stats.leaderboard import run_metric
from lrscope.study.store import DONE_STATUSES, Store
from lrscope.study.store.records import TrialRecord

if TYPE_CHECKING:
    from lrscope.study.predict.law import Curve

# The share of the budget (after the range test) the probes spend: the benchmark's best of
# 25% and 50% (more probes leave fewer full-length runs to confirm them); down to half of it
# where shorter probes leave room for one more full-length run (:func:`probe_allowance`)
PROBE_SHARE = 0.25
MIN_PROBE_SHARE = PROBE_SHARE / 2
EVALUATIONS = 8  # per probe: enough points to fit a law's curve, cheap at a probe's length
SUFFIX = "-probes"  # the probe study's name: the study's own, with this after it
MIN_STEPS = 8  # the shortest probe: a curve the law can read, however small the budget
# A probe k times shorter than the run prefers a higher peak LR, so with lr_scales the probes
# at the suite's own scales would favour the highest (measured: docs/benchmarks.md, "Probes
# with lr_scales"). SGD's best constant step for T steps goes as 1/sqrt(T) (the noise term of
# its convergence bound); so a scaled suite's probes run at sqrt(k) times their LRs.
HORIZON_EXPONENT = 0.5


def probe_allowance(rest: int, run_steps: int) -> float:
    """The trial steps the probes may spend of ``rest`` (the budget after the range test):
    :data:`PROBE_SHARE` of it, or less, down to :data:`MIN_PROBE_SHARE`, where that leaves
    room for one more full-length run. The fixed share could leave up to a run's worth of the
    budget unspent: on the default suite, 1/6 of 24 runs held the range test, probes at 1/9
    of the length and two runs, with 0.8 of a run over; probes at 1/12 leave room for a third.
    Measured there (docs/benchmarks.md, 2026-12-07 evening): the median regret vs the oracle
    over the seed orders' means 13.6% -> 9.8% (the full study: 11.0%), Kendall tau 0.57 as
    before; with seed 0 first alone 10.6% -> 14.2%. Mostly one problem's probe order moved
    (benchmarks/schedule_prediction_bound.py: one-seed verdicts, noisy).

    >>> probe_allowance(rest=1120, run_steps=300)  # 3 runs after the probes, not 2
    220
    >>> probe_allowance(rest=1000, run_steps=300)  # a third run would leave the probes 100
    250.0
    """
    share = PROBE_SHARE * rest  # run_steps >= 2: compare checks steps before any study
    runs = math.floor((rest - share) / run_steps)
    shorter = rest - (runs + 1) * run_steps
    return shorter if shorter >= MIN_PROBE_SHARE * rest else share


def compression(candidates: int, steps: int, allowance: float) -> int:
    """The smallest whole ``k`` whose probes (every candidate, ``ceil(steps / k)`` steps) fit
    ``allowance`` trial steps, at most what leaves each probe :data:`MIN_STEPS` (1: a run too
    short to compress, which is not probed)."""
    k, most = 1, max(1, steps // MIN_STEPS)
    while candidates * math.ceil(steps / k) > allowance and k < most:
        k += 1
    return k


def stored_compression(out: Path, plan: StudyPlan, wanted: int) -> int:
    """The compression of the probes the folder ``out`` already holds for ``plan``, else
    ``wanted``. A rerun with another budget reuses them: they are paid for, and a study's
    settings are fixed once stored (probes of another length would be refused as a changed
    study). The smallest ``k`` that gives the stored length, as :func:`compression` picks."""
    with Store.in_dir(out) as store:
        run = store.find_run(plan.name + SUFFIX)
        short = run.config.get("steps") if run is not None else None
    if not isinstance(short, int) or short < 1:
        return wanted
    return next((k for k in range(1, plan.steps + 1) if math.ceil(plan.steps / k) == short),
                wanted)


def lr_boost(scaled: bool, factor: float) -> float:
    """The factor on a probe's LRs: 1 for one peak (the probes compare shapes at it); for a
    suite with ``lr_scales`` (``scaled``), the compression ``factor`` to the
    :data:`HORIZON_EXPONENT`, so that the probes of the scales compare as full-length runs do.

    >>> lr_boost(True, 9.0), lr_boost(False, 9.0)
    (3.0, 1.0)
    """
    return factor ** HORIZON_EXPONENT if scaled else 1.0


def probe_plan(plan: StudyPlan, suite: Suite, k: int) -> tuple[StudyPlan, dict[str, str]]:
    """The probe study of ``plan``'s ``suite`` compressed ``k`` times (its LRs times
    :func:`lr_boost`), and each candidate's label there (candidate label -> probe label)."""
    short = math.ceil(plan.steps / k)
    factor = f"{plan.steps / short:.6g}"
    boost = lr_boost(bool(plan.lr_scales), plan.steps / short)
    at = {label: schedule.scaled(boost, digits=6) if boost != 1 else schedule
          for label, schedule in suite.schedules}
    labels = {label: f"compress({schedule.spec()}, factor={factor})"
              for label, schedule in at.items()}
    every = max(1, short // EVALUATIONS)
    seed = plan.seeds[0]
    config = {**plan.config, "steps": short, "schedules": list(labels.values()),
              "lr_scales": None, "seeds": [seed], "eval_every": every,
              "probes_of": plan.name}
    probes = dataclasses.replace(plan, name=plan.name + SUFFIX, config=config, steps=short,
                                 eval_every=every, schedules=tuple(labels.values()),
                                 lr_scales=None, seeds=(seed,), range_test=None)
    return probes, labels


PROBES = "<probes>"  # a batch holding it asks for the probe study (every probe at once)


class Probes:
    """A predict study's probes: their plan (:func:`probe_plan`), each candidate's probe label
    and LRs, and what the store in ``out`` holds of them."""

    def __init__(self, plan: StudyPlan, suite: Suite, out: Path, factor: int) -> None:
        self.factor, self.out = factor, out
        self.plan, self.labels = probe_plan(plan, suite, factor)
        self.boost = lr_boost(bool(plan.lr_scales), plan.steps / self.plan.steps)
        by_spec = lr_sequences(explicit(list(self.labels.values()), self.plan.steps),
                               self.plan.steps)
        self.lrs = {label: by_spec[spec] for label, spec in self.labels.items()}

    def trials(self) -> dict[str, TrialRecord]:
        """The probes the store holds, by candidate label (none before they ran)."""
        by_probe = {probe: label for label, probe in self.labels.items()}
        with Store.in_dir(self.out) as store:
            run = store.find_run(self.plan.name)
            if run is None:
                return {}
            return {by_probe[t.label]: t for t in store.trials(run.id)
                    if t.label in by_probe and t.seed == self.plan.seeds[0]}

    def missing(self) -> list[str]:
        """The candidates whose probe has no result yet."""
        held = self.trials()
        return [label for label in self.labels
                if getattr(held.get(label), "status", None) not in DONE_STATUSES]

    def curves(self) -> dict[str, Curve | None]:
        """Every candidate's probe curve (its compressed schedule's LRs), None unless it
        finished: one read of the store. Read on the probes' own run's split: before any
        full-length trial the study's run holds no validation metric and would read the test
        set."""
        from lrscope.study.predict.curves import trial_curve

        held = self.trials()
        with Store.in_dir(self.out) as store:
            run = store.find_run(self.plan.name)
            metric = run_metric(store, run.id) if run is not None else None
            return {label: trial_curve(store, trial, metric, self.lrs[label])
                    if metric is not None and trial is not None and trial.status == "finished"
                    else None
                    for label in self.labels for trial in [held.get(label)]}

    def finals(self) -> dict[str, float]:
        """Every candidate's probe's final value, lower is better (+inf: none)."""
        from lrscope.study.predict.curves import final_value

        return {label: final_value(curve) for label, curve in self.curves().items()}

    def order(self) -> list[str]:
        """The candidates by their probes' final values, best first (no value: last)."""
        finals = self.finals()
        return sorted(finals, key=lambda label: (finals[label], label))

    def steps_trained(self) -> int:
        """Every step the probes ran (a diverged probe counts the steps before it stopped)."""
        done = [t.id for t in self.trials().values() if t.status in DONE_STATUSES]
        with Store.in_dir(self.out) as store:
            return sum(len(store.metric_series(trial, "lr")[0]) for trial in done)


SCALED = "predict: with lr_scales "  # the study's line of :func:`scaled_line` opens with it


def scaled_line(boost: float) -> str:
    """What a study with ``lr_scales`` says of its route: the probes, at ``boost`` times their
    LRs, order the full-length runs, and no law is fitted. Measured (docs/benchmarks.md,
    "Probes at sqrt(k) times their LRs"): the law's order across peaks was worse than the
    probes' (Kendall tau of the untrained, median over 15 problem-orders, 0.02 against 0.25),
    and with it the pick came out further from the oracle (13.6-21.3% against 7.6%, medians
    over the seed orders' means).

    >>> print(scaled_line(4.24))  # doctest: +NORMALIZE_WHITESPACE
    predict: with lr_scales the candidates are probed at 4.24 times their LRs (a shorter run
    prefers a higher peak), and their probes order the full-length runs; no loss-curve law is
    fitted (across peak LRs its order was worse than the probes')
    """
    return (f"{SCALED}the candidates are probed at {boost:.3g} times their LRs (a shorter run "
            "prefers a higher peak), and their probes order the full-length runs; no loss-curve "
            "law is fitted (across peak LRs its order was worse than the probes')")


# how the untrained candidates were put in order (PredictionRecord.untrained_by)
BY_LAW = "the law's prediction"  # the law passed its self-check
BY_LAWS_ORDER = "the law's order, its values not trusted"  # it failed the check
BY_PROBES = "their probes"  # no law could be fitted
PROBES_CONTRADICTED = "predict: the probes put "  # the study's line of :func:`contradicted`


def contradicted(order: list[str], measured: dict[str, float]) -> str | None:
    """What the full-length runs say against the probes' ``order`` (best first): the trained
    candidate (``measured``: candidate -> its final value at full length) probed best, when
    another trained one measured better, with both values; None when they agree.

    >>> contradicted(["a", "b", "c"], {"a": 0.46, "b": 0.11})
    'the probes put a before b; at full length a measured 0.46, b 0.11'
    >>> contradicted(["a", "b", "c"], {"a": 0.11, "b": 0.46}) is None
    True
    """
    ranked = [label for label in order if label in measured]
    if not ranked:
        return None
    first, best = ranked[0], min(ranked, key=lambda label: (measured[label], label))
    if measured[best] >= measured[first]:
        return None
    return (f"the probes put {first} before {best}; at full length {first} measured "
            f"{measured[first]:.3g}, {best} {measured[best]:.3g}")


def is_probe_run(config: dict[str, object]) -> bool:
    """Whether a stored run's config is a predict study's probes (the report leaves it out)."""
    return config.get("probes_of") is not None
