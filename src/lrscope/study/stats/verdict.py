"""The verdict: a study's answer in plain words, first in the report and in the terminal.

One function, :func:`verdict`, writes its sentences from the leaderboard's rows and from how
the study ran (DIR/parallel.json, :mod:`lrscope.study.store.ran`):

* the best schedule and what it was ranked on, or, when the top is a tie, no winner: the
  schedule ranked first and the rest of its tie group;
* the **tie group**: the schedules the "vs best" test does not separate from the best (adjusted
  p >= 0.05, or too few seeds to test), :func:`tie_group`;
* what the seeds could and could not resolve: for the tied schedule closest to the best, about
  how many seeds the same test would need to flag its gap at the noise measured so far
  (:func:`~lrscope.study.stats.uncertainty.seeds_to_resolve`; a projection, said as one);
* the study's wall time, device, parallel mode, torch and lrscope versions.

>>> from lrscope.study.stats.leaderboard import TrialOutcome, summarize
>>> def trial(label, seed, loss):
...     return TrialOutcome(label, "f", seed, "finished", loss, loss, None, None, (), 1.0, loss)
>>> rows = summarize([trial("a", s, v) for s, v in enumerate((0.30, 0.31, 0.32))]
...                  + [trial("b", s, v) for s, v in enumerate((0.32, 0.305, 0.33))])
>>> tie_group(rows)
('b',)
>>> print("\\n".join(verdict(rows, {})))  # doctest: +NORMALIZE_WHITESPACE
No winner: a ranks first, by the median final test loss over all seeds (lower is better):
0.31, but the study cannot separate it from the rest of its tie group.
Nothing differs from the best at 3 seeds: b is not separated from it (adjusted p ≥ 0.05 on
the final test loss).
At the noise measured (paired differences vary by 0.013 across seeds), about 12 seeds would
resolve the gap of 0.0083 in test loss between b and the best.
How it ran (wall time, device, parallel mode, torch and lrscope versions) was not recorded
with this study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.ranking import ranked_on_text
from lrscope.study.stats.uncertainty import CONFIDENCE, MAX_SEEDS, MIN_PAIRS, seeds_to_resolve

ALPHA = 1 - CONFIDENCE
NOTHING_FINISHED = ("Nothing finished: every trial diverged, failed or is unfinished, so there "
                    "is no best schedule.")
WITHIN_REACH = ("Not trained, and predicted within reach of it by the loss-curve law (their "
                "intervals reach its value): {names}; only training them can rule them out.")
PREDICTED_NOTE = ("{n} more candidate{s} predicted by the loss-curve law, not trained: ranked by "
                  "the prediction alone, never tested against the best.")


def separated(row: LeaderboardRow) -> bool:
    """Whether "vs best" flags ``row`` as worse than the best (adjusted p < 0.05)."""
    return row.vs_best.p_value is not None and row.vs_best.p_value < ALPHA


def tie_group(rows: Sequence[LeaderboardRow]) -> tuple[str, ...]:
    """The labels, best first, that the study could not separate from the best (the best
    itself left out): "vs best" gave adjusted p >= 0.05, or had too few seeds to test. Empty
    when nothing finished (there is no best) or every other schedule is separated."""
    rows = [row for row in rows if row.measured]  # a predicted row was never tested
    if not rows or rows[0].n_finished == 0:
        return ()
    return tuple(row.label for row in rows[1:] if not separated(row))


def verdict(rows: Sequence[LeaderboardRow], ran: Mapping[str, Any],
            study_tie: Sequence[str] = ()) -> list[str]:
    """The verdict's sentences (see the module docstring); ``ran`` is the study's entry of
    DIR/parallel.json (empty when not recorded). ``study_tie``: a predict study's own tie
    group (its record's), which adds the untrained candidates whose predicted interval
    reaches the best (lrscope.study.predict.race.contenders): those still predicted rows here
    keep the top from being a winner; the trained ones are tested as any (:func:`tie_group`)."""
    group = set(tie_group(rows))
    within = [row.label for row in rows if not row.measured and row.label in study_tie]
    predicted = sum(not row.measured for row in rows) - len(within)
    rows = [row for row in rows if row.measured]  # what was trained; predictions said below
    if not rows:
        return ["No trial has a result yet.", how_it_ran_text(ran)]
    best = rows[0]
    if best.n_finished == 0:
        return [NOTHING_FINISHED, how_it_ran_text(ran)]
    metric = best.metric
    tie = [row for row in rows[1:] if row.label in group]
    ranked = f"by the {ranked_on_text(metric, 'short')}: {metric.text(best.rank_loss, 3)}"
    if tie or within:  # the top is a tie: the group is the answer, not its first row
        sentences = [f"No winner: {best.label} ranks first, {ranked}, but the study cannot "
                     "separate it from the rest of its tie group."]
    else:
        sentences = [f"Best: {best.label}, {ranked}."]
    seeds = best.n_trials
    at_seeds = f"{seeds} seed" + "s" * (seeds != 1)
    compared = f"the final {best.versus_on.label}"
    others = len(rows) - 1
    if others == 0:
        sentences.append("It is the only schedule " + ("trained." if within or predicted
                                                       else "compared."))
    elif not tie:
        trained = " trained" if within or predicted else ""
        sentences.append(f"Every other{trained} schedule differs from it at {at_seeds} (adjusted "
                         f"p < {ALPHA:.2g} on {compared}).")
    else:
        names = ", ".join(row.label for row in tie)
        verb = "is" if len(tie) == 1 else "are"
        apart = others - len(tie)
        lead = (f"Nothing differs from the best at {at_seeds}: " if apart == 0 else
                f"{apart} of {others} other schedules {'differs' if apart == 1 else 'differ'} "
                f"from the best at {at_seeds}; the rest do not: ")
        sentences.append(f"{lead}{names} {verb} not separated from it (adjusted p ≥ "
                         f"{ALPHA:.2g} on {compared}).")
        sentences.append(resolution_text(tie, best))
    if within:
        sentences.append(WITHIN_REACH.format(names=", ".join(within)))
    if predicted:
        sentences.append(PREDICTED_NOTE.format(n=predicted, s="" if predicted == 1 else "s"))
    sentences.append(how_it_ran_text(ran))
    return sentences


def resolution_text(tie: Sequence[LeaderboardRow], best: LeaderboardRow) -> str:
    """What more seeds would resolve: for the tied schedule closest to the best, the seeds at
    which the same adjusted test would flag its gap, at the noise measured so far."""
    unit = best.versus_on.label
    few = [row.label for row in tie if row.vs_best.method == "not enough seeds"]
    tested = [row for row in tie if row.vs_best.sd is not None
              and row.vs_best.difference is not None]
    parts = []
    if tested:
        closest = min(tested, key=lambda row: abs(row.vs_best.difference or 0.0))
        c = closest.vs_best
        assert c.sd is not None and c.difference is not None
        gap, sd = abs(c.difference), c.sd
        needed = seeds_to_resolve(gap, sd, c.comparisons)
        noise = f"At the noise measured (paired differences vary by {sd:.2g} across seeds)"
        if gap == 0:
            parts.append(f"{closest.label} ended exactly where the best did on every seed: no "
                         "number of seeds separates them.")
        elif needed is None:
            parts.append(f"{noise}, even {MAX_SEEDS} seeds would not resolve the gap of "
                         f"{gap:.2g} in {unit} between {closest.label} and the best: for "
                         "practical purposes they are equal.")
        else:
            parts.append(f"{noise}, about {needed} seeds would resolve the gap of {gap:.2g} in "
                         f"{unit} between {closest.label} and the best.")
    if few:
        parts.append(f"{', '.join(few)} shared fewer than {MIN_PAIRS} seeds with the best: "
                     f"nothing can be tested below {MIN_PAIRS} seeds.")
    return " ".join(parts)


def how_it_ran_text(ran: Mapping[str, Any]) -> str:
    """The study's wall time, device, parallel mode and versions in one sentence.

    >>> how_it_ran_text({"study_wall_s": 771.4, "device": "cpu", "mode": "processes",
    ...                  "workers": 2, "threads": 1, "torch_version": "2.13.0",
    ...                  "lrscope_version": "0.1.0"})
    ... # doctest: +NORMALIZE_WHITESPACE
    'Ran in 12 min 51 s on cpu, parallel processes (2 workers x 1 torch thread), torch 2.13.0,
    lrscope 0.1.0.'
    """
    if not ran.get("mode"):
        return ("How it ran (wall time, device, parallel mode, torch and lrscope versions) "
                "was not recorded with this study.")
    wall = ran.get("study_wall_s", ran.get("wall_s"))
    parts = [f"Ran in {duration_text(float(wall))}" if isinstance(wall, (int, float)) else "Ran"]
    if ran.get("device"):
        parts.append(f" on {ran['device']}")
    mode = f", parallel {ran['mode']}"
    workers, threads = ran.get("workers"), ran.get("threads")
    if isinstance(workers, int) and isinstance(threads, int):
        who = "Ray's workers" if workers == 0 else f"{workers} worker{'s' * (workers != 1)}"
        mode += f" ({who} x {threads} torch thread{'s' * (threads != 1)})"
    parts.append(mode)
    for key, name in (("torch_version", "torch"), ("lrscope_version", "lrscope")):
        parts.append(f", {name} {ran.get(key) or 'not recorded'}")
    return "".join(parts) + "."


def duration_text(seconds: float) -> str:
    """``'8.5 s'``, ``'12 min 51 s'``, ``'2 h 05 min'``.

    >>> duration_text(8.46), duration_text(771.4), duration_text(7512)
    ('8.5 s', '12 min 51 s', '2 h 05 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
