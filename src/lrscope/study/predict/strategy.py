"""The phases of a ``strategy="predict"`` study (see the package docstring and issue 18).

The study probes every candidate first (:mod:`.probe_phases`, :mod:`.probes`; with
``lr_scales`` at higher LRs, as a compressed run prefers). A run too short to compress, or a
single candidate, is not probed; the study then runs these phases:

1. the range test and the suite, as the full study's (``run_study(..., wanted=set())``);
2. the fit runs (:mod:`.choice`) at the first seed, ordinary trials of the study;
3. the law (:mod:`.law`) fitted to their curves predicts every candidate's final value;
4. the self-check: the best-predicted candidate not yet trained is trained and compared with
   what the law said before (:func:`.race.check_fails`), and the law must reproduce its own
   fit runs' final values (:func:`.race.fit_fails`); then the law is refitted with it;
5. a failed check or a law that cannot be fitted: one line says why, every candidate is trained
   at the first seed, and the rest of the budget races seeds;
6. the race (:mod:`.race`): the untrained candidates whose interval reaches the best measured
   value; the schedule the law predicts best beyond the suite (item 2), when a run is left;
   then more seeds for the candidates the "vs best" rule cannot separate from the best;
7. the record (:mod:`lrscope.study.store.predictions`, DIR/predictions.json).

Every decision is a function of the trials it asked for and of their stored results, so a rerun
on the same store makes the same decisions and trains nothing new; a kill at any point leaves
trials (resumed as any study's) and a derived file. The trials keep the full study's keys: a
later ``strategy="full"`` on the same folder trains only what is missing. Only the main rank of
a distributed engine decides; the others hear each batch of trial keys from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from pathlib import Path

from lrscope.engines.base import Engine
from lrscope.study.plan import StudyPlan, TrialEvent
from lrscope.study.predict.choice import fit_runs
from lrscope.study.predict.probe_phases import Decisions, probe_phases
from lrscope.study.predict.probes import (
    BY_LAW,
    BY_LAWS_ORDER,
    BY_PROBES,
    PROBES,
    PROBES_CONTRADICTED,
    SCALED,
    probe_plan,
)
from lrscope.study.predict.race import (
    RACE_ROOM,
    Budget,
    check_line,
    contenders,
    gap,
    rerun_phrase,
)
from lrscope.study.predict.state import Incomplete, StudyState
from lrscope.study.recipes import Suite
from lrscope.study.run import run_study, save_parallel_choice, trial_key
from lrscope.study.sink import TrialSink
from lrscope.study.store.predictions import PredictionRecord, save_predictions
from lrscope.study.store.ran import how_it_ran
from lrscope.study.strategies import default_budget


def run_predict(plan: StudyPlan, out: str | Path, engine: Engine, budget: float | None = None,
                progress: Callable[[TrialEvent], None] | None = None,
                announce: Callable[[str], None] | None = None,
                sink: TrialSink | None = None) -> tuple[Suite, PredictionRecord | None]:
    """Run (or resume) ``plan`` as a predict study into ``out`` under ``budget`` (a fraction of
    the full study's trial steps; None: :func:`lrscope.study.strategies.default_budget`).
    Returns the suite and,
    on the main rank, the record (also saved as DIR/predictions.json)."""
    out = Path(out)
    began, before = time.perf_counter(), how_it_ran(out, plan.name).get("study_wall_s")
    fraction = default_budget(plan.lr_scales) if budget is None else budget
    suite = run_study(plan, out, engine, progress, announce, sink, wanted=set())
    universe = [trial_key(label, seed) for label in suite.labels() for seed in plan.seeds]
    # the optimised schedule is not in the suite every rank built: one process decides alone
    state = (StudyState(plan, out, suite, fraction, announce, optimise=engine.world_size == 1)
             if engine.is_main else None)
    decisions = _decisions(state) if state is not None else None
    record: PredictionRecord | None = None
    while True:
        batch: set[str] = set()
        if decisions is not None:
            try:
                batch = next(decisions)
            except StopIteration as done:
                record = done.value
        batch = _agree(engine, [PROBES, *universe], batch) | (batch - {PROBES, *universe})
        if not batch:
            break
        if PROBES in batch:  # the probe study, whole (every rank builds the same one)
            _run_probes(plan, out, engine, suite, state, announce)
            batch.discard(PROBES)
            if not batch:
                continue
        extra = (state.optimised,) if state is not None and state.optimised else ()
        run_study(plan, out, engine, progress, announce, sink, wanted=batch, extra=extra)
    if record is not None:
        save_predictions(out, plan.name, record)
        _whole_wall_time(out, plan.name, before, time.perf_counter() - began)
    return suite, record


def _whole_wall_time(out: Path, name: str, before: object, wall: float) -> None:
    """The study's wall time in DIR/parallel.json (what the verdict's "Ran in" reads) made this
    call's whole: each batch of trials adds only its own, and the range test's phase and the
    probes (a study of their own) train no trial of the study. Nothing when this call trained
    nothing (the entry unchanged)."""
    entry = how_it_ran(out, name)
    known = before if isinstance(before, (int, float)) else 0.0
    if not entry or entry.get("study_wall_s") == before:
        return
    entry.update(wall_s=round(wall, 3), study_wall_s=round(known + wall, 3))
    save_parallel_choice(out, name, entry)


def _run_probes(plan: StudyPlan, out: Path, engine: Engine, suite: Suite,
                state: StudyState | None, announce: Callable[[str], None] | None) -> None:
    """The probe study (:mod:`.probes`); its compression is the main rank's (the others hear
    it through ``engine.mean``: only the main rank reads the range test's steps)."""
    k = state.probes.factor if state is not None else 0
    k = round(engine.mean(float(k)) * engine.world_size) if engine.world_size > 1 else k
    probes, _ = probe_plan(plan, suite, k)
    run_study(probes, out, engine, announce=announce)


