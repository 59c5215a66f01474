"""What predict's full-length runs could pick, had they been chosen perfectly (issue 18).

Without ``lr_scales`` a predict study trains the best-probed candidate at full length, then the
ones its law names, as far as its budget goes, all at the first seed, and picks the best it
measured. This asks what the choice of those runs is worth: with n full-length runs, the
best-probed candidate and the n - 1 others of best *truth* (a perfect law), picked by their
first-seed measurement as predict picks. When that cannot meet a target, no better law can
within n runs: only more runs (or seeds) can.

It reads the WORK folder of benchmarks/schedule_prediction.py (its full, predict and truth
arms, every seed order; nothing is trained): each rotated suite's first-seed trials of the full
study stand for what predict trains at that seed (the same trial keys, the same seeded runs);
the probes' order is the predict study's own. Printed, as markdown: per problem, the regret vs
the global oracle (the lowest truth of anything trained) of predict's pick and of the perfect
choice with n = 1..4 runs, each the mean over the seed orders, and their medians over the
informative problems (the benchmark's table judges its targets on the same medians).

    .venv/bin/python benchmarks/schedule_prediction_bound.py [--work runs/schedule_prediction]
        [--tiny]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from schedule_prediction import DEFAULT_WORK
from schedule_prediction_problems import Settings
from schedule_prediction_runs import arm_name, per_candidate
from schedule_prediction_scores import informative
from schedule_prediction_table import pct

RUNS = (1, 2, 3, 4)


def perfect_pick(probes: dict[str, float | None], truth: dict[str, float],
                 first_seed: dict[str, float], runs: int) -> str:
    """The best-probed candidate and the ``runs - 1`` others of best truth, the one that
    measured best at the first seed (ties: the label).

    >>> perfect_pick({"a": 0.1, "b": 0.3, "c": 0.2}, {"a": 0.5, "b": 0.2, "c": 0.4},
    ...              {"a": 0.45, "b": 0.5, "c": 0.3}, runs=2)
    'a'
    """
    order = sorted(probes, key=lambda label: (math.inf if probes[label] is None
                                              else probes[label], label))
    rest = sorted(order[1:], key=lambda label: (truth[label], label))
    chosen = [order[0], *rest[:runs - 1]]
    return min(chosen, key=lambda label: (first_seed[label], label))


def problem_rows(folder: Path, settings: Settings) -> dict[str, list[float]] | None:
    """Each strategy's regrets vs the global oracle over the seed orders, or None when the
    problem is not informative or lacks an arm."""
    def arm(name: str) -> dict[str, Any] | None:
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    truth_arm, scaled = arm("truth"), arm("full-scales")
    if truth_arm is None or scaled is None:
        return None
    truth = per_candidate(truth_arm, "test", "mean")
    oracle = min(truth.values())
    if not informative({k: truth[k] for k in scaled["origins"] if k in truth}):
        return None
    found: dict[str, list[float]] = {}
    for seeds in settings.seed_orders(scales=False):
        full = arm(arm_name("full", False, seeds[0], settings.study_seeds))
        predict = arm(arm_name("predict", False, seeds[0], settings.study_seeds))
        if full is None or predict is None or not (predict.get("record") or {}).get("probes"):
            continue
        # the benchmark's "one seed" values: the full study's first seed alone
        first = per_candidate({**full, "trials": [t for t in full["trials"]
                                                  if t["seed"] == seeds[0]]}, "val")
        probes = predict["record"]["probes"]
        if not set(probes) <= set(first) or not set(probes) <= set(truth):
            continue
        picks = {"predict (as run)": predict["pick"]}
        picks.update({f"perfect, {n} run{'s' * (n > 1)}": perfect_pick(probes, truth, first, n)
                      for n in RUNS})
        for name, pick in picks.items():
            value = truth.get(pick) if pick else None
            found.setdefault(name, []).append(math.inf if value is None else value / oracle - 1)
    return found or None


def render(rows: dict[str, dict[str, list[float]]]) -> str:
    names = list(next(iter(rows.values()))) if rows else []
    lines = ["| problem | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    means = {problem: {name: statistics.mean(values[name]) for name in names}
             for problem, values in rows.items()}
    for problem, row in means.items():
        lines.append(f"| {problem} | " + " | ".join(pct(row[name]) for name in names) + " |")
    medians = [statistics.median(row[name] for row in means.values()) for name in names]
    lines.append("| **median** | " + " | ".join(f"**{pct(m)}**" for m in medians) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--tiny", action="store_true", help="read the --tiny run's folder")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings.tiny_run() if args.tiny else Settings()
    work = args.work / ("tiny" if args.tiny else "full")
    rows = {problem: found for problem in settings.problems
            if (found := problem_rows(work / problem, settings)) is not None}
    if not rows:
        print(f"no informative problem with every arm under {work}", file=sys.stderr)
        return 1
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
