"""The ``lrscope`` command: parses arguments and hands over to one module per subcommand.

Exit codes: 0 done, 2 bad input (one line on stderr, no traceback), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from lrscope.errors import InputError, did_you_mean

# subcommand -> (module in lrscope.cli with add_parser(subparsers) and run(args) -> int, help).
# Only the module of the command that runs is imported: `lrscope find` never loads the study,
# the report or their libraries, and `lrscope --help` loads none.
COMMANDS = {
    "schedules": ("schedules", "plot LR schedules against the step and write their values"),
    "find": ("find", "LR range test: suggested learning rates, plots and history"),
    "compare": ("compare", "train a suite of schedules side by side, several seeds, "
                "leaderboard"),
    "report": ("report", "write report.md and a self-contained report.html from a results "
               "directory"),
    "import-tb": ("import_tb", "import TensorBoard event files (e.g. the seed study's tb_logs) "
                  "into a store"),
}
DESCRIPTION = ("Which learning rate, and which schedule? The LR range test and a side-by-side "
               "study of learning-rate schedules, on one CPU or many GPUs.")


def describe(doc: str | None) -> str | None:
    r"""A module docstring's first paragraph in plain words, for ``--help`` (no rst markup).

    >>> describe("``lrscope find``: the LR range test,\nand more.\n\nDetails.")
    'lrscope find: the LR range test, and more.'
    """
    if not doc:
        return None
    first = doc.strip().split("\n\n", 1)[0]
    text = " ".join(first.split())
    text = re.sub(r":(?:func|class|mod|meth|data):`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, and a flag must be spelled in
    full: with abbreviations, ``--lr 0.1`` silently ran as ``--lr-scales 0.1`` and ``--seed 3``
    as ``--seeds 3`` (issue 19 item 1). Subparsers are this class too, so they inherit it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        wrong = re.search(r"invalid choice: '([^']*)'", message)
        hint = did_you_mean(wrong.group(1), COMMANDS) if wrong and self.prog == "lrscope" else ""
        self.exit(2, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")


def build_parser(command: str | None = "all") -> argparse.ArgumentParser:
    """The parser; ``command`` names the one subcommand to load in full (``"all"``: every one,
    None: none, only their names and help for the listing)."""
    parser = _Parser(prog="lrscope", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"lrscope {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if command in ("all", name):
            importlib.import_module(f"lrscope.cli.{module_name}").add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lrscope")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _unknown_flags(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> NoReturn:
    """Exit 2 with one line: the first unknown argument, the closest flag of ``command`` and a
    pointer to ``lrscope COMMAND --help``."""
    sub = next(action for action in parser._actions
               if isinstance(action, argparse._SubParsersAction)).choices[command]
    flags = [flag for action in sub._actions for flag in action.option_strings
             if flag not in ("-h", "--help")]
    wrong = unknown[0].split("=", 1)[0]
    # the flags that an abbreviation used to pick (--lr: --lr-scales), else the closest name
    longer = [flag for flag in flags if flag.startswith(wrong)] if len(wrong) > 2 else []
    if longer:
        hint = f" (did you mean {' or '.join(repr(flag) for flag in longer[:3])}?)"
    else:
        hint = did_you_mean(wrong, flags) if wrong.startswith("-") else ""
    print(f"{sub.prog}: error: unrecognized arguments: {' '.join(unknown)}{hint} "
          f"(see {sub.prog} --help)", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # after a subcommand: that subcommand's parser names it and its --help
        _unknown_flags(parser, args.command, unknown)
    try:
        return int(args.run(args) or 0)
    except InputError as err:
        print(f"lrscope {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lrscope {args.command}: interrupted; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
