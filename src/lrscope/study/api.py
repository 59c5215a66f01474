"""What a :func:`lrscope.compare` call means as a study: its arguments checked, its plan built.

:func:`prepare_compare` takes ``compare``'s arguments (documented there, in
:mod:`lrscope.session`, which runs the plan and writes the report) and returns the checked
:class:`PreparedCompare`; nothing has run yet. :class:`CompareResult` is what ``compare``
returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lrscope._checks import check_int, check_seeds
from lrscope.data.problem import Problem
from lrscope.data.scoring import LossFn, StepFn
from lrscope.data.tasks.base import Task
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.rng import preserved_rng
from lrscope.study.confirm import check_confirm_seeds
from lrscope.study.identity import study_identity
from lrscope.study.plan import StudyPlan, default_eval_every, steps_in_epochs
from lrscope.study.recipes import RECIPES, Suite, lr_scales_problem
from lrscope.study.stats.confirmation import Confirmation
from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.ranking import MINIMISED as RANKING_MINIMISED
from lrscope.study.stats.ranking import RankingMetric
from lrscope.study.store.predictions import Cost, Prediction
from lrscope.study.strategies import check_strategy
from lrscope.trials.trial import TrainOptions

MINIMISED = RANKING_MINIMISED  # kept for callers of the earlier name


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` returns: the ranked rows, the winner, where everything was written."""

    leaderboard: list[LeaderboardRow]  # best first
    # the top row, when the study separates it from every other; None when nothing finished
    # or when the top is a tie (``tie`` names the rest of the group; leaderboard[0] ranks first)
    best: str | None
    out: Path
    report_html: Path
    suite: Suite
    leaderboard_csv: Path | None = None
    parallel: str | None = None  # with parallel="auto": what it chose and why, in one line
    # trials of the run with no result (failed, interrupted, or running in another process):
    # the leaderboard lacks them until a rerun completes them
    missing: int = 0
    # the candidates the study could not separate from the best (lrscope.study.stats.verdict:
    # "vs best" adjusted p >= 0.05 or too few seeds), best first; may be empty
    tie: tuple[str, ...] = ()
    trials: int = 0  # the run's trials, ``missing`` of them without a result
    # with confirm_seeds=N: the best (and its inseparable rivals) at N fresh seeds
    confirmation: Confirmation | None = None
    # with strategy="predict" (lrscope.study.predict): the trial steps trained (range test
    # included), what the full study would train, and every candidate's prediction (its
    # ``trained`` says whether it was also measured); None / {} for a full study
    cost: Cost | None = None
    full_cost: int | None = None
    predictions: dict[str, Prediction] = field(default_factory=dict)
    # with strategy="predict": the candidates not trained, the one to train next first (by the
    # law's prediction when it passed its self-check, by its order when it failed it, by their
    # probes when no law was fitted)
    untrained: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedCompare:
    """A checked :func:`lrscope.compare` call: its plan, where it writes, on which engine."""

    plan: StudyPlan
    out: Path
    engine: LocalEngine
    quiet: bool
    confirm_seeds: int | None
    strategy: str = "full"  # or "predict" (lrscope.study.predict); not part of the study's
    budget: float | None = None  # identity: a rerun may change them (fraction of full steps)


