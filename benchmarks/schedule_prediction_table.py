"""The table of benchmarks/schedule_prediction.py: per problem and strategy, medians, targets."""

from __future__ import annotations

import datetime
import math
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from code_version import code_version
from schedule_prediction_problems import Settings, kind, oracle_factor
from schedule_prediction_runs import per_candidate
from schedule_prediction_scores import Score, score_problem, untrained_order

STRATEGIES = ("full", "one seed", "predict", "full+scales", "one seed+scales", "predict+scales",
              "oracle grid")
COLUMNS = ("problem", "strategy", "cand.", "tau", "regret vs best", "regret vs oracle",
           "cost (runs)", "cost / full", "law error", "in interval", "self-check", "stopped")


def pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "diverged" if math.isinf(value) else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def cells(s: Score) -> list[str]:
    return [s.problem, s.strategy, str(s.candidates), num(s.tau), pct(s.regret_best),
            pct(s.regret_oracle), num(s.runs, 1), pct(s.fraction), pct(s.law_error),
            pct(s.law_coverage), s.self_check or "-", s.stopped or "-"]


def median(values: Sequence[float | None]) -> float | None:
    """Median with a missing answer (a study with no pick) as inf; None when none applies."""
    if all(v is None for v in values):
        return None
    return float(np.median([math.inf if v is None else v for v in values]))


def medians(scores: list[Score]) -> dict[str, dict[str, float | None]]:
    """Per strategy, medians over the informative problems of its main rows (predict: the
    study seeds' first order; see :func:`over_first_seeds` for the others)."""
    out: dict[str, dict[str, float | None]] = {}
    for strategy in STRATEGIES:
        mine = [s for s in scores if s.strategy == strategy and s.informative
                and s.first_seed is None]
        if not mine:
            continue
        taus = [s.tau for s in mine if s.tau is not None]
        out[strategy] = {
            "problems": len(mine), "tau": float(np.median(taus)) if taus else None,
            "regret_best": median([s.regret_best for s in mine]),
            "regret_oracle": median([s.regret_oracle for s in mine]),
            "runs": median([s.runs for s in mine]),
            "fraction": median([s.fraction for s in mine]),
            "fraction_max": max((s.fraction or 0.0) for s in mine),
            "law_error": median([s.law_error for s in mine if s.law_error is not None] or [None])
            if any(s.law_error is not None for s in mine) else None}
    return out


def mean(values: Sequence[float | None]) -> float | None:
    """Mean with a missing answer as inf (a study with no pick); None when none applies."""
    if all(v is None for v in values):
        return None
    return float(np.mean([math.inf if v is None else v for v in values]))


