"""The law's side of a predict study's state: the loss-curve law fitted to the study's runs
(and probes), every candidate's prediction from it, and the schedule optimised on it.

:class:`LawPart` is the base of :class:`.state.StudyState`, which keeps the trials. Its
contract, what the study supplies: ``plan``, ``lrs`` (candidate label -> its LR per step),
``probes`` (:class:`.probes.Probes`), ``may_optimise``, and :meth:`LawPart.curve` and
:meth:`LawPart.metric` read from the store. Values are the law's: lower is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lrscope.study.plan import StudyPlan
from lrscope.study.predict.choice import lr_sequences
from lrscope.study.predict.probes import Probes
from lrscope.study.predict.race import Interval, turns_back
from lrscope.study.recipes import explicit
from lrscope.study.run import trial_key
from lrscope.study.stats.ranking import RankingMetric

if TYPE_CHECKING:
    from lrscope.study.predict.law import Curve, FittedLaw


class LawPart:
    """The law, its parameters and the candidates' predictions (see the module docstring)."""

    plan: StudyPlan
    lrs: dict[str, np.ndarray]
    probes: Probes
    may_optimise: bool

    def __init__(self) -> None:
        from lrscope.study.predict.law import PREFERRED_LAW  # scipy: only when predicting

        self.law = PREFERRED_LAW
        self.fitted: FittedLaw | None = None  # the law the predictions come from
        self.params: dict[str, float] = {}
        self.predictions: dict[str, Interval] = {}
        self.curves: dict[str, tuple[float, ...]] = {}  # predicted, at curve_steps
        self.curve_steps: tuple[int, ...] = ()
        self.optimised: str | None = None  # the optimised schedule's spec, once chosen
        self.why_not_fitted = ""

    def curve(self, label: str, seed: int) -> Curve | None:
        """The trial's selection-metric curve, None unless it finished with one."""
        raise NotImplementedError

    def metric(self) -> RankingMetric:
        raise NotImplementedError

    def fit(self, labels: Sequence[str], probes: bool = False) -> FittedLaw | None:
        """The law fitted to these trials (at the first seed), and to every probe's curve with
        ``probes``; None, with why, when a fit run has no curve (diverged, failed) or the law
        cannot be fitted."""
        from lrscope.study.predict.law import LawFitError, fit_law

        seed = self.plan.seeds[0]
        curves = []
        for label in labels:
            curve = self.curve(label, seed)
            if curve is None:
                self.why_not_fitted = (f"the fit run {trial_key(label, seed)} did not finish "
                                       "with a finite value, so the law cannot be fitted")
                return None
            overfits = turns_back([int(step) for step in curve.steps], list(curve.values))
            if overfits:
                self.why_not_fitted = (f"the fit run {trial_key(label, seed)} overfits: "
                                       f"{overfits}; the law does not hold")
                return None
            curves.append(curve)
        full = curves[0] if curves else None
        if probes:  # a probe without a finite curve (diverged at once) tells the law nothing
            curves += [curve for curve in self.probes.curves().values()
                       if curve is not None and np.all(np.isfinite(curve.values))]
        try:
            fitted = fit_law(curves, self.law, seed=0)
        except LawFitError as err:
            self.why_not_fitted = f"the law could not be fitted ({err})"
            return None
        if full is not None:
            self.curve_steps = tuple(int(s) for s in full.steps)
        return fitted

    def predict(self, fitted: FittedLaw) -> None:
        """Every candidate's final value and interval, and its curve at the evaluation steps."""
        self.fitted, self.law, self.params = fitted, fitted.law, dict(fitted.params)
        for label in self.lrs:
            self._predict(fitted, label)

    def _predict(self, fitted: FittedLaw, label: str) -> None:
        """``label``'s final value and interval, and its curve at the evaluation steps."""
        lrs = self.lrs[label]
        value, low, high = fitted.final(lrs)
        self.predictions[label] = (float(value), float(low), float(high))
        self.curves[label] = tuple(float(v) for v in fitted.predict(
            lrs, np.asarray(self.curve_steps, dtype=float)))

    def optimise(self, best: str) -> str | None:
        """The schedule the law predicts best at ``best``'s peak LR and warmup (its label, a
        spec; predicted like a candidate), or None: no law, one process of several, or the
        law's optimum is already a candidate."""
        from lrscope.study.predict.optimise import optimise_schedule

        if self.fitted is None or not self.may_optimise:
            return None
        lrs = self.lrs[best]
        peak = float(np.max(lrs))
        warmup = int(np.argmax(lrs >= peak * (1 - 1e-9)))  # steps before the peak is reached
        spec = optimise_schedule(self.fitted, self.plan.steps, peak, warmup)
        (label, lrs), = lr_sequences(explicit([spec], self.plan.steps),
                                     self.plan.steps).items()
        if label in self.lrs:
            return None
        self.optimised, self.lrs[label] = spec, lrs
        self._predict(self.fitted, label)
        return label

    def impossible(self) -> str:
        """Why the law's predictions cannot be trusted whatever a run measured: it predicts
        for some candidate a value the metric cannot take (a negative loss, an accuracy above
        1: :func:`lrscope.study.stats.uncertainty.metric_range`), the one furthest out named;
        '' when none."""
        from lrscope.study.stats.uncertainty import metric_range

        metric = self.metric()
        low, high = metric_range(metric.name)
        values = {label: shown(metric, value) for label, (value, _, _) in self.predictions.items()}
        outside = {label: value for label, value in values.items() if not low <= value <= high}
        if not outside:
            return ""
        label = max(outside, key=lambda label: max(low - outside[label], outside[label] - high))
        value = outside[label]
        bound = f"below {low:g}" if value < low else f"above {high:g}"
        return f"it predicts {value:.3g} for {label}, and a {metric.label} cannot be {bound}"

    def ranked_predictions(self) -> list[str]:
        return sorted(self.predictions, key=lambda label: (self.predictions[label][0], label))


def shown(metric: RankingMetric, value: float) -> float:
    """A lower-is-better value in the metric's own direction: the law's orientation
    (:func:`.curves.lower_is_better`: an accuracy as its error rate, another maximised metric
    negated) undone, which is the same rule applied again.

    >>> shown(RankingMetric.parse("accuracy"), 0.05), shown(RankingMetric(), 0.3)
    (0.95, 0.3)
    """
    from lrscope.study.predict.curves import lower_is_better

    return float(lower_is_better(metric, np.asarray(value, dtype=float)))
