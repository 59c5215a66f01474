"""The phases of a ``strategy="predict"`` study with probes (:mod:`.probes`; every suite but one
too short to compress or of one candidate): every candidate probed; the best-probed trained at
full length; then, while the budget allows one more run, the law fitted to the probes and the
full-length runs so far names the next (see :func:`probe_phases`). Like every phase of the
study, a generator of batches of trial keys (:data:`.probes.PROBES` asks for the probe study), a
pure function of the store.
"""

from __future__ import annotations

from collections.abc import Generator

from lrscope.study.predict.probes import BY_LAWS_ORDER, BY_PROBES, contradicted, scaled_line
from lrscope.study.predict.race import check_line, gap
from lrscope.study.predict.state import StudyState
from lrscope.study.run import trial_key
from lrscope.study.store.predictions import PredictionRecord

Decisions = Generator[set[str], None, PredictionRecord]


def probe_phases(state: StudyState) -> Decisions:
    """The phases with probes (:mod:`.probes`): every candidate probed; the best-probed
    trained at full length; then, while the budget allows one more run, the law fitted to the
    probes and the full-length runs so far names the next (the best it predicts, the schedule
    optimised on it among them once the law passed its self-check: its first prediction of a
    run it was not fitted on). A law that cannot be fitted or fails the check is said once;
    the rest then go in the failed law's order (its values are off, its order is not: on the
    benchmark it ranked the untrained better than the probes did, Kendall tau 0.87/0.87/0.33
    against 0.47/0.73/-0.33 where the check failed), or the probes' where no law was fitted.
    With ``lr_scales`` no law is fitted (:data:`.probes.SCALED`): the full-length runs follow
    the probes' order.
    When every candidate is trained and budget is left, the seeds race (:meth:`.StudyState.
    race_seeds`, on the measured rows alone, whether or not the law was trusted)."""
    s0 = state.plan.seeds[0]
    count = len(state.probes.labels)
    state.say(f"predict: probing every candidate at 1/{state.probes.factor} of its length "
              f"({count} run{'s' * (count != 1)} of {state.probes.plan.steps} steps, seed {s0})")
    yield from state.probed()
    order = state.probes.order()
    trained = [order[0]]
    yield from state.train(trained, s0)
    trusted, optimised = state.uses_law, False
    if not state.uses_law:
        state.say(scaled_line(state.probes.boost))
    rest, by = order, BY_PROBES  # what names the next runs once the law is not trusted
    while True:
        fitted = state.fit(trained, probes=True) if trusted else None
        if trusted and fitted is None:
            trusted = False
            state.say(f"predict: {state.why_not_fitted}; training the best-probed candidates "
                      "instead")
        said, spread = None, 0.0
        if fitted is not None:
            state.predict(fitted)
            state.fit_trials = tuple(trial_key(label, s0) for label in trained)
            if not optimised and state.check is not None and state.check.passed:
                optimised = True  # item 2: the law's own best, once it has passed its check
                state.optimise(min(trained, key=lambda label: (state.measured(label, s0),
                                                                label)))
            ranked = state.ranked_predictions()
            spread = gap({label: value for label, (value, _, _) in state.predictions.items()})
        else:
            ranked = rest
        untried = [label for label in ranked if label not in trained]
        if not untried or state.budget.affordable(state.spent(), 1) == 0:
            break
        target = untried[0]
        if fitted is not None and state.check is None:
            said = state.predictions[target]
        yield from state.train([target], s0)
        trained.append(target)
        if said is not None:
            check = state.run_check(target, said, spread, fitted_on=trained[:-1])
            if not check.passed:
                trusted = False
                rest, by = state.ranked_predictions(), BY_LAWS_ORDER
                state.say(f"{check_line(check)}; training the next in the law's order "
                          "instead, its values not trusted")
    stopped = "budget" if untried else "all trained"
    if not untried:  # everything trained, budget left: race the seeds (on measurements only,
        stopped = yield from state.race_seeds()  # trusted law or not)
    if state.spent() > state.budget.limit:
        state.say(f"predict: the range test, the probes and the first full-length run took "
                  f"{state.percent()} of the full study's steps, beyond the budget of "
                  f"{state.budget.fraction:.0%}")
    state.adopt_the_rest()  # the folder's other trials: measured, so never named untrained
    if not trusted:
        measured = state.trained(s0)  # the trained runs and the folder's others
        left = [label for label in rest if label not in measured]
        if left:
            state.say(f"predict: not trained, by {by}: {', '.join(left)}")
            at_full = {label: state.measured(label, s0) for label in trained}
            if by == BY_PROBES and (against := contradicted(order, at_full)):
                state.say(f"predict: {against}: their order of the rest may not hold at "
                          "full length")  # opens with PROBES_CONTRADICTED
    return state.finish(stopped, trusted, rest, by)
