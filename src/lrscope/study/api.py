"""``lrscope.compare``: the schedule study from Python, on any model, data and metric.

The CLI's ``compare`` reads a config file; this takes the pieces of a training script instead:
a model factory (lrscope seeds it, so every schedule at a seed starts from the same weights), an
optimizer factory, and ``train_data(seed)`` giving any iterable of batches in that seed's order
(a DataLoader with ``generator=torch.Generator().manual_seed(seed)`` is the normal case), or a
lrscope Task (alone: it brings its own model, loss and data). It runs the range test, the
recipe's suite (or ``schedules``), every (schedule, seed) trial, and writes the store and the
report; rerunning the same call on the same ``out`` resumes.

>>> import tempfile, torch
>>> from torch import nn
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(256, 4, generator=g); y = (x.sum(1) > 0).long()
>>> def train_data(seed):
...     return torch.utils.data.DataLoader(list(zip(x, y)), batch_size=32, shuffle=True,
...                                        generator=torch.Generator().manual_seed(seed))
>>> res = compare(lambda: nn.Linear(4, 2), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
...               train_data, loss_fn=nn.functional.cross_entropy, val_data=train_data(99),
...               schedules=["constant(lr=0.1)", "cosine(lr=0.5)"], steps=40, seeds=2,
...               out=tempfile.mkdtemp(), quiet=True)
>>> [row.label for row in res.leaderboard] == [res.best, *[r.label for r in res.leaderboard[1:]]]
True
>>> res.report_html.name, len(res.leaderboard)
('report.html', 2)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from lrscope._checks import check_int, check_seeds
from lrscope.data.problem import Problem
from lrscope.data.scoring import LossFn, StepFn
from lrscope.data.tasks.base import Task
from lrscope.engines.base import Engine
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.rng import preserved_rng
from lrscope.study.confirm import check_confirm_seeds, run_confirmation
from lrscope.study.identity import study_identity
from lrscope.study.plan import StudyPlan, TrialEvent, default_eval_every, steps_in_epochs
from lrscope.study.recipes import RECIPES, Suite, lr_scales_problem
from lrscope.study.stats.confirmation import Confirmation
from lrscope.study.stats.leaderboard import LeaderboardRow
from lrscope.study.stats.ranking import MINIMISED as RANKING_MINIMISED
from lrscope.study.stats.ranking import RankingMetric
from lrscope.trials.runners import PARALLEL_MODES, RayOptions
from lrscope.trials.trial import TrainOptions

MINIMISED = RANKING_MINIMISED  # kept for callers of the earlier name


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` returns: the ranked rows, the winner, where everything was written."""

    leaderboard: list[LeaderboardRow]  # best first
    best: str | None  # None when nothing finished
    out: Path
    report_html: Path
    suite: Suite
    leaderboard_csv: Path | None = None
    parallel: str | None = None  # with parallel="auto": what it chose and why, in one line
    # trials of the run with no result (failed, interrupted, or running in another process):
    # the leaderboard lacks them until a rerun completes them
    missing: int = 0
    # with confirm_seeds=N: the best (and its inseparable rivals) at N fresh seeds
    confirmation: Confirmation | None = None


