"""``lrscope import-tb LOGDIR... --out DIR``: TensorBoard runs into DIR's results store.

Each LOGDIR becomes one run of kind ``import`` (one trial per event file); importing the same
LOGDIR again adds only attempts not seen before. ``lrscope report DIR`` then draws them.
"""

from __future__ import annotations

import argparse

from lrscope.cli import COMMANDS, describe
from lrscope.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-tb", help=COMMANDS["import-tb"][1],
        description=describe(__doc__),
        epilog="Example: lrscope import-tb shared/seed/tb_logs --out runs/seed && "
               "lrscope report runs/seed",
    )
    parser.add_argument("logdirs", nargs="+", metavar="LOGDIR",
                        help="a TensorBoard log directory: one folder per run name")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="results directory; its study.sqlite is made if missing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lrscope.outputs.import_tb import import_logdirs
    from lrscope.study.store import Store

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a directory")
    for logdir in args.logdirs:  # before making the store, so a typo leaves nothing behind
        if not Path(logdir).is_dir():
            raise InputError(f"LOGDIR {logdir}: no such directory")
    with Store.in_dir(out) as store:
        summaries = import_logdirs(store, args.logdirs)
    for summary in summaries:
        print(summary.line())
    print(f"store: {out / 'study.sqlite'}; draw it with: lrscope report {out}")
    return 0
