"""``lrscope schedules SPEC... [--steps N] [--out FIG.png] [--csv FILE]``.

Plots each schedule's LR (and, when any schedule cycles it, momentum in a second panel)
against the optimizer step, writes the values as CSV (``spec, step, lr, momentum``) and prints
a short table (first, max, min, final LR). With no SPEC it plots the seed study's schedules.
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lrscope.cli import COMMANDS
from lrscope.errors import InputError
from lrscope.schedules import REGISTRY, SEED_SPECS, SEED_TOTAL_STEPS, Schedule, parse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_OUT = "runs/schedules.png"  # under runs/, as find and compare write
CSV_COLUMNS = ("spec", "step", "lr", "momentum")


@dataclass(frozen=True)
class Curve:
    """One schedule evaluated at steps ``0 .. len(lrs) - 1``."""

    spec: str
    lrs: list[float]
    # None when the schedule leaves momentum alone; an entry is None at a step where it does
    # (a join of a constant LR and then onecycle sets momentum only after the boundary)
    momenta: list[float | None] | None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedules", help=COMMANDS["schedules"][1],
        description="Plot learning-rate schedules (and momentum, where a schedule cycles it) "
        "against the optimizer step, write their values and print first/max/min/final LR.",
        epilog=f"Families: {', '.join(sorted(REGISTRY))}. Example: lrscope schedules "
        "\"onecycle(max_lr=1.1)\" "
        "\"cyclic(base_lr=0.01, max_lr=1, step_size_up=50, step_size_down=100)\" "
        "\"warmup(step(lr=1, step_size=100, gamma=0.5), steps=50)\" --steps 2345",
    )
    parser.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help="schedule specs like 'exponential(lr=1, gamma=0.999)' or combinators of them "
        "like 'join([constant(lr=0.01), cosine(lr=0.1)], boundaries=[100])'; none: the seed "
        "study's",
    )
    parser.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="optimizer steps to plot, and total_steps of finite schedules that leave it out "
        f"(default: the longest total_steps given, else {SEED_TOTAL_STEPS}, the seed's run)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FIG.png",
                        help=f"figure to write (default {DEFAULT_OUT})")
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the values: spec, step, lr, momentum (spec as parsed, with "
        "total_steps filled in; momentum empty where the schedule leaves it alone)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps={args.steps} is out of range; it must be >= 1")
    out = Path(args.out)
    check_figure_path(out)
    schedules, steps = resolve(list(args.specs), args.steps)
    curves = [evaluate(schedule, steps) for schedule in schedules]
    plot(curves, out)
    if args.csv:
        write_csv(curves, Path(args.csv))
    print_table(curves, steps)
    print(f"wrote {out}" + (f" and {args.csv}" if args.csv else ""))
    return 0


def resolve(specs: list[str], steps: int | None) -> tuple[list[Schedule], int]:
    """The parsed schedules, each with its total_steps, and the number of steps to plot.

    Finite schedules without ``total_steps`` take ``steps``; without ``--steps`` that is an
    error naming the family, rather than a silent guess. The seed study's schedules (no
    specs) run over the seed's 2345 steps unless ``--steps`` says otherwise.

    >>> specs = ["onecycle(max_lr=1, total_steps=300)", "constant(lr=0.1)"]
    >>> schedules, steps = resolve(specs, None)
    >>> steps, [s.spec() for s in schedules]
    (300, ['onecycle(max_lr=1, total_steps=300)', 'constant(lr=0.1)'])
    """
    if not specs:
        specs, steps = list(SEED_SPECS), steps or SEED_TOTAL_STEPS
    parsed = [parse(spec, total_steps=steps) for spec in specs]
    for schedule in parsed:
        if schedule.needs_total_steps():
            schedule.require_total_steps()  # raises "missing total steps for <family>: ..."
    if steps is None:
        totals = [s.require_total_steps() for s in parsed if s.is_finite]
        steps = max(totals, default=SEED_TOTAL_STEPS)
    for schedule in parsed:  # an LR that overflows is one line, not a traceback later
        schedule.check_finite(steps)
    return parsed, steps


def evaluate(schedule: Schedule, steps: int) -> Curve:
    lrs = schedule.lrs(steps)
    if not schedule.cycles_momentum:
        return Curve(schedule.spec(), lrs, None)
    momenta = [schedule.momentum(step) for step in range(steps)]
    return Curve(schedule.spec(), lrs, [None if m is None else float(m) for m in momenta])


def spans_decades(values: list[float], decades: float = 2.0) -> bool:
    """True when the positive values span ``decades`` orders of magnitude or more.

    >>> spans_decades([1.0, 0.5, 0.1]), spans_decades([1.0, 1e-3, 0.0])
    (False, True)
    """
    positive = [v for v in values if v > 0]
    return bool(positive) and math.log10(max(positive) / min(positive)) >= decades


def check_figure_path(out: Path) -> None:
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = out.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise InputError(
            f"--out={str(out)!r}: unknown figure format {out.suffix or '(none)'!r}; "
            f"use one of {', '.join('.' + f for f in sorted(formats))}, e.g. --out schedules.png"
        )


def plot(curves: list[Curve], out: Path) -> Figure:
    """LR against step (log scale when it spans decades), momentum below when cycled."""
    # Figure without pyplot: no global state and no GUI backend, so it runs headless (Agg).
    from matplotlib.figure import Figure

    # Each schedule keeps its colour in both panels.
    colours = {id(curve): f"C{i % 10}" for i, curve in enumerate(curves)}
    with_momentum = [c for c in curves if c.momenta is not None]
    fig = Figure(figsize=(10, 6.5 if with_momentum else 4.5), layout="constrained")
    axes = fig.subplots(2 if with_momentum else 1, 1, sharex=True, squeeze=False)[:, 0]
    lr_axis = axes[0]
    for curve in curves:
        lr_axis.plot(range(len(curve.lrs)), curve.lrs, label=curve.spec, linewidth=1.2,
                     color=colours[id(curve)])
    if spans_decades([lr for curve in curves for lr in curve.lrs]):
        lr_axis.set_yscale("log")
    lr_axis.set_ylabel("learning rate")
    lr_axis.set_title("learning-rate schedules")
    lr_axis.grid(True, which="both", alpha=0.3)
    lr_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    if with_momentum:
        momentum_axis = axes[1]
        for curve in with_momentum:
            assert curve.momenta is not None
            momenta = [math.nan if m is None else m for m in curve.momenta]  # a gap
            momentum_axis.plot(range(len(momenta)), momenta, label=curve.spec,
                               linewidth=1.2, color=colours[id(curve)])
        momentum_axis.set_ylabel("momentum (or Adam beta1)")
        momentum_axis.grid(True, alpha=0.3)
        momentum_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                             frameon=False)
    axes[-1].set_xlabel("optimizer step")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return fig


def write_csv(curves: list[Curve], path: Path) -> None:
    """One row per schedule and step; ``repr`` keeps every float exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for curve in curves:
            for step, lr in enumerate(curve.lrs):
                value = None if curve.momenta is None else curve.momenta[step]
                momentum = "" if value is None else repr(value)
                writer.writerow((curve.spec, step, repr(lr), momentum))


def print_table(curves: list[Curve], steps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"learning rate over {steps} steps")
    # a spec is never broken mid-token: it wraps at its ", " or, at worst, is cut with "…"
    table.add_column("spec", overflow="ellipsis", ratio=1, min_width=24)
    for name in ("first", "max", "min", "final"):
        table.add_column(name, justify="right")
    for curve in curves:
        lrs = curve.lrs
        table.add_row(curve.spec, *(f"{v:.4g}" for v in (lrs[0], max(lrs), min(lrs), lrs[-1])))
    Console().print(table)
