"""Run, then report: what :func:`lrscope.compare` and the CLI's ``lrscope compare`` share.

This layer sits above the study (:mod:`lrscope.study`: plan, trials, store, statistics) and
the outputs (:mod:`lrscope.outputs`: TensorBoard, the report); the study never imports the
outputs, it hands each recorded trial to a sink (:mod:`lrscope.study.sink`), and this layer
passes the TensorBoard one.

``lrscope.compare``: the schedule study from Python, on any model, data and metric.

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
>>> res.best in (None, res.leaderboard[0].label)  # None: the top is a tie (res.tie)
True
>>> res.report_html.name, len(res.leaderboard)
('report.html', 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from lrscope.engines.base import Engine
from lrscope.outputs.tensorboard import TensorBoardSink
from lrscope.study.api import (
    CompareResult,
    PreparedCompare,
    confirmation_lines,
    missing_note,
    prepare_compare,
    verdict_lines,
)
from lrscope.study.confirm import run_confirmation
from lrscope.study.plan import StudyPlan, TrialEvent
from lrscope.study.predict.strategy import run_predict, summary_lines
from lrscope.study.run import check_resumable, missing_trials, run_study
from lrscope.study.stats.verdict import tie_group
from lrscope.study.store.predictions import (
    PredictionRecord,
    load_predictions,
    retire_predictions,
)
from lrscope.study.strategies import check_strategy
from lrscope.trials.runners import held

__all__ = ["CompareResult", "compare", "run_plan"]

P = ParamSpec("P")
R = TypeVar("R")


def _signature_of(source: Callable[P, Any]) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Give the decorated function ``source``'s parameters (for type checkers, ``help()`` and
    ``inspect.signature``), so that they are written once, on ``source``."""

    def give(target: Callable[..., R]) -> Callable[P, R]:
        returns = inspect.signature(target).return_annotation
        target.__signature__ = inspect.signature(source).replace(  # type: ignore[attr-defined]
            return_annotation=returns)
        return target

    return give