def prepare_compare(model: Callable[[], nn.Module], optimizer: Callable[[Any], Any],
            train_data: Callable[[int], Iterable[Any]] | Task, *,
            loss_fn: LossFn | None = None, step_fn: StepFn | None = None,
            evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
            val_data: Iterable[Any] | None = None, test_data: Iterable[Any] | None = None,
            rank_by: str | tuple[str, str] = "loss", schedules: Sequence[str] | None = None,
            recipe: str = "smith", lr_scales: Sequence[float] | None = None,
            steps: int | None = None, epochs: int | None = None,
            seeds: int | Sequence[int] = 3, device: str = "auto", parallel: str = "auto",
            out: str | Path | None = None, name: str = "study", eval_every: int | None = None,
            precision: str | None = None, clip_grad_norm: float | None = None,
            accumulation_steps: int = 1, range_test: RangeTestSettings | None = None,
            quiet: bool = False, ray_address: str | None = None,
            ray_resources: Mapping[str, float] | None = None,
            threads: int | None = None, confirm_seeds: int | None = None,
            strategy: str = "full", budget: float | None = None) -> PreparedCompare:
    """:func:`lrscope.compare`'s arguments checked (an InputError before any work) and its
    plan built; nothing runs. See :func:`lrscope.session.compare` for what each one means."""
    if not callable(model) or not callable(optimizer):
        raise InputTypeError("compare: model and optimizer must be functions: model() -> "
                             "nn.Module, optimizer(params) -> torch optimizer")
    strategy, budget = check_strategy("compare", strategy, budget)
    metric = _rank_by(rank_by)
    confirm = check_confirm_seeds("compare", confirm_seeds)
    if isinstance(train_data, Task):
        _check_task_alone(train_data, model, loss_fn=loss_fn, step_fn=step_fn,
                          evaluate=evaluate, val_data=val_data, test_data=test_data)
        problem: Task | Problem = train_data
    else:
        problem = Problem(name, model, train_data, loss_fn, step_fn, evaluate, val_data,
                          test_data)
    if recipe not in RECIPES:
        raise InputError(f"compare: recipe={recipe!r} is not one of {', '.join(RECIPES)}")
    if threads is not None:
        check_int("compare", "threads", threads)
    if lr_scales is not None and (problem_text := lr_scales_problem(list(lr_scales))):
        raise InputError(f"compare: lr_scales={list(lr_scales)!r} {problem_text}")
    options = TrainOptions(precision, clip_grad_norm, accumulation_steps)
    total = _steps(steps, epochs, problem.steps_per_epoch, accumulation_steps)
    seed_list = check_seeds("compare", seeds)
    engine = LocalEngine(device)
    make_optimizer = functools.partial(_build, optimizer)
    with preserved_rng():  # what a rerun must match: the model, optimizer, loss and data
        identity = study_identity(problem, make_optimizer, {} if isinstance(problem, Task) else {
            "loss_fn": loss_fn, "step_fn": step_fn, "evaluate": evaluate, "val_data": val_data,
            "test_data": test_data})
    plan = StudyPlan(  # refuses a runner it cannot make (name, settings, a missing extra)
        name=name, task=problem, seeds=seed_list, steps=total,
        eval_every=eval_every or default_eval_every(problem.steps_per_epoch, total),
        make_optimizer=make_optimizer,
        schedules=tuple(schedules or ()), recipe=recipe,
        range_test=range_test or RangeTestSettings(), parallel=parallel,
        runner_options={"ray_address": ray_address, "ray_resources": ray_resources},
        threads=threads,
        options=options,
        lr_scales=None if lr_scales is None else tuple(float(s) for s in lr_scales),
        config={"api": "compare", "model": _named(model), "optimizer": _named(optimizer),
                "train_data": _named(train_data), "steps": total, "seeds": list(seed_list),
                "schedules": list(schedules or ()), "recipe": recipe, "rank_by": list(metric),
                "lr_scales": None if lr_scales is None else [float(s) for s in lr_scales],
                "options": [precision, clip_grad_norm, accumulation_steps],
                "eval_every": eval_every, "identity": identity},
        # a study stored before identities were kept cannot be checked: it resumes as before
        config_defaults={"identity": identity})
    # the last check, as it may evaluate a fresh model once: before any trial
    check_rank_by(RankingMetric.parse(metric), problem, engine.device)
    return PreparedCompare(plan, Path(out or f"runs/{name}"), engine, quiet, confirm, strategy,
                           budget)



def verdict_lines(result: CompareResult, name: str) -> list[str]:
    """The verdict (lrscope.study.stats.verdict) as the terminal prints it, above the table."""
    from lrscope.study.stats.verdict import verdict
    from lrscope.study.store.ran import how_it_ran

    return ["Verdict: " + " ".join(verdict(result.leaderboard, how_it_ran(result.out, name),
                                           result.tie if result.predictions else ()))]


def missing_note(missing: int, trials: int = 0, rerun: str = "command") -> str:
    """What a leaderboard lacking ``missing`` of the run's ``trials`` says under it.

    >>> print(missing_note(2, 24))  # doctest: +NORMALIZE_WHITESPACE
    note: 2 of 24 trials have no result (failed, interrupted or running elsewhere): the
    leaderboard lacks them; rerun the same command to complete them
    """
    of = f" of {trials}" if trials >= missing else ""
    noun = "trial has" if missing == 1 and not of else "trials have"
    return (f"note: {missing}{of} {noun} no result (failed, interrupted or running elsewhere): "
            f"the leaderboard lacks them; rerun the same {rerun} to complete them")


