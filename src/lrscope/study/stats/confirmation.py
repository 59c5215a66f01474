"""The winner's unbiased score: the confirmation trials, read back from the store.

A study picks its best on the seeds it ran, so the best's score at those seeds carries the
selection's luck (the winner's curse; selecting on a validation split over the same seeds
removes almost none of it, as the seeds' luck is shared by both splits). ``--confirm-seeds N``
(:mod:`lrscope.study.confirm`) retrains the best, and every schedule the study could not
separate from it, at N fresh seeds; their scores there are free of that luck. This module reads
them back (:func:`read_confirmation`), beside the study's own in-sample numbers.

The confirmation is a run of its own in the store, named ``<study>/confirm`` (so it never enters
the study's leaderboard), marked by ``config["confirms"] = <study>``; its ``config["latest"]``
names the schedules and seeds of the latest confirmation, which is what is read back. A seed
that has since become one of the study's (the study grew) is in-sample and is left out.

With a test set the confirmation reports the final test loss (and accuracy); without one, the
final value of the study's ranking metric on the validation split, and says so: fresh seeds
remove the seeds' luck, not that of the validation set the best was picked on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.stats.uncertainty import Estimate, mean_ci, metric_range
from lrscope.study.store import ResultsStore, RunRecord, TrialRecord

CONFIRM_SUFFIX = "/confirm"
OPTIMISM_NOTE = ("The best's test score is from the seeds that selected it, so it is "
                 "optimistic; --confirm-seeds N (confirm_seeds=N) retrains it at N fresh seeds "
                 "for an unbiased one.")


def confirm_run_name(study: str) -> str:
    """The name of ``study``'s confirmation run in the store.

    >>> confirm_run_name("study")
    'study/confirm'
    """
    return study + CONFIRM_SUFFIX


def confirms(run: RunRecord) -> str | None:
    """The study that ``run`` confirms, or None when it is not a confirmation run."""
    study = run.config.get("confirms")
    return str(study) if study is not None else None


@dataclass(frozen=True)
class ConfirmedSchedule:
    """One schedule at the fresh seeds, beside the same schedule in the study."""

    label: str
    seeds: tuple[int, ...]          # the fresh seeds it ran at
    n_finished: int
    n_diverged: int
    n_other: int                    # failed or not run yet
    fresh: Estimate                 # the metric's final value at the fresh seeds (finished)
    in_sample: Estimate             # the same over the study's seeds (finished)
    fresh_accuracy: Estimate        # final test accuracy (no value without classes or test)
    in_sample_accuracy: Estimate


@dataclass(frozen=True)
class Confirmation:
    """The confirmation of one study: ``metric`` (``test_loss``, or ``val_<name>`` without a
    test set) per confirmed schedule, best of the study first."""

    study: str
    seeds: tuple[int, ...]
    metric: str
    schedules: tuple[ConfirmedSchedule, ...]

    @property
    def on_test(self) -> bool:
        return self.metric == "test_loss"

    def __getitem__(self, label: str) -> ConfirmedSchedule:
        for confirmed in self.schedules:
            if confirmed.label == label:
                return confirmed
        raise KeyError(label)

    def labels(self) -> list[str]:
        return [c.label for c in self.schedules]

    def metric_text(self) -> str:
        """What the numbers are: 'final test loss' or 'final validation <name>'."""
        return ("final test loss" if self.on_test
                else f"final validation {self.metric.removeprefix('val_')}")

    def note(self) -> str:
        """What the confirmation is, in two sentences (for the report and the terminal)."""
        seeds = ", ".join(map(str, self.seeds))
        text = (f"The study's best and every schedule its 'vs best' test could not separate "
                f"from it, retrained at {len(self.seeds)} fresh seeds ({seeds}; none of them "
                f"among the study's): their {self.metric_text()} there is free of the "
                "selection's luck, unlike the study's own number beside it, which is from the "
                "seeds that selected it.")
        if not self.on_test:
            text += (" There is no test set, so this is the selection metric on the validation "
                     "split: fresh seeds remove the seeds' luck, not that of the validation set "
                     "the best was picked on.")
        return text

    def lines(self) -> list[str]:
        """One line per confirmed schedule, for the terminal."""
        out = []
        for c in self.schedules:
            line = (f"{c.label}: {self.metric_text()} {c.fresh.text()} at fresh seeds "
                    f"(in the study: {c.in_sample.text()})")
            if c.fresh_accuracy.mean is not None:
                line += (f"; test accuracy {c.fresh_accuracy.text()} (in the study: "
                         f"{c.in_sample_accuracy.text()})")
            if c.n_diverged or c.n_other:
                line += f"; {c.n_diverged} diverged, {c.n_other} failed or unfinished"
            out.append(line)
        return out


def read_confirmation(store: ResultsStore, study: RunRecord) -> Confirmation | None:
    """``study``'s latest confirmation from the store, or None when it has none."""
    run = store.find_run(confirm_run_name(study.name))
    if run is None or confirms(run) != study.name:
        return None
    latest = run.config.get("latest") or {}
    study_trials = store.trials(study.id)
    taken = {t.seed for t in study_trials}
    seeds = tuple(int(s) for s in latest.get("seeds", []) if int(s) not in taken)
    labels = [str(label) for label in latest.get("schedules", [])]
    fresh = [t for t in store.trials(run.id) if t.seed in seeds and t.label in labels]
    if not labels or not seeds:
        return None
    tested = any(len(store.metric_series(t.id, "test_loss")[0]) for t in fresh + study_trials)
    metric = "test_loss" if tested else RankingMetric.of_run(study.config, True).stored
    schedules = []
    for label in labels:
        mine = [t for t in fresh if t.label == label]
        theirs = [t for t in study_trials if t.label == label]
        schedules.append(ConfirmedSchedule(
            label=label, seeds=seeds, n_finished=sum(t.status == "finished" for t in mine),
            n_diverged=sum(t.status == "diverged" for t in mine),
            n_other=len(seeds) - sum(t.status in ("finished", "diverged") for t in mine),
            fresh=final_estimate(store, mine, metric),
            in_sample=final_estimate(store, theirs, metric),
            fresh_accuracy=final_estimate(store, mine, "test_accuracy"),
            in_sample_accuracy=final_estimate(store, theirs, "test_accuracy")))
    return Confirmation(study.name, seeds, metric, tuple(schedules))


def final_estimate(store: ResultsStore, trials: Sequence[TrialRecord], metric: str) -> Estimate:
    """Mean and 95% interval of ``metric``'s last value over the finished ``trials`` (a
    diverged trial has no meaningful final value: the counts say how many are left out)."""
    values = []
    for trial in trials:
        if trial.status != "finished":
            continue
        _, series = store.metric_series(trial.id, metric)
        if len(series) and math.isfinite(series[-1]):
            values.append(float(series[-1]))
    return mean_ci(values, bounds=metric_range(metric))