def compare(model: Callable[[], nn.Module], optimizer: Callable[[Any], Any],
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
            threads: int | None = None, confirm_seeds: int | None = None) -> CompareResult:
    """Run (or resume) a schedule study and return its leaderboard (see the module docstring).

    ``loss_fn(model(inputs), targets)`` scores ``(inputs, targets, *extras)`` batches;
    ``step_fn(model, batch) -> loss`` anything else (dict batches, a model that returns its own
    loss). Selection reads ``evaluate(model) -> {metric: value}`` or the loss (and accuracy)
    on ``val_data``; ``test_data`` is only reported. ``rank_by`` names the selection metric;
    "loss"-like names are minimised, others maximised, or give ``(name, "min"|"max")``.
    ``precision``, ``clip_grad_norm`` and ``accumulation_steps`` train as your own loop would.
    ``parallel="ray"`` runs each trial as a Ray task (docs/ray.md): on the cluster at
    ``ray_address`` (else ``$RAY_ADDRESS``, else the one this process is connected to, else a
    local one), each asking for ``ray_resources`` as Ray Tune writes them, e.g.
    ``{"cpu": 1, "gpu": 0.25}`` (default one CPU; a quarter GPU on CUDA). ``threads``: torch
    threads per trial, at most the usable cores (default 1 on the CPU; ``parallel="auto"`` may
    measure more); your own thread count is put back when the study returns.
    ``confirm_seeds=N`` then retrains the best, and every schedule the study could not
    separate from it, at N fresh seeds: ``res.confirmation`` holds their unbiased test scores
    (the study's own are from the seeds that selected the best; lrscope.study.confirm).
    """
    if not callable(model) or not callable(optimizer):
        raise InputTypeError("compare: model and optimizer must be functions: model() -> "
                             "nn.Module, optimizer(params) -> torch optimizer")
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
    if parallel not in PARALLEL_MODES:
        raise InputError(f"compare: parallel={parallel!r} is not one of "
                         f"{', '.join(PARALLEL_MODES)}")
    if threads is not None:
        check_int("compare", "threads", threads)
    if lr_scales is not None and (problem_text := lr_scales_problem(list(lr_scales))):
        raise InputError(f"compare: lr_scales={list(lr_scales)!r} {problem_text}")
    options = TrainOptions(precision, clip_grad_norm, accumulation_steps)
    ray = _ray_options(ray_address, ray_resources)
    total = _steps(steps, epochs, problem.steps_per_epoch, accumulation_steps)
    seed_list = check_seeds("compare", seeds)
    engine = LocalEngine(device)
    make_optimizer = functools.partial(_build, optimizer)
    with preserved_rng():  # what a rerun must match: the model, optimizer, loss and data
        identity = study_identity(problem, make_optimizer, {} if isinstance(problem, Task) else {
            "loss_fn": loss_fn, "step_fn": step_fn, "evaluate": evaluate, "val_data": val_data,
            "test_data": test_data})
    # the last check, as it may evaluate a fresh model once: before any trial
    check_rank_by(RankingMetric.parse(metric), problem, engine.device)
    plan = StudyPlan(
        name=name, task=problem, seeds=seed_list, steps=total,
        eval_every=eval_every or default_eval_every(problem.steps_per_epoch, total),
        make_optimizer=make_optimizer,
        schedules=tuple(schedules or ()), recipe=recipe,
        range_test=range_test or RangeTestSettings(), parallel=parallel, ray=ray,
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
    return _run(plan, Path(out or f"runs/{name}"), engine, quiet, confirm)


def _run(plan: StudyPlan, out: Path, engine: LocalEngine, quiet: bool,
         confirm_seeds: int | None = None) -> CompareResult:
    from rich.console import Console

    console = Console(stderr=True, quiet=quiet)
    result = run_plan(plan, out, engine, announce=lambda line: console.print(
        line, highlight=False, markup=False, soft_wrap=True), confirm_seeds=confirm_seeds)
    assert result is not None  # one local process is its own main rank
    if not quiet:
        from lrscope.outputs.report.leaderboard_output import rich_table

        title = f"Leaderboard: {plan.name}"
        console.print(rich_table(result.leaderboard, title=title))
        if result.missing:
            console.print(missing_note(result.missing), highlight=False, markup=False,
                          soft_wrap=True)
        for line in confirmation_lines(result.confirmation, confirm_seeds):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    return result


def missing_note(missing: int) -> str:
    """What a leaderboard lacking ``missing`` trials says under it."""
    return (f"note: {missing} trial(s) have no result (failed, interrupted, or running in "
            "another process): the leaderboard lacks them; rerun the same call to complete them")


def run_plan(plan: StudyPlan, out: Path, engine: Engine,
             progress: Callable[[TrialEvent], None] | None = None,
             announce: Callable[[str], None] | None = None,
             confirm_seeds: int | None = None) -> CompareResult | None:
    """Run (or resume) ``plan`` into ``out`` on ``engine``, then write its report: what
    :func:`compare` and the CLI's ``lrscope compare`` both do. Only the main rank writes the
    report and gets the result; other ranks of a distributed engine get None. ``announce(line)``
    hears what ``parallel="auto"`` chose (also the result's ``parallel``). ``confirm_seeds=N``
    then retrains the best and its inseparable rivals at N fresh seeds (lrscope.study.confirm)."""
    from lrscope.outputs.report.build import write_report
    from lrscope.study.run import check_resumable, missing_trials, run_study

    if engine.is_main:
        check_resumable(plan, out)  # before anything is written into an old study
    heard: list[str] = []

    def hear(line: str) -> None:
        heard.append(line)
        if announce is not None:
            announce(line)

    suite = run_study(plan, out, engine, progress=progress, announce=hear)
    if confirm_seeds is not None:
        run_confirmation(plan, out, engine, confirm_seeds, suite.labels(), progress, announce)
    if not engine.is_main:
        return None
    files = write_report(out)
    rows = next((rows for run, rows in files.leaderboards if run == plan.name), [])
    confirmation = files.confirmations.get(plan.name) if confirm_seeds is not None else None
    best = rows[0].label if rows and rows[0].n_finished else None  # nothing finished: no best
    return CompareResult(list(rows), best, out, files.html, suite,
                         files.leaderboard_csv, heard[-1] if heard else None,
                         missing_trials(out, plan, suite), confirmation)


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


def _ray_options(address: str | None, resources: Mapping[str, float] | None) -> RayOptions:
    """The Ray runner's options from compare's keywords (Ray Tune's resource names).

    >>> _ray_options("auto", {"cpu": 2, "gpu": 0.5})
    RayOptions(address='auto', cpus_per_trial=2.0, gpus_per_trial=0.5, max_retries=3)
    """
    given = dict(resources or {})
    unknown = sorted(set(given) - {"cpu", "gpu"})
    if unknown:
        raise InputError(f"compare: ray_resources has {', '.join(map(repr, unknown))}; give "
                         'CPUs and GPUs per trial, e.g. {"cpu": 1, "gpu": 0.25}')
    gpus = given.get("gpu")
    return RayOptions(address=address, cpus_per_trial=float(given.get("cpu", 1.0)),
                      gpus_per_trial=None if gpus is None else float(gpus))


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