def _agree(engine: Engine, universe: list[str], batch: set[str]) -> set[str]:
    """The main rank's ``batch`` on every rank (each key voted through ``engine.mean``)."""
    if engine.world_size == 1:
        return batch
    return {key for key in universe
            if round(engine.mean(float(key in batch) if engine.is_main else 0.0)
                     * engine.world_size)}


def _decisions(state: StudyState) -> Decisions:
    """The phases, as a generator of batches of trial keys to train (see the module
    docstring); returns the record. Nothing is yielded empty (an empty batch ends the study)."""
    try:
        return (yield from _phases(state))
    except Incomplete as missing:
        state.say(f"predict: {missing} have no result (failed, or running in another process); "
                  "rerun to continue the study from there")
        return state.record(stopped="incomplete")


def _phases(state: StudyState) -> Decisions:
    state.say(budget_line(state.budget))
    if state.held_whole():  # a full study's folder: measured already, nothing to predict
        state.adopt_the_rest()  # says so
        return state.finish((yield from state.race_seeds()), trusted=True)
    if state.probing:
        return (yield from probe_phases(state))
    plan = state.plan
    s0, lrs = plan.seeds[0], state.lrs
    fits = fit_runs(lrs, state.suite.origins)
    yield from state.train(fits, s0)
    state.fit_trials = tuple(trial_key(label, s0) for label in fits)
    fitted = state.fit(fits)
    trusted = fitted is not None
    if fitted is not None:
        state.predict(fitted)
        untried = [label for label in state.ranked_predictions() if label not in fits]
        if untried:
            target = untried[0]
            said = state.predictions[target]
            spread = gap({label: value for label, (value, _, _) in state.predictions.items()})
            yield from state.train([target], s0)
            check = state.run_check(target, said, spread, fitted_on=fits)
            trusted = check.passed
            if not trusted:
                state.say(f"{check_line(check)}; {_instead(state)}")
            else:
                refitted = state.fit([*fits, target])
                if refitted is not None:
                    state.predict(refitted)
    elif state.why_not_fitted:
        state.say(f"predict: {state.why_not_fitted}; {_instead(state)}")
    if state.spent() > state.budget.limit:
        checked = ", the fit runs and the self-check" if state.check else " and the fit runs"
        state.say(f"predict: the range test{checked} took {state.percent()} of the full "
                  f"study's steps, beyond the budget of {state.budget.fraction:.0%}")
    stopped = ""
    if not trusted:  # the law is not trusted: every candidate is measured at the first seed
        yield from state.train(list(lrs), s0)
        if state.spent() > state.budget.limit:
            state.say(f"predict: training every candidate took {state.percent()} of the full "
                      f"study's steps, beyond the budget of {state.budget.fraction:.0%}")
    else:
        while todo := contenders(state.predictions, state.trained(s0), state.best_measured(s0)):
            count = state.budget.affordable(state.spent(), len(todo))
            if count == 0:
                stopped = "budget"
                break
            yield from state.train(todo[:count], s0)
        if not stopped:  # item 2 before the seeds, so that the race covers it too
            yield from _beyond_the_suite(state)
    if not stopped:
        stopped = yield from state.race_seeds()
    return state.finish(stopped, trusted)


def _instead(state: StudyState) -> str:
    """What a study that does not trust its law does instead, with what it will cost when that
    passes the budget: said before the runs, not only after them (on a real model, hours)."""
    s0, budget = state.plan.seeds[0], state.budget
    left = [label for label in state.lrs if label not in state.trained(s0)]
    projected = state.spent() + len(left) * budget.run_steps
    if projected <= budget.limit:
        return "training every candidate instead"
    return (f"training every candidate instead ({len(left)} more run{'s' * (len(left) != 1)}: "
            f"{projected / max(1, budget.full_steps):.0%} of the full study's steps, beyond the "
            f"budget of {budget.fraction:.0%})")


def _beyond_the_suite(state: StudyState) -> Generator[set[str], None, None]:
    """Item 2: the schedule the final law predicts best (a WSD of free decay length and shape
    at the best measured candidate's peak and warmup), trained at the first seed when the
    budget allows one more run; it is a row like any, so it wins only if measured better."""
    if state.budget.affordable(state.spent(), 1) == 0:
        return
    label = state.optimise(state.rows()[0].label)
    if label is not None:
        yield from state.train([label], state.plan.seeds[0])