@_signature_of(prepare_compare)
def compare(*args: Any, **kwargs: Any) -> CompareResult:
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
    ``strategy="predict"`` probes every candidate (its schedule compressed into a few steps),
    fits a loss-curve law to the probes and the full-length runs, checks it on a run it was not
    fitted on, and trains what it predicts best under ``budget`` (a fraction of the full
    study's trial steps, range test included; default 1/6, 1/12 with ``lr_scales``, which fits
    two full-length runs instead of probing): ``res.cost``, ``res.predictions``,
    ``res.untrained`` (lrscope.study.predict). The best is always a trained candidate; a law
    not trusted is said in one line, and what is trained next follows its order, not its
    values (the probes' where no law was fitted; with ``lr_scales``: every candidate).
    ``strategy="full"`` afterwards on the same ``out`` trains only what is still missing.
    """
    return run_prepared(prepare_compare(*args, **kwargs))


def run_prepared(call: PreparedCompare) -> CompareResult:
    """Run a checked :func:`compare` call, then show its leaderboard on stderr (unless quiet)."""
    from rich.console import Console

    plan, confirm_seeds = call.plan, call.confirm_seeds
    console = Console(stderr=True, quiet=call.quiet)
    result = run_plan(plan, call.out, call.engine, announce=lambda line: console.print(
        line, highlight=False, markup=False, soft_wrap=True), confirm_seeds=confirm_seeds,
        strategy=call.strategy, budget=call.budget)
    assert result is not None  # one local process is its own main rank
    if not call.quiet:
        from lrscope.outputs.report.leaderboard_output import rich_table

        for line in verdict_lines(result, plan.name):
            console.print(line, highlight=False, markup=False)
        title = f"Leaderboard: {plan.name}"
        console.print(rich_table(result.leaderboard, title=title))
        if result.missing:
            console.print(missing_note(result.missing, result.trials, "call"), highlight=False,
                          markup=False, soft_wrap=True)
        for line in confirmation_lines(result.confirmation, confirm_seeds):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        for line in summary_lines(load_predictions(result.out, plan.name)
                                  if call.strategy == "predict" else None):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    return result


def gist(line: str) -> str:
    """What a line says, less what only its measurements change: ``--parallel auto``'s choice
    without the timings behind it (each batch of a predict study measures again); any other
    line whole.

    >>> gist("parallel auto: none (2 threads): fastest projected, 42.6 s; measured none ...")
    'parallel auto: none (2 threads)'
    """
    if line.startswith("parallel auto: "):
        return ": ".join(line.split(": ", 2)[:2])
    return line


def run_plan(plan: StudyPlan, out: Path, engine: Engine,
             progress: Callable[[TrialEvent], None] | None = None,
             announce: Callable[[str], None] | None = None,
             confirm_seeds: int | None = None, strategy: str = "full",
             budget: float | None = None) -> CompareResult | None:
    """Run (or resume) ``plan`` into ``out`` on ``engine``, then write its report: what
    :func:`compare` and the CLI's ``lrscope compare`` both do: the trials go to the store and to
    TensorBoard (DIR/tb/<trial>/). Only the main rank writes the report and gets the result;
    other ranks of a distributed engine get None. ``announce(line)`` hears what
    ``parallel="auto"`` chose (also the result's ``parallel``). ``confirm_seeds=N`` then
    retrains the best and its inseparable rivals at N fresh seeds (lrscope.study.confirm).
    ``strategy="predict"`` trains only what a loss-curve law needs, under ``budget`` (a
    fraction of the full study's trial steps; lrscope.study.predict); it is not part of the
    study's identity, so a later "full" on the same ``out`` trains only what is missing."""
    from lrscope.outputs.report.build import write_report

    strategy, budget = check_strategy("run_plan", strategy, budget)
    if engine.is_main:
        check_resumable(plan, out)  # before anything is written into an old study
    heard: list[str] = []

    def hear(line: str) -> None:
        # a predict study runs its trials in many small batches, each choosing how to run them
        # again: a choice is said once, not once per batch (nor again with other measurements)
        said = gist(line) in {gist(before) for before in heard}
        heard.append(line)
        if announce is not None and not said:
            announce(line)

    sink = TensorBoardSink(out)
    record: PredictionRecord | None = None
    # one local Ray cluster for every batch of trials below, not one per batch
    with held(plan.runner):
        if strategy == "predict":
            suite, record = run_predict(plan, out, engine, budget, progress, hear, sink)
        else:
            if engine.is_main and (kept := retire_predictions(out, plan.name)) is not None:
                hear(f"predict: this folder's predict study is now trained in full; its record "
                     f"(predictions and cost) is kept in {kept.name}")
            suite = run_study(plan, out, engine, progress=progress, announce=hear, sink=sink)
        if confirm_seeds is not None:
            run_confirmation(plan, out, engine, confirm_seeds, suite.labels(), progress,
                             announce, sink)
    if not engine.is_main:
        return None
    files = write_report(out)
    rows = next((rows for run, rows in files.leaderboards if run == plan.name), [])
    confirmation = files.confirmations.get(plan.name) if confirm_seeds is not None else None
    # a predict study's trials are those it asked for (all stored): not every pair of the suite
    missing, trials = missing_trials(out, plan, suite, stored_only=record is not None)
    parallel = next((line for line in reversed(heard) if not line.startswith("predict:")), None)
    tie = tie_group(rows) if record is None else record.tie
    # no best when nothing finished, or when the top is a tie (the tie group names it instead)
    best = rows[0].label if rows and rows[0].n_finished and not tie else None
    if record is None:
        return CompareResult(list(rows), best, out, files.html, suite, files.leaderboard_csv,
                             parallel, missing, tie, trials, confirmation)
    return CompareResult(list(rows), best, out, files.html, suite, files.leaderboard_csv,
                         parallel, missing, tie, trials, confirmation, cost=record.cost,
                         full_cost=record.cost.full_steps,
                         predictions=dict(record.candidates), untrained=record.untrained)
