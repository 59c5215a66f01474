"""``lrscope report DIR``: (re)write DIR/report.md, DIR/report.html and DIR/leaderboard.csv.

Reads only the results store (DIR/study.sqlite), so it can run while a study is still going
(it shows what is finished) or long after, on another machine.
"""

from __future__ import annotations

import argparse
import math

from rich.console import Console

from lrscope.cli import COMMANDS, describe
from lrscope.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help=COMMANDS["report"][1],
        description=describe(__doc__),
        epilog="Example: lrscope report runs/study",
    )
    parser.add_argument("directory", metavar="DIR",
                        help="a results directory (made by lrscope compare or import-tb)")
    parser.add_argument("--target-accuracy", type=float, metavar="A", default=None,
                        help="test accuracy (0..1) for the 'steps to target' column (default: "
                             "the run's config, else 95%% of the best mean final accuracy)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    target = args.target_accuracy
    if target is not None and not (math.isfinite(target) and 0 < target <= 1):
        raise InputError(f"--target-accuracy {target!r} is out of range; give a fraction in (0, 1]")
    # Imported here: matplotlib and the report modules load only when this command runs.
    from lrscope.outputs.report.build import write_report
    from lrscope.outputs.report.leaderboard_output import rich_table

    files = write_report(args.directory, target_accuracy=target)
    console = Console()
    for name, rows in files.leaderboards:
        console.print(rich_table(rows, title=f"Leaderboard: {name}", width=console.width))
    console.print(f"{len(files.figures)} figures; wrote {files.markdown}, {files.html} and "
                  f"{files.leaderboard_csv}", highlight=False, soft_wrap=True)
    return 0
