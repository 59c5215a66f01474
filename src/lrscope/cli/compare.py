"""``lrscope compare``: range test -> schedule suite -> every (schedule, seed) -> leaderboard.

Writes DIR (default ``runs/<name>-<task>``): study.sqlite, tb/<trial>/, leaderboard.csv,
report.md, report.html and the resolved config. Rerunning the same command on the same DIR
resumes: finished trials are skipped, a trial cut off mid-run starts again. A rerun may add
seeds or schedules (only the new trials run); two processes on one DIR share its trials.
Flags override the values of ``--config FILE.toml`` (see :mod:`lrscope.config.study`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lrscope.cli import COMMANDS, describe
from lrscope.cli.shared_flags import SHARED_FIELDS, add_shared_flags, live_progress
from lrscope.config.base import UNSET, save_config
from lrscope.config.plans import study_plan
from lrscope.config.study import load_study_config
from lrscope.data.tasks.base import Task
from lrscope.engines import get_engine
from lrscope.session import run_plan
from lrscope.study.api import check_rank_by, confirmation_lines, missing_note, verdict_lines
from lrscope.study.plan import TrialEvent
from lrscope.study.run import check_resumable
from lrscope.study.stats.ranking import RankingMetric, ranked_on_text
from lrscope.trials.runners import runner_names

FLAG_FIELDS: dict[str, tuple[str, str]] = {
    **SHARED_FIELDS,
    "name": ("name", "--name"),
    "schedules": ("schedules", "--schedules"),
    "recipe": ("recipe", "--recipe"),
    "seeds": ("seeds", "--seeds"),
    "steps": ("steps", "--steps"),
    "lr_scales": ("lr_scales", "--lr-scales"),
    "epochs": ("epochs", "--epochs"),
    "eval_every": ("eval_every", "--eval-every"),
    "accumulation_steps": ("accumulation_steps", "--accumulation-steps"),
    "val_fraction": ("val_fraction", "--val-fraction"),
    "target_accuracy": ("target_accuracy", "--target-accuracy"),
    "rank_by": ("rank_by", "--rank-by"),
    "confirm_seeds": ("confirm_seeds", "--confirm-seeds"),
    "strategy": ("strategy", "--strategy"),
    "budget": ("budget", "--budget"),
    "parallel": ("parallel", "--parallel"),
    "ray_address": ("ray_address", "--ray-address"),
    "ray_cpus": ("ray_cpus_per_trial", "--ray-cpus-per-trial"),
    "ray_gpus": ("ray_gpus_per_trial", "--ray-gpus-per-trial"),
    "rt_start": ("range_test.start", "--range-start"),
    "rt_end": ("range_test.end", "--range-end"),
    "rt_steps": ("range_test.steps", "--range-steps"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help=COMMANDS["compare"][1],
        description=describe(__doc__),
        epilog='Example: lrscope compare --task digits --seeds 3 --schedules '
               '"onecycle(max_lr=0.5)" "exponential(lr=0.5, gamma=0.999)"')
    add_shared_flags(parser, "output folder (default runs/<name>-<task>)")
    add = parser.add_argument
    add("--name", help="the study's name in the store (default: study)")
    add("--schedules", nargs="+", metavar="SPEC", help="schedules to compare (default: recipe)")
    add("--recipe", help="how to build the suite from the range test: smith (default) or seed")
    add("--seeds", type=int, help="number of seeds (default 3)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimizer steps per trial")
    budget.add_argument("--epochs", type=int, help="epochs per trial (default 20)")
    add("--lr-scales", type=scale_list, metavar="K,K,...", help="run every schedule at these "
        "multiples of its peak LR, e.g. 0.3,1,3; each is ranked at its best (default: 1)")
    add("--eval-every", type=int, help="evaluate every N steps (default: once per epoch)")
    add("--accumulation-steps", type=int, metavar="K", help="micro-batches per optimizer step "
        "(default 1)")
    add("--val-fraction", type=float, metavar="F", help="training examples held out to select "
        "on; the test set only reports (default 0.1 for built-in tasks, 0 for your own)")
    add("--target-accuracy", type=float, metavar="A", help="report steps to reach this test "
        "accuracy (0..1; default: 95%% of the best mean final test accuracy, rounded down to "
        "a percent)")
    add("--rank-by", metavar="METRIC[:min|max]", help="rank the schedules on this metric "
        "(loss or accuracy for the built-in tasks), e.g. accuracy:max; a bare name is "
        "minimised when it names a loss or an error (default loss:min)")
    add("--confirm-seeds", type=int, metavar="N", help="after the study, retrain the best (and "
        "every schedule not separated from it) at N fresh seeds for an unbiased test score")
    add("--strategy", metavar="full|predict", help="full trains every schedule at every seed "
        "(default); predict probes every schedule on a compressed run, trains a few, predicts "
        "the rest from a loss-curve law checked on a run it was not fitted on (with "
        "--lr-scales: in the probes' order, no law), then races the contenders")
    add("--budget", type=float, metavar="F", help="with --strategy predict: the share of the "
        "full study's trial steps to spend, 0 < F <= 1 (default 1/6; 1/12 with --lr-scales)")
    add("--parallel", help=f"how trials run: {'|'.join(runner_names())} (default auto)")
    add("--ray-address", metavar="ADDR", help="with --parallel ray: join the Ray cluster at "
        "HOST:PORT (or auto: the one `ray start` runs here); default $RAY_ADDRESS, else a local "
        "cluster on this machine's cores (docs/ray.md)")
    add("--ray-cpus-per-trial", dest="ray_cpus", type=float, metavar="N",
        help="with --parallel ray: CPUs (and torch threads) per trial (default 1)")
    add("--ray-gpus-per-trial", dest="ray_gpus", type=float, metavar="F",
        help="with --parallel ray: GPUs per trial; 0.25 lets four share one (default 0.25 on "
             "CUDA, else 0)")
    add("--range-start", dest="rt_start", type=float, help="range test start LR (default 1e-7)")
    add("--range-end", dest="rt_end", type=float, help="range test end LR (default 10)")
    add("--range-steps", dest="rt_steps", type=int, help="range test steps (default 100)")
    parser.set_defaults(run=run)


def _latest(seen: Any) -> str:
    """The progress line's view of an evaluation: accuracy where there is one, else a loss."""
    if seen.accuracy is not None:
        return f"test acc {seen.accuracy:.3f}"
    if seen.val_accuracy is not None:
        return f"val acc {seen.val_accuracy:.3f}"
    if seen.loss is not None:
        return f"test loss {seen.loss:.4g}"
    return "" if seen.val_loss is None else f"val loss {seen.val_loss:.4g}"