def budget_line(budget: Budget) -> str:
    """What the study may train, said first: on a real model, how long it will take.

    >>> print(budget_line(Budget.of(candidates=8, seeds=3, run_steps=420, range_test_steps=40,
    ...                             fraction=1 / 6)))  # doctest: +NORMALIZE_WHITESPACE
    predict: a budget of 17% of the full study's 24 runs: 4.0 runs' worth of steps (the range
    test's 0.1 included)
    """
    runs = budget.run_steps or 1
    return (f"predict: a budget of {budget.fraction:.0%} of the full study's "
            f"{_count((budget.full_steps - budget.range_test_steps) / runs)} runs: "
            f"{budget.limit / runs:.1f} runs' worth of steps (the range test's "
            f"{budget.range_test_steps / runs:.1f} included)")


def summary_lines(record: PredictionRecord | None, untrained: bool = True) -> list[str]:
    """What the terminal prints under a predict study's leaderboard: the cost, the self-check,
    then (``untrained``) the candidates not trained, next first, whether the full-length runs
    measured against the probes' order, and the budget that has room to train them (nothing
    for a full study).

    >>> from lrscope.study.store.predictions import Cost
    >>> record = PredictionRecord("multi_power", (), {}, Cost(520, 2500, 100, 100, 1 / 6))
    >>> print(summary_lines(record)[0])  # doctest: +NORMALIZE_WHITESPACE
    predict: trained 5.2 runs' worth of steps (range test included), 21% of the full study's
    24 runs (budget 17%)
    """
    if record is None:
        return []
    cost = record.cost
    lines = [f"predict: trained {cost.runs:.1f} runs' worth of steps (range test included), "
             f"{cost.fraction:.0%} of the full study's {_count(cost.full_runs)} runs (budget "
             f"{cost.budget:.0%})"]
    instead = fallback_phrase(record)
    if record.self_check is not None:
        lines.append(check_line(record.self_check) + ("" if record.self_check.passed else
                                                      f"; {instead}"))
    elif record.law_params == {} and record.stopped == "fallback":
        lines.append(f"predict: the law could not be fitted; {instead}")
    elif record.untrained_by == BY_LAW and record.untrained:  # trusted, never tested
        lines.append(UNCHECKED)
    if record.optimised:  # a label no one wrote: say what it is
        trained = record.candidates.get(record.optimised)
        lines.append(f"predict: {record.optimised} is the law's own schedule (the "
                     "warmup-stable-decay it predicts best at the best candidate's peak and "
                     "warmup), " + ("trained like any candidate" if trained is not None
                                    and trained.trained else "not trained: the budget ended"))
    if untrained and record.untrained:
        lines.append(f"predict: not trained, next first by {record.untrained_by}: "
                     f"{', '.join(record.untrained)}")
    lines += [line for line in record.lines if line.startswith(PROBES_CONTRADICTED)]
    lines[1:1] = [line for line in record.lines if line.startswith(SCALED)]  # after the cost
    if untrained and record.untrained:  # what to do about them, last
        lines.append(larger_budget_line(record))
    lines += [line for line in record.lines if line.startswith(RACE_ROOM)]
    return lines


def larger_budget_line(record: PredictionRecord) -> str:
    """How to go on from a study that left candidates untrained: the budget whose rerun on the
    same folder has room to train the untrained within reach of the best (else every untrained
    one) once, beside what is trained, which is kept. A rerun decides again under the larger
    budget, so this is the room, not a promise of which runs it makes.

    >>> from lrscope.study.store.predictions import Cost
    >>> record = PredictionRecord("annealing", (), {}, Cost(520, 2500, 100, 100, 1 / 6),
    ...                           tie=("b",), untrained=("b", "c"))
    >>> print(larger_budget_line(record))  # doctest: +NORMALIZE_WHITESPACE
    predict: to train b (untrained, within reach of the best), rerun on the same folder with
    a budget of 0.25 (--budget 0.25, budget=0.25): what is trained is kept
    """
    cost = record.cost
    within = [label for label in record.untrained if label in record.tie]
    names = within or list(record.untrained)
    what = (f"{', '.join(names)} (untrained, within reach of the best)" if within else
            "every candidate not trained" if len(names) > 1 else names[0])
    return (f"predict: to train {what}, "
            f"{rerun_phrase(cost.steps, len(names), cost.run_steps, cost.full_steps)}")


UNCHECKED = ("predict: the law's predictions are unchecked: the budget ended before a run it "
             "was not fitted on could test them")


def fallback_phrase(record: PredictionRecord) -> str:
    """What a study trained once it stopped trusting its law: by what it ordered the rest."""
    if record.untrained_by == BY_LAWS_ORDER:
        return ("the next were trained in the law's order instead (its values not trusted), "
                "as far as the budget allowed")
    if record.untrained_by == BY_PROBES:
        return "the best-probed candidates were trained instead, as far as the budget allowed"
    return "every candidate was trained instead"


def _count(runs: float) -> str:
    return f"{runs:.0f}" if math.isclose(runs, round(runs)) else f"{runs:.1f}"