def confirmation_lines(confirmation: Confirmation | None, confirm_seeds: int | None) -> list[str]:
    """What the terminal says of a confirmation (nothing when none was asked for)."""
    if confirm_seeds is None:
        return []
    if confirmation is None:
        return ["confirmation: nothing finished, so there is no best to confirm"]
    seeds = ", ".join(map(str, confirmation.seeds))
    return [f"Confirmation at {len(confirmation.seeds)} fresh seeds ({seeds}), free of the "
            f"selection's luck:", *(f"  {line}" for line in confirmation.lines())]


def _check_task_alone(task: Task, model: Callable[[], nn.Module], **given: Any) -> None:
    """A Task brings its own model, loss and data: refuse what would be silently ignored.

    A Task trains ``task.make_model`` with ``task.loss_fn`` and selects on its validation split
    (the test set when it has none); ``evaluate``, ``val_data`` and the rest belong to the
    ``train_data(seed)`` form.
    """
    ignored = [name for name, value in given.items() if value is not None]
    if model is not task.make_model:
        ignored.insert(0, "model")
    if ignored:
        raise InputError(
            f"compare: train_data is the Task {task.name!r}, which brings its own model, loss "
            f"and data, so {', '.join(ignored)} would be ignored: pass model=task.make_model "
            "and leave them out (task.with_validation(0.1) selects on a held-out split), or "
            "pass train_data as a function seed -> batches with your own "
            "loss_fn/val_data/evaluate")


def _build(optimizer: Callable[[Any], Any], model: nn.Module) -> Any:
    return optimizer(model.parameters())


def _rank_by(rank_by: str | tuple[str, str]) -> tuple[str, str]:
    """``(name, "min"|"max")`` (:meth:`RankingMetric.parse`); a bare name is minimised when it
    names a loss or an error.

    >>> _rank_by("rmse"), _rank_by("accuracy"), _rank_by(("bleu", "max"))
    (('rmse', 'min'), ('accuracy', 'max'), ('bleu', 'max'))
    """
    metric = RankingMetric.parse(rank_by, where="compare: rank_by")
    return metric.name, metric.direction


def task_metrics(task: Task) -> set[str]:
    """What a Task's evaluation measures: the loss, and the accuracy when it has classes."""
    return {"loss", "accuracy"} if task.has_classes else {"loss"}


def check_rank_by(metric: RankingMetric, problem: Task | Problem, device: Any,
                  where: str = "compare: rank_by") -> None:
    """InputError, naming the metrics that exist, when no evaluation produces ``metric``.

    A Task knows its metrics. A Problem's come from ``evaluate`` or its data, so they are
    measured once, on a freshly built model, before any trial (only when they can differ from
    the loss every evaluation has); the global RNGs are left as they were.
    """
    if isinstance(problem, Task):
        metric.check(task_metrics(problem), where)
        return
    if problem.evaluate is None and metric.name == "loss":
        return  # val_data / test_data always measure the loss
    import torch

    from lrscope.rng import preserved_rng

    with preserved_rng():
        model = problem.make_model().to(device)
        evaluation = problem.measure(model, torch.device(device))
    if evaluation.metrics:  # the selection split: evaluate(model) or val_data
        metric.check(evaluation.metrics, where)
    elif evaluation.loss is not None:  # no selection split: the test set ranks
        metric.check({"loss"} | ({"accuracy"} if evaluation.accuracy is not None else set()),
                     where)


def _steps(steps: int | None, epochs: int | None, per_epoch: int | None, micro: int) -> int:
    if (steps is None) == (epochs is None):
        raise InputError("compare: give steps=N or epochs=E (one of them)")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise InputError(f"compare: steps={steps!r} must be a whole number >= 2")
        return steps
    if per_epoch is None:
        raise InputError("compare: epochs needs train_data(seed) with a length (len()); give "
                         "steps instead")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"compare: epochs={epochs!r} must be a whole number >= 1")
    return steps_in_epochs(epochs, per_epoch, micro, minimum=2)


def _named(thing: Any) -> str:
    """What a rerun can compare: a function's qualified name (a lambda is just 'lambda')."""
    if isinstance(thing, Task):
        return f"task:{thing.name}:{thing.model_name}"
    module = getattr(thing, "__module__", "") or ""
    return f"{module}.{getattr(thing, '__qualname__', type(thing).__name__)}"