def scale_list(text: str) -> list[float]:
    """``"0.3,1,3"`` -> ``[0.3, 1.0, 3.0]`` (the config checks that they are positive)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of numbers; write e.g. 0.3,1,3") from None


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {key: getattr(args, dest) for dest, (key, _) in FLAG_FIELDS.items()}
    if overrides["schedules"] is not None:
        overrides["schedules"] = list(overrides["schedules"])
    # A budget on the command line replaces the file's, whichever of steps/epochs it used.
    given = {key for key, value in overrides.items() if value is not None}
    for flag, other in (("steps", "epochs"), ("epochs", "steps"),
                        ("range_test.steps", "range_test.epochs")):
        if flag in given:
            overrides[other] = UNSET
    flags = {key: flag for key, flag in FLAG_FIELDS.values()}
    config = load_study_config(args.config, overrides, flags)
    engine = get_engine(config.engine, **config.engine_options())
    console = Console(stderr=True, quiet=not engine.is_main)
    with engine:
        plan = study_plan(config)
        if engine.is_main:  # a Task knows its metrics; a user's Problem is measured once
            device = "cpu" if isinstance(plan.task, Task) else config.resolved_device()
            check_rank_by(RankingMetric.parse(config.rank_by), plan.task, device, "rank_by")
        out = Path(config.out or f"runs/{config.name}-{config.task.replace(':', '_')}")
        plan.runner.on(engine)  # what cannot run here (a Ray address that does not answer)
        if engine.is_main:
            # before anything is written into an old study; config.toml describes the whole
            # run (every seed and schedule it holds), not only this rerun's
            grown = check_resumable(plan, out)
            save_config(config if grown is None else config.model_copy(update={
                key: tuple(grown[key]) if isinstance(grown[key], list) else grown[key]
                for key in plan.may_grow if key in grown}), out, used=plan.config["resolved"])
        Console(quiet=not engine.is_main).print(  # a path is never broken across lines
            f"lrscope compare: {len(plan.seeds)} seeds x {plan.steps} steps -> {out}",
            highlight=False, markup=False, soft_wrap=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True,
                      disable=not live_progress(console)) as bar:
            progress_id = bar.add_task("trials", total=None)
            busy: list[str] = []
            done: set[str] = set()  # trials already in the store: without a bar, how many
            asked: set[str] = set()  # every trial asked for (a predict study: over its batches)

            def on_event(event: TrialEvent) -> None:
                asked.add(event.key)
                if event.state == "busy":
                    busy.append(event.key)
                if event.state == "skipped":
                    done.add(event.key)
                seen = event.evaluation
                where = "" if seen is None else f"  step {seen.step}/{plan.steps} " + (
                    _latest(seen))
                bar.update(progress_id, total=event.total,
                           description=f"{event.state:>8} {event.key}{where}")
                if event.state != "running":
                    bar.advance(progress_id)

            def on_choice(line: str) -> None:  # --parallel auto: what it chose, and why
                console.print(line, highlight=False, markup=False, soft_wrap=True)

            # the same run as lrscope.compare(): the plan, its study, its report
            result = run_plan(plan, out, engine, progress=on_event, announce=on_choice,
                              confirm_seeds=config.confirm_seeds, strategy=config.strategy,
                              budget=config.budget)
        if result is None:  # not the main rank: it wrote nothing
            return 0
        from lrscope.outputs.report.leaderboard_output import rich_table

        suite = result.suite
        if done:  # a resumed run: the count, bar or no bar (a pipe, a CI log)
            console.print(f"trials: {len(done)}/{len(asked)} already done"
                          + (" (nothing left to run)" if len(done) == len(asked) else ""),
                          highlight=False)
        console.print(f"recipe: {suite.recipe} ({len(suite.schedules)} schedules)")
        if busy:
            console.print(f"note: {len(busy)} trial(s) were running in another process on {out} "
                          "(busy elsewhere); the report lacks them until it finishes "
                          f"(then `lrscope report {out}`)", highlight=False, markup=False,
                          soft_wrap=True)
        for warning in suite.warnings:
            console.print(f"warning: {warning}", style="yellow", highlight=False)
        # A terminal keeps its width, as does $COLUMNS (rich reads it); a pipe or file gets the
        # wide table rather than 80 columns.
        stdout = Console()
        if not stdout.is_terminal and not os.environ.get("COLUMNS"):
            stdout = Console(width=200)
        for line in verdict_lines(result, plan.name):  # the answer first, in plain words
            stdout.print(line, highlight=False, markup=False)  # wrapped at the table's width
        stdout.print(rich_table(result.leaderboard, title=f"Leaderboard: {plan.name}",
                                width=stdout.width))
        if result.missing:  # failed, interrupted or busy elsewhere: a rerun completes them
            stdout.print(missing_note(result.missing, result.trials), highlight=False,
                         markup=False, soft_wrap=True)
        if result.tie:  # the top is a tie: the group, not a winner (res.best is None)
            group = ", ".join([result.leaderboard[0].label, *result.tie])
            stdout.print(f"best: none, the top is a tie ({group}); "
                         f"{result.leaderboard[0].label} ranks first "
                         f"({ranked_on_text(result.leaderboard[0].metric, 'top')})",
                         highlight=False, markup=False)
        elif result.best is None:
            stdout.print("Nothing finished: every trial diverged, failed or is unfinished; "
                         "there is no best schedule.", highlight=False)
        else:
            stdout.print(f"best: {result.best} "
                         f"({ranked_on_text(result.leaderboard[0].metric, 'top')})",
                         highlight=False, markup=False)  # wrapped at COLUMNS, as the table
        if plan.lr_scales is not None:
            _print_best_scales(stdout, out, plan.name, result.leaderboard)
        for line in confirmation_lines(result.confirmation, config.confirm_seeds):
            stdout.print(line, highlight=False, markup=False, soft_wrap=True)
        if config.strategy == "predict":  # the cost, then the law's self-check
            from lrscope.study.predict.strategy import summary_lines
            from lrscope.study.store.predictions import load_predictions

            for line in summary_lines(load_predictions(out, plan.name)):
                stdout.print(line, highlight=False, markup=False, soft_wrap=True)
        # whole paths, to copy: not wrapped inside a name, nor read as markup ("runs/[a]")
        stdout.print(f"leaderboard: {result.leaderboard_csv}\nreport: {result.report_html}",
                     highlight=False, markup=False, soft_wrap=True)
    return 0


def _print_best_scales(stdout: Console, out: Path, name: str, rows: list[Any]) -> None:
    """One line per base schedule: the peak-LR scale it ranks best at."""
    from lrscope.study.stats.scales import best_scale_line, best_scales
    from lrscope.study.store import Store

    with Store.in_dir(out, create=False) as store:
        run = store.find_run(name)
        trials = store.trials(run.id) if run is not None else []
    stdout.print("Best peak-LR scale per schedule:", highlight=False)
    for best in best_scales(rows, trials):
        stdout.print(best_scale_line(best), highlight=False, markup=False, soft_wrap=True)
