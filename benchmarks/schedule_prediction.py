"""Does ``strategy="predict"`` pick as well as the full study, at a sixth of its cost? (issue 18)

For every problem of benchmarks/schedule_prediction_problems.py, through lrscope's public
``lrscope.compare`` (selection on a validation split carved from the training data, every
regret on the test split):

* **full**: the default study (smith recipe, 8 schedules x 3 seeds) and the same with
  ``lr_scales=[0.3, 1, 3]`` (24 candidates x 3 seeds); its pick is the leaderboard's first row.
  Once per order of the study seeds, each first in turn: the first seed runs the range test,
  which sets the suite's peak (the per-problem rows are the first order's; a section scores
  every order and their mean, for full and predict alike).
* **truth**: every candidate of both suites retrained at 6 fresh seeds (3..8); a candidate's
  true value is its mean test loss there, and the truly best candidate the lowest.
* **oracle**: 7 schedule families x 9 peak LRs (0.1x..10x the suite's peak, which the range
  test set), 2 seeds to choose on validation; the chosen one is retrained at the truth seeds.
  The global oracle is the lower of its truth value and the truly best candidate's.
* **predict**: ``strategy="predict"`` with and without ``lr_scales`` in fresh folders, in the
  same seed orders (it trains its first seed).

Per problem: Kendall tau of each strategy's ranking against the truth ranking, the pick's
regret against the truly best candidate and the global oracle, the cost in runs (trial steps,
range test included, / steps of one run) and as a fraction of full's, and the law's error on
the candidates it predicted but did not train. Writes OUT/table.md (printed) and
OUT/results.json; every study is cached under WORK (see schedule_prediction_runs.py).

    .venv/bin/python benchmarks/schedule_prediction.py [--problems a,b] [--tiny]
        [--out benchmarks/results/schedule_prediction] [--work runs/schedule_prediction]

``--tiny`` (CI): 2 problems, 36 steps, 2 study and 2 truth seeds, a 2 x 3 oracle grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from schedule_prediction_problems import HELD_OUT, PROBLEMS, Settings
from schedule_prediction_runs import Runner, arm_name, predict_available

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "schedule_prediction"
DEFAULT_WORK = ROOT / "runs" / "schedule_prediction"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", default=None,
                   help=f"comma-separated, from {', '.join(PROBLEMS + HELD_OUT)} (the last held "
                        "out: run it alone)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--tiny", action="store_true", help="CI size (see the module docstring)")
    p.add_argument("--no-predict", action="store_true", help="only full, oracle and truth")
    args = p.parse_args(argv)
    settings = Settings.tiny_run() if args.tiny else Settings()
    if args.problems:
        names = tuple(n.strip() for n in args.problems.split(",") if n.strip())
        if unknown := [n for n in names if n not in PROBLEMS + HELD_OUT]:
            p.error(f"--problems: unknown {', '.join(unknown)}; choose from "
                    f"{', '.join(PROBLEMS + HELD_OUT)}")
        settings = Settings(**{**settings.__dict__, "problems": names})
    args.settings = settings
    args.work = args.work / ("tiny" if args.tiny else "full")
    return args


def compute(problem: str, settings: Settings, work: Path, with_predict: bool) -> dict[str, Any]:
    """Every arm of one problem (each read back from WORK when it already ran)."""
    runner = Runner(problem, settings, work)
    arms: dict[str, Any] = {arm_name("full", scales, seeds[0], settings.study_seeds):
                            runner.full(scales, seeds)
                            for scales in (False, True) for seeds in settings.seed_orders(scales)}
    arms["oracle"] = runner.oracle(arms["full"]["suite"])
    if with_predict:
        arms.update(predict_columns(runner))
    # the truth of every candidate, of the oracle's pick and of whatever predict picked or
    # trained beyond the suite (its optimised schedule); a predict study with another seed
    # first ran its own range test, so its own suite: every candidate of it (its tau)
    picks = [arm["pick"] for arm in arms.values() if arm["pick"]]
    extra = [label for name, arm in arms.items() if name.startswith(("predict", "full"))
             for label in [*arm["origins"], *arm.get("suite", ())]]
    labels = list(dict.fromkeys([*arms["full"]["suite"], *arms["full-scales"]["origins"],
                                 *picks, *extra]))
    arms["truth"] = runner.truth(labels)
    return arms


def predict_columns(runner: Runner) -> dict[str, Any]:
    """The predict arms (``strategy="predict"``, with and without lr_scales, each with every
    study seed first in turn): {} until this lrscope's compare takes ``strategy=``."""
    settings = runner.settings
    found = {arm_name("predict", scales, seeds[0], settings.study_seeds):
             runner.predict(scales, seeds)
             for scales in (False, True) for seeds in settings.seed_orders(scales)}
    return {arm: study for arm, study in found.items() if study is not None}


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    began = time.monotonic()
    results = {}
    for problem in args.settings.problems:
        print(f"{problem}: ...", file=sys.stderr, flush=True)
        results[problem] = compute(problem, args.settings, args.work, not args.no_predict)
        print(f"{problem}: done at {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    from schedule_prediction_table import render

    args.out.mkdir(parents=True, exist_ok=True)
    table, rows = render(results, args.settings, sys.argv[1:] if argv is None else argv,
                         time.monotonic() - began, predict_available())
    (args.out / "table.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
