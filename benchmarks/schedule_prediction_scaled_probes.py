"""Probes for a suite with ``lr_scales``, every seed order: can they meet issue 18's 1/12?

A predict study with ``lr_scales=[0.3, 1, 3]`` (24 candidates) whose law fails trains every
candidate once: 33.6% of the full study's steps against a budget of 1/12. The probes that
serve the default suite (:mod:`lrscope.study.predict.probes`) are not used there, because a
compressed run prefers a higher peak LR than a full one; this measures how much that costs,
on the benchmark's own problems, truth and oracle (run benchmarks/schedule_prediction.py
first: the full-scales arms of every seed order and the truth are read from its WORK folder).

For each problem, seed order (its first seed runs the probes, as predict's first seed does)
and share of the budget: every candidate of that order's suite probed at the first seed,
compressed k times (the smallest k whose probes fit the share of what the budget leaves after
the range test), then m full-length runs, m what the rest of the budget holds, read from that
order's full study (the same seeded trials a study would run). Two ways to spend the m runs:

* **top-m by probe**: the m best-probed; the ranking is the probes'.
* **best probe per scale + offsets**: the best-probed candidate of each scale first (the scales
  compared at full length, where the probes mislead), then the best of the rest by its probe
  plus its scale's offset (full-length minus probe value of that scale's trained runs); the
  ranking is measured where trained, probe plus offset elsewhere.

Beside them, from the same arms: every candidate once at the first seed (what predict with
``lr_scales`` trained until it probed, 055530a) and the full study. The pick is the best
measured; scored as the main benchmark (regret against the global oracle on the test split,
Kendall tau against the truth), per problem the mean over its seed orders, then the median over
the informative problems.

    .venv/bin/python benchmarks/schedule_prediction_scaled_probes.py [--share 0.25,0.5,0.75]
        [--horizon-exponent 0.5] [--tiny] [--work runs/schedule_prediction]
        [--out benchmarks/results/schedule_prediction]

``--horizon-exponent E`` probes at k ** E times the candidates' LRs (a shorter run prefers a
higher peak; lrscope's own probes with lr_scales use 0.5, :data:`lrscope.study.predict.probes.
HORIZON_EXPONENT`). Writes OUT/scaled_probes.md (OUT/scaled_probes-hE.md with E; printed).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from schedule_prediction_probes import (
    curves,
    probe_parser,
    probe_specs,
    regrets,
    run_probes,
)
from schedule_prediction_problems import Settings
from schedule_prediction_runs import arm_name, per_candidate
from schedule_prediction_scores import _tau, informative
from schedule_prediction_table import median, num, pct

from lrscope.study.predict.curves import final_value
from lrscope.study.predict.probes import compression

BUDGET = 1 / 12  # predict's default with lr_scales


def with_offsets(origins: dict[str, list[Any]], probe: dict[str, float],
                 full: dict[str, float], runs: int) -> tuple[list[str], dict[str, float]]:
    """The best-probed candidate of each scale, then the best by probe + its scale's offset,
    while ``runs`` allow; returns the trained and the ranking (measured where trained).

    >>> origins = {"a1": ["a", 1], "b1": ["b", 1], "a3": ["a", 3], "b3": ["b", 3]}
    >>> probe = {"a1": 0.5, "b1": 0.6, "a3": 0.3, "b3": 0.4}
    >>> with_offsets(origins, probe, {"a1": 0.2, "b1": 0.25, "a3": 0.9, "b3": 0.5}, 3)[0]
    ['a1', 'a3', 'b1']
    """
    scales = sorted({scale for _, scale in origins.values()})
    trained = [min((c for c in origins if origins[c][1] == scale), key=lambda c: (probe[c], c))
               for scale in scales][:runs]

    def ranking() -> dict[str, float]:
        offset = {}
        for scale in scales:
            gaps = [full[c] - probe[c] for c in trained if origins[c][1] == scale
                    and math.isfinite(full[c]) and math.isfinite(probe[c])]
            offset[scale] = statistics.fmean(gaps) if gaps else math.inf
        return {c: full[c] if c in trained else probe[c] + offset[origins[c][1]]
                for c in origins}

    while len(trained) < runs:
        ranked = ranking()
        trained.append(min((c for c in origins if c not in trained),
                           key=lambda c: (ranked[c], c)))
    return trained, ranking()


def score(problem: str, settings: Settings, work: Path, share: float,
          exponent: float = 0.0) -> list[dict[str, Any]]:
    arms = work / problem
    truth_all = per_candidate(json.loads((arms / "truth.json").read_text()), "test", "mean")
    oracle = min(truth_all.values())
    rows = []
    for order in settings.seed_orders(True):
        arm = arm_name("full", True, order[0], settings.study_seeds)
        full = json.loads((arms / f"{arm}.json").read_text())
        origins, seed = full["origins"], order[0]
        candidates = sorted(origins)
        truth = {c: truth_all[c] for c in candidates}
        steps = full["steps"]
        full_steps = len(candidates) * len(settings.study_seeds) * steps + full["range_steps"]
        limit = math.floor(BUDGET * full_steps + 1e-9)
        at_full = curves(arms / arm, steps, seed, {c: c for c in candidates})
        first = {c: final_value(at_full.get(c)) for c in candidates}
        k = compression(len(candidates), steps, share * (limit - full["range_steps"]))
        short, specs = probe_specs(candidates, steps, k, exponent)
        tag = f"scaled-probes-k{k}-{arm}" + (f"-h{exponent:g}" if exponent else "")
        out = run_probes(problem, settings, arms / tag, short, list(specs.values()), seed)
        probes = curves(out, short, seed, specs)
        probe = {c: final_value(probes.get(c)) for c in candidates}
        spent = full["range_steps"] + len(candidates) * short
        m = max(0, (limit - spent) // steps)
        base = {"problem": problem, "share": share, "seed": seed, "k": k, "m": m,
                "informative": informative(truth)}
        cost = (spent + m * steps) / full_steps
        top = sorted(candidates, key=lambda c: (probe[c], c))[:m]
        trained, ranked = with_offsets(origins, probe, first, m)
        for how, chosen, ranking, fraction in [
                ("top-m by probe", top, probe, cost),
                ("best probe per scale + offsets", trained, ranked, cost),
                ("every candidate once (predict with lr_scales before 055530a)", candidates, first,
                 (len(candidates) * steps + full["range_steps"]) / full_steps),
                ("full (3 seeds)", None, per_candidate(full, "val"), 1.0)]:
            pick = (full["pick"] if chosen is None else
                    min(chosen, key=lambda c: (first[c], c)) if chosen else None)
            rows.append({**base, "how": how, "tau": _tau(ranking, truth),
                         "regret": regrets(pick, truth, oracle)[1] if pick else None,
                         "fraction": fraction})  # no pick: no full-length run fits (--tiny)
    return rows


def render(rows: list[dict[str, Any]], argv: list[str], wall_s: float) -> str:
    lines = ["# Probes with lr_scales, every seed order (issue 18's 1/12)", "",
             f"- command: `python benchmarks/schedule_prediction_scaled_probes.py "
             f"{' '.join(argv)}`",
             f"- torch {torch.__version__}, one process, 1 torch thread; this run "
             f"{wall_s / 60:.1f} min (cached probe studies are read back)",
             "- per problem: regret vs the global oracle and Kendall tau, the mean over the seed "
             "orders (each order's regrets in brackets); k: compression, m: full-length runs", "",
             "| share | how | problem | k | m | regret vs oracle | tau | cost / full |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[float, str], dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault((r["share"], r["how"]), {}).setdefault(r["problem"], []).append(r)
    medians = []
    for (share, how), problems in groups.items():
        kept = []
        for problem, mine in problems.items():
            picked = [r["regret"] for r in mine if r["regret"] is not None]
            regret = statistics.fmean(picked) if len(picked) == len(mine) else None
            taus = [r["tau"] for r in mine if r["tau"] is not None]
            tau = statistics.fmean(taus) if taus else None
            each = ", ".join(pct(r["regret"]) for r in mine)
            lines.append(f"| {share:g} | {how} | {problem} | {mine[0]['k']} | {mine[0]['m']} "
                         f"| {pct(regret)} ({each}) | {num(tau)} | "
                         f"{pct(statistics.fmean(r['fraction'] for r in mine))} |")
            if mine[0]["informative"]:
                kept.append((regret, tau, statistics.fmean(r["fraction"] for r in mine)))
        taus = [k[1] for k in kept if k[1] is not None]
        medians.append(f"| {share:g} | {how} | {len(kept)} | "
                       f"{pct(median([k[0] for k in kept]))} | "
                       f"{num(median(taus) if taus else None)} | "
                       f"{pct(median([k[2] for k in kept]))} |")
    lines += ["", "## Medians over the informative problems", "",
              "| share | how | problems | regret vs oracle | tau | cost / full |",
              "|---|---|---|---|---|---|", *medians]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    p = probe_parser(__doc__.split("\n\n")[0], "0.25,0.5,0.75")
    p.add_argument("--horizon-exponent", type=float, default=0.0,
                   help="probe at (compression ** this) times the LRs (lrscope: 0.5)")
    args = p.parse_args(args_in)
    settings = Settings.tiny_run() if args.tiny else Settings()
    work = args.work / ("tiny" if args.tiny else "full")
    torch.set_num_threads(1)
    began = time.monotonic()
    problems = [name for name in settings.problems if (work / name / "truth.json").exists()]
    if not problems:
        p.error(f"no cached arms under {work}: run benchmarks/schedule_prediction.py first")
    rows = [row for share in (float(v) for v in args.share.split(",") if v.strip())
            for problem in problems
            for row in score(problem, settings, work, share, args.horizon_exponent)]
    table = render(rows, args_in, time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"scaled_probes-h{args.horizon_exponent:g}.md" if args.horizon_exponent else \
        "scaled_probes.md"
    (args.out / name).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
