"""``confirm_seeds=N``: retrain the study's best, and the schedules it could not separate from
it, at N fresh seeds, for a test score free of the selection's luck.

Which schedules (:func:`candidates`): the leaderboard's top row, and every row whose "vs best"
comparison does not show it worse than the best (adjusted p >= 0.05, i.e. its simultaneous
interval includes 0, or too few seeds to test, or no test loss to test on); a row whose every
seed diverged or failed is not retrained (it ranks below every finished one). A row the test
shows *better* than the best (possible: the best is picked on validation, the test reports) is
a contender too and is retrained. Nothing finished: nothing to confirm.

Which seeds (:func:`fresh_seeds`): the N smallest above the largest seed the study ran (or, past
the largest seed there is, the smallest it did not run): deterministic, so a rerun finds them
done, and never one of the study's.

The trials are ordinary trials of a study run of their own, ``<study>/confirm`` (see
:mod:`lrscope.study.stats.confirmation`), run by the study's machinery (:func:`run_study`: leased,
resumable, ``parallel`` as the study's): a rerun trains only what is missing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from lrscope._checks import MAX_SEED
from lrscope.engines.base import Engine
from lrscope.errors import InputError, InputTypeError
from lrscope.study.plan import StudyPlan, TrialEvent
from lrscope.study.sink import TrialSink
from lrscope.study.stats.confirmation import confirm_run_name
from lrscope.study.stats.uncertainty import CONFIDENCE

SEPARATED = 1 - CONFIDENCE  # an adjusted "vs best" p below this separates a row from the best


def check_confirm_seeds(where: str, value: Any) -> int | None:
    """``value`` as a count of fresh seeds (None: no confirmation); one InputError line else.

    >>> check_confirm_seeds("compare", 2), check_confirm_seeds("compare", None)
    (2, None)
    >>> check_confirm_seeds("compare", 0)
    Traceback (most recent call last):
    lrscope.errors.InputError: compare: confirm_seeds=0 must be a whole number >= 1 (how many \
fresh seeds retrain the best), or None for no confirmation
    """
    if value is None:
        return None
    message = (f"{where}: confirm_seeds={value!r} must be a whole number >= 1 (how many fresh "
               "seeds retrain the best), or None for no confirmation")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(message)
    if value < 1:
        raise InputError(message)
    return value


def candidates(rows: Sequence[Any]) -> list[str]:
    """The labels to confirm, best first, from leaderboard rows (best first; see the module
    docstring).

    >>> from lrscope.study.stats.uncertainty import BEST, Comparison
    >>> from types import SimpleNamespace as Row
    >>> rows = [Row(label="a", n_finished=3, vs_best=BEST),
    ...         Row(label="b", n_finished=3, vs_best=Comparison("paired t", 3, 0.1, -0.1, 0.3,
    ...                                                         0.4)),
    ...         Row(label="c", n_finished=3, vs_best=Comparison("paired t", 3, 0.5, 0.2, 0.8,
    ...                                                         0.01)),
    ...         Row(label="d", n_finished=2, vs_best=Comparison("not enough seeds", 2, 0.9,
    ...                                                         None, None, None)),
    ...         Row(label="e", n_finished=0, vs_best=Comparison("not enough seeds", 2, 9.0,
    ...                                                         None, None, None))]
    >>> candidates(rows)
    ['a', 'b', 'd']
    """
    if not rows or rows[0].n_finished == 0:
        return []
    return [rows[0].label] + [row.label for row in rows[1:]
                              if row.n_finished > 0 and not _shown_worse(row.vs_best)]


def _shown_worse(versus: Any) -> bool:
    """Whether the "vs best" test separates a row from the best, as worse."""
    p, difference = versus.p_value, versus.difference
    return (p is not None and difference is not None and math.isfinite(p)
            and p < SEPARATED and difference > 0)


def fresh_seeds(taken: Iterable[int], count: int) -> tuple[int, ...]:
    """``count`` seeds none of ``taken``: the smallest above the largest taken one, then (past
    the largest seed there is) the smallest free ones.

    >>> fresh_seeds([0, 1, 2], 2), fresh_seeds([7, 2], 3), fresh_seeds([MAX_SEED], 2)
    ((3, 4), (8, 9, 10), (0, 1))
    """
    used = set(taken)
    start = max(used, default=-1) + 1
    pool = itertools.chain(range(start, MAX_SEED + 1), range(0, start))
    return tuple(itertools.islice((s for s in pool if s not in used), count))


def confirm_plan(plan: StudyPlan, labels: Sequence[str], seeds: Sequence[int],
                 study_config: dict[str, Any]) -> StudyPlan:
    """The confirmation of ``plan`` as a study of its own: ``labels`` (each label is its
    schedule's spec, as the study parsed it) at ``seeds``, trained exactly as the study's
    trials (task, budget, optimizer, options, runner); no range test, no LR scales (a scaled
    schedule's label is its scaled spec)."""
    return StudyPlan(
        name=confirm_run_name(plan.name), task=plan.task, seeds=tuple(seeds), steps=plan.steps,
        eval_every=plan.eval_every, make_optimizer=plan.make_optimizer,
        schedules=tuple(labels), range_test=None, parallel=plan.parallel,
        runner_options=plan.runner_options,
        options=plan.options,
        # what the report reads: the latest confirmation's schedules and seeds
        report_only=("latest", "rank_by", "target_accuracy"),
        config={"confirms": plan.name, "steps": plan.steps, "seeds": list(seeds),
                "schedules": list(labels), "eval_every": plan.eval_every,
                "latest": {"schedules": list(labels), "seeds": list(seeds)},
                "rank_by": study_config.get("rank_by"),
                "target_accuracy": study_config.get("target_accuracy")})


def run_confirmation(plan: StudyPlan, out: Path, engine: Engine, count: int,
                     labels: Sequence[str],
                     progress: Callable[[TrialEvent], None] | None = None,
                     announce: Callable[[str], None] | None = None,
                     sink: TrialSink | None = None) -> list[str]:
    """Train the confirmation of the study ``plan`` (already run into ``out``): the main rank
    picks the schedules and the seeds from the store, the other ranks of a distributed engine
    hear them (``labels`` are the study's suite, which every rank built). Returns the labels
    confirmed (empty when nothing finished). ``sink`` hears its trials as the study's."""
    from lrscope.study.run import check_resumable, run_study

    chosen: list[str] = []
    seeds: tuple[int, ...] = ()
    study_config: dict[str, Any] = {}
    if engine.is_main:
        chosen, seeds, study_config = _choose(plan, out, count)
    if engine.world_size > 1:  # the other ranks hear the main rank's choice, label by label
        if not _from_main(engine, float(set(chosen) <= set(labels))):
            raise InputError("confirm_seeds: the best or a rival is a schedule of an earlier "
                             "call on this study; list every schedule of the study in this call "
                             "to confirm it under a distributed engine")
        heard = [label for label in labels if _from_main(engine, float(label in chosen))]
        chosen = chosen if engine.is_main else heard  # the main rank keeps the best first
    if not chosen:
        return []
    seeds = tuple(_from_main(engine, float(seeds[i]) if engine.is_main else 0.0)
                  for i in range(count))
    confirmation = confirm_plan(plan, chosen, seeds, study_config)
    if engine.is_main:
        check_resumable(confirmation, out)
    run_study(confirmation, out, engine, progress=progress, announce=announce, sink=sink)
    return chosen


def _from_main(engine: Engine, value: float) -> int:
    """The main rank's ``value`` on every rank: only it contributes, so mean * world_size."""
    return round(engine.mean(value if engine.is_main else 0.0) * engine.world_size)


def _choose(plan: StudyPlan, out: Path, count: int) -> tuple[list[str], tuple[int, ...],
                                                            dict[str, Any]]:
    """(labels, fresh seeds, the study's stored config), read from the store in ``out``."""
    from lrscope.study.stats.leaderboard import leaderboard
    from lrscope.study.store import Store

    with Store.in_dir(out, create=False) as store:
        run = store.find_run(plan.name)
        if run is None:
            raise InputError(f"confirm_seeds: no study {plan.name!r} in {out}")
        taken = {t.seed for t in store.trials(run.id)} | set(plan.seeds)
        rows = leaderboard(store, run.id)
        return candidates(rows), fresh_seeds(taken, count), dict(run.config)
