"""``lrscope find``: the LR range test on a task, its suggestions, and an output folder.

Builds the task, the model (seeded) and the optimizer (SGD with momentum 0.9 by default), runs
:func:`lrscope.range_test` with a progress bar, prints a table of the suggestions and writes
DIR (default ``runs/find-<task>-<timestamp>``): result.json, history.csv, history.json,
loss_vs_lr.png, lr_vs_step.png, tb/ (TensorBoard events) and the resolved config.toml/.json.
Flags override the values of ``--config FILE.toml``; see :mod:`lrscope.config.find` for the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lrscope.cli import COMMANDS, describe
from lrscope.cli.find_output import write_outputs
from lrscope.cli.shared_flags import SHARED_FIELDS, add_shared_flags, live_progress
from lrscope.config.find import FindConfig, load_config
from lrscope.errors import InputError
from lrscope.rangetest.settings import DEFAULT_NUM_STEPS
from lrscope.rangetest.settings import RANGE_TEST_DEFAULTS as DEFAULTS
from lrscope.rangetest.suggest import HEADLINE, HEADLINE_RULES, RULE_REGISTRY
from lrscope.rng import preserved_rng

# argparse dest -> (dotted config key, flag): every flag is an override of the config file.
FLAG_FIELDS: dict[str, tuple[str, str]] = {
    **SHARED_FIELDS,
    "seed": ("seed", "--seed"),
    "seeds": ("seeds", "--seeds"),
    "start": ("range_test.start", "--range-start"),
    "end": ("range_test.end", "--range-end"),
    "steps": ("range_test.steps", "--range-steps"),
    "epochs": ("range_test.epochs", "--epochs"),
    "mode": ("range_test.mode", "--mode"),
    "val_every": ("range_test.val_every", "--val-every"),
    "prefer": ("range_test.prefer", "--prefer"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "find", help=COMMANDS["find"][1],
        description=describe(__doc__),
        epilog="Example: lrscope find --task digits --model lenet --range-start 1e-5 "
               "--range-end 10 --range-steps 200")
    add_shared_flags(parser, "output folder (default runs/find-<task>-<timestamp>)")
    add = parser.add_argument
    # compare's names for the same ramp; the short ones stay as aliases (issue 19 item 15)
    add("--range-start", "--start", dest="start", type=float, metavar="LR",
        help=f"first LR of the ramp (default {DEFAULTS.start:g})")
    add("--range-end", "--end", dest="end", type=float, metavar="LR",
        help=f"last LR of the ramp (default {DEFAULTS.end:g})")
    add("--range-steps", "--steps", dest="steps", type=int, metavar="N",
        help=f"optimizer steps of the ramp (default {DEFAULT_NUM_STEPS})")
    add("--epochs", type=int, metavar="E", help="instead of --range-steps: E passes over the "
        "data")
    add("--mode", metavar="exp|linear", help="exponential (default) or linear ramp")
    add("--seed", type=int, metavar="S", help="seed of the model's weights and the data order "
        "(default 0)")
    add("--seeds", type=int, metavar="N", help="range tests on N data orders (seeds S..S+N-1) "
        "from the same initial weights; the headline from their median curve, the spread of "
        "the per-seed headlines reported (default 1)")
    add("--val-every", type=int, metavar="N", help="validation loss every N steps on a fixed "
        "test subset (default: ten times per run; 0: never)")
    others = ", ".join(rule for rule in HEADLINE_RULES if rule != HEADLINE)
    add("--prefer", metavar="RULE", help=f"headline rule: {HEADLINE} (default), {others}")
    add("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def resolve_config(args: argparse.Namespace) -> FindConfig:
    """The config file (if any) with the flags that were given laid over it."""
    overrides = {key: getattr(args, dest, None) for dest, (key, _) in FLAG_FIELDS.items()}
    flags = {key: flag for key, flag in FLAG_FIELDS.values()}
    return load_config(args.config, overrides, flags)


def default_out(task_name: str, now: dt.datetime | None = None) -> Path:
    """``runs/find-<task>-<YYYYmmdd-HHMMSS>``, the task name made safe for a folder name.

    >>> default_out("pkg.mod:make", dt.datetime(2024, 5, 1, 12, 0, 0)).as_posix()
    'runs/find-pkg.mod_make-20240501-120000'
    """
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"find-{re.sub(r'[^A-Za-z0-9_.-]+', '_', task_name)}-{stamp}"


def _out_dir(config: FindConfig) -> Path:
    if config.out is not None:
        return Path(config.out)
    out = default_out(config.task)
    suffix = 2
    while out.exists():  # two runs in the same second
        out = out.with_name(f"{default_out(config.task).name}-{suffix}")
        suffix += 1
    return out


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    task = config.build_task()
    import torch

    from lrscope.engines import get_engine  # the engines load only once the config is valid
    from lrscope.rangetest.loop import range_test
    from lrscope.trials.runners.threads import torch_threads, trial_threads
    from lrscope.trials.trial import seeded_model

    engine = get_engine(config.engine, **config.engine_options())
    try:
        out = _out_dir(config)
        console = Console(quiet=not engine.is_main, highlight=False)
        if engine.is_main:
            _make_folder(out)
        task = task.to(engine.device)  # in-memory data moves to the device once
        with preserved_rng():  # the same seed gives the same initial weights
            model = seeded_model(task, config.seed, engine.device)
        optimizer = config.optimizer.build(model.parameters(), lr=config.range_test.start)
        settings = config.range_test.settings()
        val = task.validation_batches(settings.val_examples) if settings.validates else None
        total = config.planned_steps(task)
        # One seed: today's single run. Several: one data order per seed (a TensorBatches per
        # seed from task.train_batches), all from the same initial weights.
        data: Any = task.train_batches(seed=config.seed) if config.seeds == 1 \
            else task.train_batches
        seeds = config.data_seeds() if config.seeds > 1 else None
        with _ProgressBar(console, total * config.seeds,
                          quiet=args.quiet or not engine.is_main) as callback, \
                torch_threads(trial_threads(config.threads or torch.get_num_threads())):
            result = range_test(model, optimizer, task.loss_fn, data,
                                **settings.range_test_kwargs(), val_batches=val,
                                val_every=settings.val_every or None, engine=engine,
                                precision=config.precision,
                                clip_grad_norm=config.clip_grad_norm, callback=callback,
                                seeds=seeds)
        if engine.is_main:
            console.print(suggestion_table(result.suggestions, result.rule))
            if result.runs:
                console.print(seeds_table(result))
            console.print(_summary(result))
            for warning in result.warnings:  # the curve may not support the answer: say why
                console.print(f"warning: {warning}", style="yellow", soft_wrap=True)
            write_outputs(out, result, config.resolved(task, out, total), task)
            console.print(f"wrote {out}", soft_wrap=True)
    finally:
        engine.close()
    return 0


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out}: cannot create the folder ({err.strerror})") from None


class _ProgressBar:
    """A rich progress bar fed by range_test's callback (a no-op when quiet)."""

    def __init__(self, console: Console, total: int, quiet: bool) -> None:
        self.bar = None if quiet or not live_progress(console) else Progress(
            TextColumn("range test"), BarColumn(), MofNCompleteColumn(),
            TextColumn("lr {task.fields[lr]:.2e}  loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(), console=console, transient=True)
        self.total = total

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.start()
        job = self.bar.add_task("range test", total=self.total, lr=0.0, loss=float("nan"))
        bar = self.bar
        offset, last = 0, -1  # steps of the earlier seeds' runs, the last step seen

        def callback(step: int, lr: float, loss: float, smoothed: float) -> None:
            nonlocal offset, last
            if step <= last:  # the next seed's run: its steps count from 0 again
                offset += last + 1
            last = step
            bar.update(job, completed=offset + step + 1, lr=lr, loss=smoothed)

        return callback

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def suggestion_table(suggestions: dict[str, float | None], headline: str | None) -> Table:
    """The rules' suggestions as a rich table, the headline rule marked with ``*``."""
    table = Table(title="Suggested learning rates", caption="* headline suggestion")
    for name, justify in (("", "left"), ("rule", "left"), ("lr", "right"), ("how", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rule, lr in suggestions.items():
        is_headline = rule == headline
        note = RULE_REGISTRY[rule].note if rule in RULE_REGISTRY else ""
        table.add_row("*" if is_headline else "", rule, "-" if lr is None else f"{lr:.3g}",
                      note, style="bold green" if is_headline else None)
    return table


def seeds_table(result: Any) -> Table:
    """Each seed's headline beside the combined one, with their range and spread (max/min)."""
    headlines = [run.suggestion for run in result.runs if run.suggestion is not None]
    low_high = (f"{min(headlines):.3g} - {max(headlines):.3g}" if headlines else "-")
    spread = "-" if result.spread is None else f"{result.spread:.2f}x"
    table = Table(title=f"Headline over {len(result.runs)} seeds",
                  caption=f"range {low_high}, spread {spread}")
    for name, justify in (("seed", "right"), ("lr", "right"), ("rule", "left"),
                          ("run", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for seed, run in zip(result.seeds, result.runs, strict=True):
        table.add_row(str(seed), "-" if run.suggestion is None else f"{run.suggestion:.3g}",
                      run.rule or "-", f"{run.stopped}, {run.steps} steps")
    table.add_row("all", "-" if result.suggestion is None else f"{result.suggestion:.3g}",
                  result.rule or "-", "median curve", style="bold green")
    return table


def _summary(result: Any) -> str:
    if result.stopped == "diverged":
        how = f"diverged at step {result.steps - 1} (lr {result.diverged_at:.3g})"
    else:
        how = f"completed {result.steps} steps"
    headline = ("no suggestion: the loss never fell; widen --range-start/--range-end or add "
                "--range-steps"
                if result.suggestion is None
                else f"suggested lr {result.suggestion:.3g} ({result.reason})")
    return f"{how} in {result.elapsed_s:.1f} s; {headline}"
