"""From a range-test result to a suite of schedules: the rules, written down in code.

Each recipe is a pure function ``(anchor LRs, total_steps) -> Suite``; the rules it applied are
kept as text beside the schedules so the report can say exactly how each schedule was chosen.

``smith`` follows Leslie Smith's reading of the range test (Smith 2017, 2018):

* Every schedule peaks at one LR, ``max_lr``: the range test's headline suggestion as it is,
  with no further factor (the one ``lrscope find`` prints,
  :data:`lrscope.rangetest.suggest.HEADLINE`: half the LR of the zero-lag curve's lowest loss,
  a tenth when the descent is weak; benchmarks/suggestion_quality.py chose it as one-cycle's
  ``max_lr``). The suite then compares schedule shapes, never a shape at one LR against another
  at a different LR. ``lr_scales`` (:func:`with_lr_scales`, ``--lr-scales``) runs each schedule
  at several multiples of its peak and ranks each at its own best.
* ``base_lr`` for cyclic schedules is ``max_lr / 4`` (Smith: a third to a quarter of max_lr).
* onecycle uses torch's defaults (div_factor 25, final_div_factor 1e4, pct_start 0.3).
* step and exponential decays start at ``max_lr``, as the seed study's did; step halves the LR
  five times over the run, exponential ends 100x (and 1000x) lower.
* cosine (5% warmup) and warmup-stable-decay (5% warmup, last 20% cooled down) start from max_lr.
* constant at ``max_lr`` is the no-schedule reference.

A recipe needs a run of at least :data:`MIN_STEPS` steps (smith: 2, as its cosine and WSD
schedules warm up for at least one step and need one more after it); a shorter budget is an
error that names ``steps`` (:func:`check_budget`), raised before any range test runs.

``seed`` is the seed study's suite verbatim, whatever the range test says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrscope import schedules
from lrscope.errors import InputError, did_you_mean
from lrscope.schedules import Schedule, parse


@dataclass(frozen=True)
class Anchors:
    """The LRs a recipe is built from (read off a range test)."""

    suggestion: float  # the headline: every schedule's peak (max_lr)
    lr_at_min_loss: float | None = None  # only read to warn that the ramp stopped short
    diverged_lr: float | None = None
    min_at_end: bool = False  # the lowest loss sat at the ramp's last LRs: the ramp was too narrow

    @property
    def max_lr(self) -> float:
        """The peak LR of every schedule of the suite: the headline suggestion."""
        return float(self.suggestion)


@dataclass(frozen=True)
class Suite:
    """Schedules to compare, each with a stable label, and the rules that produced them."""

    schedules: tuple[tuple[str, Schedule], ...]
    recipe: str
    rules: str
    warnings: tuple[str, ...] = ()  # what the user should know about how the suite was built
    # label -> (base label, LR scale) for suites run at several peak-LR scales (with_lr_scales)
    origins: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    def labels(self) -> list[str]:
        return [label for label, _ in self.schedules]

    def trial_config(self, label: str) -> dict[str, Any]:
        """What a trial of ``label`` stores beyond the budget: its scale and base schedule,
        when the suite was scaled (results group by the base label, never by family)."""
        if label not in self.origins:
            return {}
        base, scale = self.origins[label]
        return {"lr_scale": scale, "base": base}


def _round(lr: float) -> float:
    """Three significant digits: the range test is not more precise, and labels stay readable."""
    return float(f"{lr:.3g}")


# The shortest run each recipe builds its schedules for (smith: cosine and WSD warm up for at
# least one step, and a warmup must leave a step after it).
MIN_STEPS: Mapping[str, int] = {"smith": 2, "seed": 1}


def budget_problem(recipe: str, total_steps: int) -> str | None:
    """Why ``recipe`` cannot build a suite for ``total_steps`` steps, or None when it can."""
    minimum = MIN_STEPS.get(recipe, 1)
    if total_steps >= minimum:
        return None
    why = " (its cosine and WSD schedules warm up for a step first)" if recipe == "smith" else ""
    return (f"recipe {recipe!r} needs at least {minimum} steps{why}; give steps >= {minimum} "
            "or list the schedules")


def check_budget(recipe: str, total_steps: int) -> None:
    """InputError naming ``steps`` when the run is too short for ``recipe`` (see MIN_STEPS).

    >>> check_budget("smith", 2)  # the shortest run smith builds: no error
    >>> budget_problem("smith", 1) is not None, budget_problem("seed", 1)
    (True, None)
    """
    problem = budget_problem(recipe, total_steps)
    if problem is not None:
        raise InputError(f"steps = {total_steps}: {problem}")


def smith(anchors: Anchors, total_steps: int) -> Suite:
    """Smith's rules (module docstring) for a run of ``total_steps`` optimizer steps.

    >>> suite = smith(Anchors(suggestion=0.05, lr_at_min_loss=0.1), total_steps=1000)
    >>> suite.labels()[:2]
    ['constant(lr=0.05)', 'step(lr=0.05, step_size=200, gamma=0.5)']
    """
    check_budget("smith", total_steps)
    top = _round(anchors.max_lr)
    base = _round(top / 4)
    step_size = max(1, total_steps // 5)
    warmup = max(1, total_steps // 20)
    # six digits: gamma**total_steps must still land near the intended drop after 5000 steps
    gammas = [float(f"{(1 / drop) ** (1 / total_steps):.6g}") for drop in (100, 1000)]
    cycle = max(1, total_steps // 8)
    specs = [
        f"constant(lr={top})",
        f"step(lr={top}, step_size={step_size}, gamma=0.5)",
        *(f"exponential(lr={top}, gamma={g})" for g in gammas),
        f"onecycle(max_lr={top})",
        f"cyclic(base_lr={base}, max_lr={top}, step_size_up={cycle}, step_size_down={2 * cycle})",
        f"cosine(lr={top}, warmup_steps={warmup})",
        f"wsd(lr={top}, warmup_steps={warmup}, decay_steps={max(1, total_steps // 5)})",
    ]
    rules = (
        f"Every schedule peaks at the same LR, max_lr = {top}, the range test's headline "
        "suggestion, so the suite compares shapes, not LRs (--lr-scales / lr_scales= gives each "
        "schedule its own best peak); constant runs at max_lr; cyclic from base_lr = max_lr/4 "
        f"= {base}, up {cycle} / down {2 * cycle} steps; step halves every {step_size} steps; "
        "exponential ends 100x and 1000x lower; onecycle with torch's defaults; cosine and WSD "
        f"warm up over {warmup} steps."
    )
    warnings = range_test_warnings(anchors)
    if warnings:
        rules += " Warning: " + " ".join(warnings)
    return dataclasses.replace(_suite("smith", specs, total_steps, rules), warnings=warnings)


def range_test_warnings(anchors: Anchors) -> tuple[str, ...]:
    """What the range test could not tell the recipe, one sentence each.

    >>> range_test_warnings(Anchors(suggestion=0.1, lr_at_min_loss=10.0, min_at_end=True))[0]
    'the range test never reached its minimum (the lowest loss is at its last LRs, 10): \
max_lr may be too low; rerun with a higher --range-end.'
    """
    if not anchors.min_at_end:
        return ()
    return (f"the range test never reached its minimum (the lowest loss is at its last LRs, "
            f"{anchors.lr_at_min_loss:.3g}): max_lr may be too low; rerun with a higher "
            "--range-end.",)


# The seed's compared schedules: its list without the range-test ramp.
SEED_SPECS = tuple(spec for spec in schedules.SEED_SPECS if not spec.startswith("ramp("))


def seed(anchors: Anchors | None, total_steps: int) -> Suite:
    """The seed study's schedules, as it ran them (all stepped once per batch).

    >>> len(seed(None, 2345).schedules)
    8
    """
    rules = ("The seed study's schedules, unchanged: StepLR(100, 0.5), ExponentialLR "
             "0.99/0.996/0.999 from lr 1, OneCycleLR max_lr 1 and 1.1, "
             "CyclicLR base 0.01 and 0.1, max 1, up 50 down 100.")
    return _suite("seed", list(SEED_SPECS), total_steps, rules)


def explicit(specs: list[str], total_steps: int) -> Suite:
    """Schedules listed by the user, in their order."""
    return _suite("explicit", specs, total_steps, "Schedules listed explicitly by the user.")


def _suite(name: str, specs: list[str], total_steps: int, rules: str) -> Suite:
    schedules = tuple((spec, parse(spec, total_steps=total_steps)) for spec in specs)
    labels = [label for label, _ in schedules]
    if len(set(labels)) != len(labels):
        dup = next(label for label in labels if labels.count(label) > 1)
        raise InputError(f"schedules: {dup!r} is listed twice; list each schedule once")
    return Suite(schedules, name, rules)


LABEL_DIGITS = 6  # significant digits of a scaled LR: readable labels, well within noise


def scale_text(scale: float) -> str:
    """``x0.3``, ``x1``, ``x3``: how a scale is shown."""
    return f"x{scale:g}"


def lr_scales_problem(scales: Sequence[Any]) -> str | None:
    """What is wrong with ``scales`` as ``lr_scales`` (None when they are distinct positive
    numbers): the one check of the config's ``lr_scales`` and :func:`lrscope.compare`'s. An
    empty list would run a study with no schedules.

    >>> lr_scales_problem([0.3, 1, 3]) is None, lr_scales_problem([])
    (True, 'must be distinct positive multiples of the peak LR, e.g. [0.3, 1, 3]')
    """
    numbers = all(isinstance(s, int | float) and not isinstance(s, bool) for s in scales)
    if not scales or not numbers or any(not s > 0 for s in scales) or len(set(scales)) != len(
            scales):
        return "must be distinct positive multiples of the peak LR, e.g. [0.3, 1, 3]"
    return None


def with_lr_scales(suite: Suite, scales: Sequence[float] | None, total_steps: int) -> Suite:
    """Every schedule of ``suite`` at each multiple of its peak LR (``None``: the suite as it
    is). A scaled schedule's label is its spec (``onecycle(max_lr=1.8)``); at scale 1 it keeps
    the suite's own label.

    >>> suite = with_lr_scales(explicit(["constant(lr=0.05)"], 10), [0.3, 1, 3], 10)
    >>> suite.labels(), suite.trial_config("constant(lr=0.15)")
    (['constant(lr=0.015)', 'constant(lr=0.05)', 'constant(lr=0.15)'], \
{'lr_scale': 3.0, 'base': 'constant(lr=0.05)'})
    """
    if scales is None:
        return suite
    entries: list[tuple[str, Schedule]] = []
    origins: dict[str, tuple[str, float]] = {}
    for base, schedule in suite.schedules:
        for scale in scales:
            if scale == 1:
                label, scaled = base, schedule
            else:
                label = parse(base).scaled(scale, digits=LABEL_DIGITS).spec()
                scaled = parse(label, total_steps=total_steps)
            if label in origins:
                other, at = origins[label]
                raise InputError(
                    f"lr_scales: {other} at {scale_text(at)} and {base} at {scale_text(scale)} "
                    f"are the same schedule, {label}; list each schedule once")
            entries.append((label, scaled))
            origins[label] = (base, float(scale))
    shown = ", ".join(scale_text(s) for s in scales)
    rules = (f"{suite.rules} Every schedule ran at {shown} its peak LR (lr_scales: every LR of "
             "the schedule multiplied); each is ranked at its own best scale, chosen on the "
             "leaderboard's ranking metric, so each peaks at its own best LR.")
    return dataclasses.replace(suite, schedules=tuple(entries), rules=rules, origins=origins)


RECIPES: Mapping[str, Callable[..., Suite]] = {"smith": smith, "seed": seed}


def build_suite(recipe: str, anchors: Anchors | None, total_steps: int) -> Suite:
    if recipe not in RECIPES:
        raise InputError(f"recipe: unknown recipe {recipe!r}{did_you_mean(recipe, RECIPES)}; "
                         f"choose one of {', '.join(RECIPES)}")
    if recipe == "smith" and anchors is None:
        raise InputError("recipe: 'smith' needs a range test; enable it or list schedules")
    check_budget(recipe, total_steps)
    return RECIPES[recipe](anchors, total_steps)
