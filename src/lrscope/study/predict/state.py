"""What a predict study knows between its phases: the trials it asked for, read from the store,
and the law's predictions (its base, :mod:`.law_part`); and the record it keeps
(:mod:`lrscope.study.store.predictions`).

Only the trials the study itself asked for count (``chosen``) while it decides, never others
the folder holds (a later ``strategy="full"`` run's, say): so a rerun on the same store reads
the same trials, makes the same decisions, and reports the same cost. Once every decision is
made the others count as measured (:meth:`StudyState.adopt_the_rest`), and a folder that held
the whole full study before is only read (:meth:`StudyState.held_whole`). Values are the
law's: lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lrscope.study.plan import StudyPlan
from lrscope.study.predict.choice import lr_sequences
from lrscope.study.predict.law_part import LawPart, shown
from lrscope.study.predict.probes import (
    BY_LAW,
    PROBES,
    Probes,
    compression,
    probe_allowance,
    stored_compression,
)
from lrscope.study.predict.race import (
    Budget,
    Interval,
    check_fails,
    contenders,
    fit_fails,
    race_room_line,
    race_stop,
    seed_round,
)
from lrscope.study.recipes import Suite
from lrscope.study.run import trial_key
from lrscope.study.stats.leaderboard import (
    LeaderboardRow,
    origins,
    outcomes_from_store,
    run_metric,
    summarize,
)
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.stats.verdict import tie_group
from lrscope.study.store import DONE_STATUSES, Store
from lrscope.study.store.predictions import (
    Cost,
    Prediction,
    PredictionRecord,
    SelfCheck,
    load_predictions,
)
from lrscope.study.store.records import TrialRecord

if TYPE_CHECKING:
    from lrscope.study.predict.law import Curve


class Incomplete(Exception):
    """Trials the study asked for that have no result after their batch ran."""


class StudyState(LawPart):
    """The main rank's view of a predict study (see the module docstring; the law's side:
    :class:`.law_part.LawPart`)."""

    def __init__(self, plan: StudyPlan, out: Path, suite: Suite, fraction: float,
                 announce: Callable[[str], None] | None = None, optimise: bool = True) -> None:
        super().__init__()
        self.plan, self.out, self.suite, self.announce = plan, out, suite, announce
        self.may_optimise = optimise  # item 2: a schedule beyond the suite (one process only)
        self.lrs = lr_sequences(suite, plan.steps)
        self.chosen: dict[str, None] = {}  # the trial keys asked for, in order (a set in order)
        self.lines: list[str] = []
        self.fit_trials: tuple[str, ...] = ()
        self.check: SelfCheck | None = None
        with Store.in_dir(out) as store:
            run = store.find_run(plan.name)
            assert run is not None  # run_study(wanted=set()) created it
            self.run_id = run.id
            saved = store.range_test(run.id)
        range_steps = len(saved.lrs) if saved is not None else 0
        self.budget = Budget.of(candidates=len(suite.schedules), seeds=len(plan.seeds),
                                run_steps=plan.steps, range_test_steps=range_steps,
                                fraction=fraction)
        # the probes (.probes; a suite with lr_scales probed at higher LRs, lr_boost): not
        # for a run too short to compress; their compression fits
        # what the full-length runs leave of the budget (probe_allowance), unless the folder
        # holds probes already (a rerun with another budget reuses them)
        self.probes = Probes(plan, suite, out, stored_compression(out, plan, compression(
            len(suite.schedules), plan.steps,
            probe_allowance(self.budget.limit - range_steps, plan.steps))))
        # one candidate: nothing for the probes to order
        self.probing = self.probes.factor > 1 and len(suite.schedules) > 1
        # with lr_scales the probes alone order the runs (.probes.scaled_line); a run too
        # short to probe still has its fit runs and law
        self.uses_law = not (self.probing and plan.lr_scales)

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.announce is not None:
            self.announce(line)

    # -- trials -------------------------------------------------------------------------------
    def train(self, labels: Iterable[str], seed: int) -> Generator[set[str], None, None]:
        """Ask for ``labels`` at ``seed`` (a batch, unless all were asked for before); after it
        ran, :class:`Incomplete` when any of them has no result."""
        keys = [trial_key(label, seed) for label in labels]
        new = [key for key in keys if key not in self.chosen]
        self.chosen.update(dict.fromkeys(keys))
        if new:
            yield set(new)
        status = {key: trial.status for key, trial in self._trials().items()}
        missing = [key for key in keys if status.get(key) not in DONE_STATUSES]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise Incomplete(f"{len(missing)} of its trials ({shown})")

    def _trials(self) -> dict[str, TrialRecord]:
        """The chosen trials the store holds, by key."""
        with Store.in_dir(self.out) as store:
            return {t.key: t for t in store.trials(self.run_id) if t.key in self.chosen}

    def probed(self) -> Generator[set[str], None, None]:
        """Ask for the probes (a batch holding :data:`PROBES`, unless all ran before); after
        they ran, :class:`Incomplete` when any has no result."""
        if self.probes.missing():
            yield {PROBES}
        if missing := self.probes.missing():
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise Incomplete(f"{len(missing)} of its probes ({shown})")

    def held_whole(self) -> bool:
        """Whether the folder held the whole full study before this predict study trained
        anything of it: every trial finished (a ``strategy="full"`` study ran here), no probes
        and no record of a predict study that fitted a law. Nothing is then left to decide; the
        probes and the law would only spend. A predict study that trained anything ran its
        probes or fit runs first, so its rerun never qualifies, and this one's rerun does
        again: either decides as the first call did."""
        record = load_predictions(self.out, self.plan.name)
        if self.probes.trials() or (record is not None and record.fit_trials):
            return False
        with Store.in_dir(self.out) as store:
            done = {t.key for t in store.trials(self.run_id) if t.status in DONE_STATUSES}
        return all(trial_key(label, seed) in done
                   for label in self.lrs for seed in self.plan.seeds)

    def done(self) -> set[str]:
        return {key for key, t in self._trials().items() if t.status in DONE_STATUSES}

    def trained(self, seed: int) -> set[str]:
        """The labels measured (finished or diverged) at ``seed``."""
        return {t.label for t in self._trials().values()
                if t.seed == seed and t.status in DONE_STATUSES}

    def spent(self) -> int:
        """Trial steps trained: the range test and every step each chosen trial ran (a diverged
        trial counts the steps it ran before it stopped)."""
        with Store.in_dir(self.out) as store:
            ran = sum(len(store.metric_series(t.id, "lr")[0])
                      for t in store.trials(self.run_id)
                      if t.key in self.chosen and t.status in DONE_STATUSES)
        return self.budget.range_test_steps + ran + self.probes.steps_trained()

    def percent(self) -> str:
        return f"{self.spent() / max(1, self.budget.full_steps):.0%}"

    def metric(self) -> RankingMetric:
        with Store.in_dir(self.out) as store:
            return run_metric(store, self.run_id)

    def curve(self, label: str, seed: int) -> Curve | None:
        """The trial's selection-metric curve, None unless it finished with one."""
        from lrscope.study.predict.curves import trial_curve

        metric = self.metric()
        with Store.in_dir(self.out) as store:
            trial = next((t for t in store.trials(self.run_id)
                          if t.key == trial_key(label, seed)), None)
            if trial is None or trial.status != "finished":
                return None
            return trial_curve(store, trial, metric, self.lrs[label])

    def measured(self, label: str, seed: int) -> float:
        """The trial's final selection value (+inf unless it finished with one)."""
        from lrscope.study.predict.curves import final_value

        return final_value(self.curve(label, seed))

    def best_measured(self, seed: int) -> float | None:
        found = [self.measured(label, seed) for label in sorted(self.trained(seed))]
        finite = [value for value in found if math.isfinite(value)]
        return min(finite) if finite else None

    def rows(self) -> list[LeaderboardRow]:
        """The leaderboard of the chosen trials only (the study's own rule, best first)."""
        with Store.in_dir(self.out) as store:
            metric = run_metric(store, self.run_id)
            run = store.run(self.run_id)
            outcomes = [o for o in outcomes_from_store(store, self.run_id, metric)
                        if trial_key(o.label, o.seed) in self.chosen]
            target = run.config.get("target_accuracy")
            return summarize(outcomes, target_accuracy=None if target is None else float(target),
                             paired=True, metric=metric, origins=origins(store.trials(self.run_id)))

    # -- the end of either route --------------------------------------------------------------
    def race_seeds(self) -> Generator[set[str], None, str]:
        """The race's seed rounds (:func:`.race.seed_round`) while the budget allows; returns
        why it ended: "separated", "all trained" or "budget"."""
        while True:
            rows = self.rows()
            seed, racing = seed_round(rows, self.plan.seeds, self.done())
            if seed is None:
                return race_stop(rows)
            count = self.budget.affordable(self.spent(), len(racing))
            if count == 0:
                return "budget"
            yield from self.train(racing[:count], seed)

    def finish(self, stopped: str, trusted: bool, order: Sequence[str] = (),
               by: str = "") -> PredictionRecord:
        """The record: a law not trusted is a fallback; the tie group is the study's own and,
        with a trusted law, the untrained candidates whose interval reaches the best. The
        untrained are listed by the law's prediction when it is trusted, else in ``order``,
        put in order ``by`` what (:data:`.probes.BY_PROBES` and the rest; "" when nothing was
        left to order: every candidate trained). Trials of the study this call did not ask
        for count as measured (:meth:`adopt_the_rest`)."""
        self.adopt_the_rest()
        s0 = self.plan.seeds[0]
        trained = self.trained(s0)
        waiting = (contenders(self.predictions, trained, self.best_measured(s0))
                   if trusted else [])
        untrained = [label for label in (self.ranked_predictions() if trusted else order)
                     if label not in trained]
        rows = self.rows()
        if stopped == "budget" and not untrained and (line := race_room_line(
                rows, self.plan.seeds, self.done(), self.spent(), self.plan.steps,
                self.budget.full_steps)):
            self.say(line)  # the budget ended the seeds' race: how to go on
        return self.record(stopped=stopped if trusted or not self.uses_law else "fallback",
                           tie=(*tie_group(rows), *waiting), untrained=untrained,
                           untrained_by=BY_LAW if trusted else by)

    def adopt_the_rest(self) -> None:
        """Once every decision is made, the study's finished trials this call did not ask for
        (an earlier predict study's with a larger budget, a full study's) join the chosen, said
        in one line: the record then describes what the folder holds, as the leaderboard and
        the report do, and names no measured candidate as untrained. The decisions stay a
        function of the trials this call asked for (a rerun after a kill makes the same)."""
        with Store.in_dir(self.out) as store:
            extra = [t.key for t in store.trials(self.run_id)
                     if t.status in DONE_STATUSES and t.key not in self.chosen]
        if extra:
            self.chosen.update(dict.fromkeys(extra))
            self.say(f"predict: this folder also holds {len(extra)} trial"
                     f"{'s' * (len(extra) != 1)} of the study this call did not ask for (trained "
                     "before, with a larger budget or strategy \"full\"): counted as measured")

    # -- what is kept -------------------------------------------------------------------------
    def run_check(self, target: str, said: Interval, spread: float,
                  fitted_on: Iterable[str]) -> SelfCheck:
        """The law's self-check on ``target``'s run at the first seed (just trained, not
        fitted on): its prediction ``said`` against the measurement (:func:`.race.check_fails`),
        the law against the runs it was ``fitted_on`` (:func:`.race.fit_fails`), and no
        prediction the metric cannot take (:meth:`impossible`); kept as :attr:`check` and
        returned (``why``: '' when it passed)."""
        s0 = self.plan.seeds[0]
        measured = self.measured(target, s0)
        misses = {label: abs(self.predictions[label][0] - self.measured(label, s0))
                  for label in fitted_on}
        why = (check_fails(said, measured, spread) or fit_fails(misses, spread)
               or self.impossible())
        self.check = self.self_check(target, said, measured, spread, why)
        return self.check

    def self_check(self, label: str, said: Interval, measured: float, spread: float,
                   why: str) -> SelfCheck:
        """The self-check in the metric's own direction (an accuracy reads 0.95)."""
        metric = self.metric()
        return SelfCheck(trial=trial_key(label, self.plan.seeds[0]),
                         predicted=shown(metric, said[0]), measured=shown(metric, measured),
                         error=abs(measured - said[0]), gap=spread, passed=not why, why=why)

    def record(self, stopped: str, tie: Sequence[str] = (), untrained: Sequence[str] = (),
               untrained_by: str = "") -> PredictionRecord:
        metric = self.metric()
        measured = {t.label for t in self._trials().values() if t.status in DONE_STATUSES}
        candidates = {}
        for label, (value, low, high) in self.predictions.items():
            ends = sorted((shown(metric, low), shown(metric, high)))  # a maximised one flips
            candidates[label] = Prediction(
                shown(metric, value), ends[0], ends[1], trained=label in measured,
                curve_steps=self.curve_steps,
                curve=tuple(shown(metric, v) for v in self.curves.get(label, ())))
        probes = {label: shown(metric, value) if math.isfinite(value) else None
                  for label, value in self.probes.finals().items()} \
            if self.probes.trials() else {}
        cost = Cost(steps=self.spent(), full_steps=self.budget.full_steps,
                    range_test_steps=self.budget.range_test_steps, run_steps=self.plan.steps,
                    budget=self.budget.fraction)
        return PredictionRecord(law=self.law, fit_trials=self.fit_trials, candidates=candidates,
                                cost=cost, self_check=self.check, stopped=stopped,
                                tie=tuple(dict.fromkeys(tie)), optimised=self.optimised,
                                lines=tuple(self.lines),
                                law_params=self.params,
                                probe_factor=self.probes.factor if probes else None,
                                probes=probes, untrained=tuple(untrained),
                                untrained_by=untrained_by)