def mean_tau(values: Sequence[float | None]) -> float | None:
    """Mean of the taus that apply (None: undefined, e.g. every candidate's value the same)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def mean_whole(values: Sequence[float | None]) -> float | None:
    """Mean, None when any value is missing (a regret vs the suite's best needs every
    candidate's truth: a missing one is not known, where :func:`mean` reads no pick as inf)."""
    return None if any(v is None for v in values) else mean(values)


def over_first_seeds(scores: list[Score]) -> list[Score]:
    """Each problem's scores averaged over its runs with each study seed first (tau, regrets,
    cost: their means; the rest the first order's): what :func:`medians` and :func:`targets`
    read for each strategy's expected verdict, over the draws of its first seed."""
    out = []
    for s in scores:
        if s.first_seed is not None:
            continue
        runs = [r for r in scores if r.problem == s.problem and r.strategy == s.strategy]
        if len(runs) > 1:
            s = replace(s, tau=mean_tau([r.tau for r in runs]),
                        regret_best=mean_whole([r.regret_best for r in runs]),
                        regret_oracle=mean([r.regret_oracle for r in runs]),
                        runs=float(np.mean([r.runs for r in runs])),
                        fraction=mean([r.fraction for r in runs]))
        out.append(s)
    return out


def first_seed_lines(scores: list[Score], averaged: list[Score],
                     study_seeds: Sequence[int]) -> list[str]:
    """Per problem and strategy, its regret vs the oracle and tau with each study seed first,
    and their means (``averaged``: :func:`over_first_seeds` of ``scores``)."""
    lines = ["| problem | strategy | " + " | ".join(f"first seed {seed}" for seed in study_seeds)
             + " | mean |", "|---|---|" + "---|" * (len(study_seeds) + 1)]
    for s in averaged:
        if s.strategy == "oracle grid":
            continue
        runs = {r.first_seed if r.first_seed is not None else study_seeds[0]: r for r in scores
                if r.problem == s.problem and r.strategy == s.strategy}
        by_seed = [f"{pct(runs[seed].regret_oracle)} (tau {num(runs[seed].tau)})"
                   if seed in runs else "-" for seed in study_seeds]
        lines.append(f"| {s.problem} | {s.strategy} | {' | '.join(by_seed)} | "
                     f"{pct(s.regret_oracle)} (tau {num(s.tau)}) |")
    return lines


SHARES = {"": 6, "+scales": 12}  # the budget targets: 1/6 of the full study, 1/12 with scales


def margins(m: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """Each Must-show target's margin on the medians ``m`` (:func:`medians`): it passes at
    zero or above; None when unmeasured. One rule for the pass/fail lines and for
    schedule_prediction_resample.py."""
    out: dict[str, float | None] = {}
    for suffix, share in SHARES.items():
        full, pred = m.get("full" + suffix) or {}, m.get("predict" + suffix) or {}
        ro_f, ro_p = full.get("regret_oracle"), pred.get("regret_oracle")
        gap = None if ro_f is None or ro_p is None else ro_f + 0.01 - ro_p
        out["regret" + suffix] = 0.0 if gap is not None and math.isnan(gap) else gap  # inf, inf
        frac, tau = pred.get("fraction"), pred.get("tau")
        out["cost" + suffix] = None if frac is None else 1 / share - frac
        out["tau" + suffix] = None if tau is None else tau - 0.6
    return out


def passes(margin: float | None) -> bool:
    return margin is not None and margin >= 0


def targets(m: dict[str, dict[str, float | None]]) -> list[str]:
    """The Must-show targets of issue 18 as pass/fail lines (reported, never tuned for)."""
    lines = []
    margin = margins(m)
    for suffix, share in SHARES.items():
        full, pred = m.get("full" + suffix), m.get("predict" + suffix)
        if pred is None or full is None:
            lines.append(f"- predict{suffix}: NOT MEASURED (strategy=\"predict\" is not in this "
                         "lrscope; `predict_columns` in schedule_prediction.py runs it)")
            continue
        ok = "PASS" if passes(margin["regret" + suffix]) else "FAIL"
        lines.append(f"- {ok}: median regret vs oracle, predict{suffix} "
                     f"{pct(pred['regret_oracle'])} <= full{suffix} {pct(full['regret_oracle'])}"
                     " + 1 point")
        ok = "PASS" if passes(margin["cost" + suffix]) else "FAIL"
        lines.append(f"- {ok}: median cost of predict{suffix} {pct(pred['fraction'])} "
                     f"of full{suffix}'s steps <= 1/{share} ({pct(1 / share)}); worst problem "
                     f"{pct(pred['fraction_max'])}")
        ok = "PASS" if passes(margin["tau" + suffix]) else "FAIL"
        lines.append(f"- {ok}: median Kendall tau of predict{suffix} "
                     f"{num(pred['tau'])} >= 0.6 (full{suffix}: {num(full['tau'])})")
    return lines


def cpu_model() -> str:
    """The CPU's model name (float32 results of the same command differ between CPUs: the
    GRU's and the MLP's trajectories did between two machines of 2026-12-07/08)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(settings: Settings, argv: Sequence[str], wall_s: float) -> list[str]:
    command = shlex.join(["python", "benchmarks/schedule_prediction.py", *argv])
    return [f"- command: `{command}`",
            f"- code: {code_version()}",
            f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
            f"- machine: {platform.machine()} ({cpu_model()}), {os.cpu_count()} CPUs (shared), "
            f"torch {torch.__version__}, one process, 1 torch thread, parallel=\"batched\" "
            "(digits-gru: \"none\", vmap cannot batch a GRU); "
            f"this run {wall_s / 60:.1f} min (cached studies are read back, not rerun)",
            f"- seeds: study {list(settings.study_seeds)}, truth {list(settings.truth_seeds)}, "
            f"oracle {list(settings.oracle_seeds)} x peak factors "
            f"{list(settings.oracle_factors)}; lr_scales {list(settings.lr_scales)}"
            + (f"; the default suite's studies also with seeds "
               f"{list(settings.more_orders[0])} rotated" if settings.more_orders else "")]


def render(results: dict[str, dict[str, Any]], settings: Settings, argv: Sequence[str],
           wall_s: float, predict_here: bool) -> tuple[str, list[dict[str, Any]]]:
    scores = [s for problem, arms in results.items()
              for s in score_problem(problem, arms, settings.study_seeds,
                                     settings.first_seed_list())]
    studies_s = sum(arm.get("wall_s", 0.0) for arms in results.values() for arm in arms.values())
    lines = ["# Schedule prediction: full vs predict vs truth vs oracle", "", *header(
        settings, argv, wall_s), f"- the studies' own wall time, summed (as first run, each "
        f"with its report): {studies_s / 60:.0f} min", "", "## Problems", ""]
    lines += [f"- {p}: {kind(p)}" for p in results]
    lines += ["", "## Per problem", "", "| " + " | ".join(COLUMNS) + " |",
              "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(s)) + " |" for s in scores if s.first_seed is None]
    m = medians(scores)
    blind = sorted({s.problem for s in scores if not s.informative})
    lines += ["", "## Medians over problems", ""]
    if blind:
        lines += [f"Left out of the medians: {', '.join(blind)}, where every candidate's truth "
                  "lies within 0.5% of the others (nothing learns at the suite's peak LR: "
                  "there is nothing to choose).", ""]
    lines += [
              "| strategy | problems | tau | regret vs best | regret vs oracle | cost (runs) | "
              "cost / full | law error |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v['problems']} | {num(v['tau'])} | {pct(v['regret_best'])} | "
              f"{pct(v['regret_oracle'])} | {num(v['runs'], 1)} | {pct(v['fraction'])} | "
              f"{pct(v['law_error'])} |" for k, v in m.items()]
    edges = []
    for problem, arms in results.items():
        factor = oracle_factor(arms["oracle"]["pick"], arms["full"]["suite"], settings)
        if factor in (settings.oracle_factors[0], settings.oracle_factors[-1]):
            edges.append(f"{problem} ({factor:g}x the suite's peak)")
    if edges:
        lines += ["", "The oracle grid's pick lies at an end of its peak-LR grid on "
                  f"{', '.join(edges)}: the grid may not hold that family's optimum."]
    lines += ["", "## Must-show targets (issue 18)", "", *targets(m)]
    if any(s.first_seed is not None for s in scores):
        seeds = settings.first_seed_list()
        each = over_first_seeds(scores)
        lines += ["", "## Each study seed first", "",
                  "The first seed runs the range test, which sets the suite's peak, and predict "
                  "trains its first seed only: every study rerun with the seeds rotated, each "
                  f"first in turn ({', '.join(str(list(o)) for o in settings.seed_orders())}"
                  + (f"; the default suite's studies also "
                     f"{', '.join(str(list(o)) for o in settings.more_orders)}"
                     if settings.more_orders else "") + "); "
                  "regret vs the global oracle and Kendall tau of each order, and their mean. The "
                  "rows above are the first order's.", "",
                  *first_seed_lines(scores, each, seeds), "",
                  "Medians over the informative problems of each problem's mean over the first "
                  "seeds, and the targets on them:", ""]
        averaged = medians(each)
        lines += ["| strategy | problems | tau | regret vs oracle | cost / full |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['problems']} | {num(v['tau'])} | {pct(v['regret_oracle'])} | "
                  f"{pct(v['fraction'])} |" for k, v in averaged.items() if k != "oracle grid"]
        lines += ["", *targets(averaged)]
        from schedule_prediction_resample import firmness, firmness_lines  # it reads this module

        lines += ["", "How firmly the seed orders decide each target: each problem's orders "
                  "drawn again with replacement (the same draw for every strategy of a suite), "
                  "the means, medians and margins taken again (schedule_prediction_resample.py):",
                  "",
                  *firmness_lines(firmness(scores))]
    lines += ["", "## The untrained candidates' order (predict, default suite)", "",
              "Kendall tau against the truth of the candidates predict left untrained, ordered "
              "by the law's values and by their probes; the study follows the law's order once "
              "its values failed their self-check, the probes' where no law was fitted.", "",
              "| problem | ordered by | tau, law's order | tau, probes' order |",
              "|---|---|---|---|"]
    for problem, arms in results.items():
        if "predict" in arms and "truth" in arms:
            truth = per_candidate(arms["truth"], "test", "mean")
            by, law, probes = untrained_order(arms["predict"], truth)
            lines.append(f"| {problem} | {by or '-'} | {num(law)} | {num(probes)} |")
    if not predict_here:
        lines += ["", "strategy=\"predict\" is not available in this lrscope: the predict rows "
                  "are missing, not zero."]
    said = [(p, arm, line) for p, arms in results.items() for arm in ("predict", "predict-scales")
            if arm in arms for line in (arms[arm].get("record") or {}).get("lines", [])]
    if said:
        lines += ["", "## What the predict studies said", ""]
        lines += [f"- {p} ({arm}): {line}" for p, arm, line in said]
    return "\n".join(lines) + "\n", [s.row() for s in scores]
