"""The suggestion harness' outputs: the Markdown table (trained regrets, the Must-show targets,
then interpolated regrets of every lrscope rule and a few combinations) and the CSV rows.

Per task, a finder's regret over the range-test seeds is summarised as its median (the table's
number) and its worst seed. "Task regret" for the "no task worse than 30%" target is the
per-task median; the worst single seed is shown beside it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suggestion_regret import (
    Oracle,
    fmt_regret,
    fmt_spread,
    geometric_mean,
    median,
    spread,
    worst,
)

TRAINED_FINDERS = ("lrscope", "lrscope-seeds3", "torch-lr-finder", "fastai-valley", "lightning")
HEADLINES = {"lrscope": "single range test", "lrscope-seeds3": "--seeds 3"}
NO_LR = ("prodigy", "schedulefree")
LABELS = {"lrscope": "lrscope headline", "lrscope-seeds3": "lrscope --seeds 3",
          "torch-lr-finder": "torch-lr-finder 0.2.2",
          "fastai-valley": "fastai valley (on tlf's curve)",
          "lightning": "Lightning rule (on tlf's curve)", "prodigy": "Prodigy (lr=1, cosine)",
          "schedulefree": "Schedule-Free (default LR)"}
NOT_HEADLINE = ("divergence",)  # an upper bound, never a training LR


@dataclass
class TaskResult:
    """Everything measured on one task."""

    name: str
    kind: str
    oracle: Oracle
    suggested: dict[str, list[float | None]]  # finder -> LR per range-test seed
    regrets: dict[str, list[float | None]]  # finder -> trained regret per seed (no-LR: one)
    rules: list[dict[str, float | None]]  # per seed: every lrscope rule's LR
    headline_rules: list[str | None] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)  # per seed: result.warnings
    # With --train-rules: every lrscope rule's LR trained too (rule -> regret per seed).
    trained_rules: dict[str, list[float | None]] = field(default_factory=dict)

    def candidates(self) -> dict[str, list[float | None]]:
        """LR per seed of every lrscope rule, of pairs' geometric means, and of each rule's
        median over the seeds (what a multi-seed headline would give), for the interpolated
        table."""
        names = sorted({k for r in self.rules for k in r if k not in NOT_HEADLINE})
        out: dict[str, list[float | None]] = {n: [r.get(n) for r in self.rules] for n in names}
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                out[f"geo({a},{b})"] = [geometric_mean([r.get(a), r.get(b)]) for r in self.rules]
        for n in names:
            lrs = out[n]
            one = None if any(v is None for v in lrs) else sorted(lrs)[len(lrs) // 2]  # type: ignore[type-var]
            out[f"seed-median {n}"] = [one] * len(lrs)
        return out


def _cell(values: Sequence[float | None]) -> str:
    """median / worst over seeds; a seed without an answer counts as inf and is named."""
    if len(values) == 1:
        return fmt_regret(values[0])
    missing = sum(v is None for v in values)
    if missing == len(values):
        return "no answer"
    note = f" ({missing} no answer)" if missing else ""
    return f"{fmt_regret(median(values))} / {fmt_regret(worst(values))}{note}"


def _within_point(task: TaskResult, finder: str = "lrscope") -> bool:
    return median(task.regrets[finder]) <= median(task.regrets["torch-lr-finder"]) + 0.01


def _pooled(tasks: Sequence[TaskResult], finder: str) -> list[float | None]:
    return [v for t in tasks for v in t.regrets[finder]]


def targets(tasks: Sequence[TaskResult], finder: str = "lrscope") -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each Must-show bullet this harness judges, for one of
    lrscope's headlines (:data:`HEADLINES`)."""
    head = median(_pooled(tasks, finder))
    per_task = {t.name: median(t.regrets[finder]) for t in tasks}
    worst_task = max(per_task, key=lambda n: per_task[n])
    share = sum(_within_point(t, finder) for t in tasks) / len(tasks)
    prodigy = median(_pooled(tasks, "prodigy"))
    spreads = {t.name: spread(t.suggested[finder]) for t in tasks}
    widest = max(spreads, key=lambda n: spreads[n])
    seeds = max(len(t.suggested[finder]) for t in tasks)
    return [
        ("headline median regret <= 3% (tasks x seeds)", fmt_regret(head), head <= 0.03),
        ("no task worse than 30% (per-task median)",
         f"worst {worst_task}: {fmt_regret(per_task[worst_task])}", per_task[worst_task] <= 0.30),
        ("within one point of torch-lr-finder on >= 80% of tasks",
         f"{share:.0%} of {len(tasks)}", share >= 0.8),
        ("median no worse than Prodigy's", f"{fmt_regret(head)} vs {fmt_regret(prodigy)}",
         head <= prodigy),
        (f"suggestion spread over {seeds} seeds <= 2x on every task",
         f"widest {widest}: {fmt_spread(spreads[widest])}"
         + (" (one seed: not judged)" if seeds < 2 else ""), spreads[widest] <= 2.0),
    ]


def markdown(tasks: Sequence[TaskResult], header: Mapping[str, str]) -> str:
    lines = ["# Suggestion quality: regret of each finder's max_lr under OneCycleLR", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += ["", "Regret = final test loss at the suggested max_lr (OneCycleLR, torch defaults, "
              "trained, mean of the training seeds) / best of the oracle grid - 1. "
              "Cells: median / worst over range-test seeds. `*` = the oracle is at an end of "
              "its grid.", ""]
    cols = ["task", "kind", "oracle max_lr", "oracle loss", LABELS["lrscope"], "spread",
            *(LABELS[f] for f in (*TRAINED_FINDERS[1:], *NO_LR))]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for t in tasks:
        flag = "" if t.oracle.interior else " *"
        cells = [t.name, t.kind, f"{t.oracle.lr:.3g}{flag}", f"{t.oracle.loss:.4f}",
                 _cell(t.regrets["lrscope"]), fmt_spread(spread(t.suggested["lrscope"])),
                 *(_cell(t.regrets[f]) for f in (*TRAINED_FINDERS[1:], *NO_LR))]
        lines.append("| " + " | ".join(cells) + " |")
    summary = ["**median (tasks x seeds)**", "", "", "",
               fmt_regret(median(_pooled(tasks, "lrscope"))),
               fmt_spread(max(spread(t.suggested["lrscope"]) for t in tasks)) + " max",
               *(fmt_regret(median(_pooled(tasks, f))) for f in (*TRAINED_FINDERS[1:], *NO_LR))]
    lines.append("| " + " | ".join(summary) + " |")
    worst_row = ["**worst task (its median)**", "", "", ""]
    for f in ("lrscope", "", *TRAINED_FINDERS[1:], *NO_LR):
        if not f:
            worst_row.append("")
            continue
        per = {t.name: median(t.regrets[f]) for t in tasks}
        name = max(per, key=lambda n: per[n])
        worst_row.append(f"{fmt_regret(per[name])} ({name})")
    lines += ["| " + " | ".join(worst_row) + " |", "", "## Must-show targets", ""]
    for finder, how in HEADLINES.items():
        lines += [f"lrscope headline, {how}:", ""]
        for what, measured, met in targets(tasks, finder):
            lines.append(f"- {'met' if met else '**MISSED**'}: {what} -- {measured}")
        lines.append("")
    lines += ["", *own_words(tasks)]
    if any(t.trained_rules for t in tasks):
        lines += rules_section(tasks, trained=True)
    lines += rules_section(tasks, trained=False)
    return "\n".join(lines) + "\n"


def own_words(tasks: Sequence[TaskResult]) -> list[str]:
    """Which rule gave lrscope's headline on each seed, and the warnings it printed."""
    lines = ["## lrscope's headline rule and warnings per task", ""]
    for t in tasks:
        used = Counter(r or "none" for r in t.headline_rules)
        said = Counter(w for seed in t.warnings for w in seed)
        words = "; ".join(f"{w!r} x{n}" for w, n in said.items()) or "none"
        rules = ", ".join(f"{r} x{n}" for r, n in used.items())
        lines.append(f"- {t.name}: headline from {rules}; warnings: {words}")
    return [*lines, ""]


def rules_section(tasks: Sequence[TaskResult], trained: bool) -> list[str]:
    """Regret of every lrscope rule, trained (``--train-rules``) or interpolated from the grid
    (cheap; coarse where a task's basin is narrow), for choosing a headline."""
    if trained:
        per_task = [{n: [None] * len(t.rules) for n in t.trained_rules} for t in tasks]
        title = "## lrscope rules, trained (--train-rules)"
    else:
        per_task = [t.candidates() for t in tasks]
        title = "## lrscope rules, interpolated (from the grid, not trained)"

    def score(t: TaskResult, name: str, lrs: list[float | None]) -> list[float | None]:
        if trained:
            return t.trained_rules.get(name, [None] * len(t.rules))
        return [t.oracle.interpolated(v) for v in lrs]

    lrs_of = [t.candidates() for t in tasks]
    lines = [title, "",
             "Cells: median / worst regret over seeds, then the LR spread (max/min). "
             "`seed-median R` = the median over seeds of rule R's LR (one LR per task).", "",
             "| rule | " + " | ".join(t.name for t in tasks) + " | median | worst task | "
             "max spread | targets |", "|" + "---|" * (len(tasks) + 5)]
    best: dict[str, tuple[float, str]] = {}
    names = sorted({n for c in per_task for n in c})
    for name in names:
        cells, pooled, task_medians, spreads = [], [], [], []
        for t, cand in zip(tasks, lrs_of, strict=True):
            lrs = cand.get(name, [None] * len(t.rules))
            regrets = score(t, name, lrs)
            pooled += regrets
            task_medians.append(median(regrets))
            spreads.append(spread(lrs))
            cells.append(f"{_cell(regrets)}, {fmt_spread(spreads[-1])}")
            if median(regrets) < best.get(t.name, (math.inf, ""))[0]:
                best[t.name] = (median(regrets), name)
        met = [median(pooled) <= 0.03, max(task_medians) <= 0.30, max(spreads) <= 2.0]
        only_missing = math.isinf(max(task_medians)) and all(
            v is None or math.isfinite(v) for v in pooled)  # inf only from "no answer"
        worst_cell = "no answer" if only_missing else fmt_regret(max(task_medians))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fmt_regret(median(pooled))} | "
                     f"{worst_cell} | {fmt_spread(max(spreads))} | "
                     f"{sum(met)}/3 |")
    lines += ["", "targets: median <= 3%, every task's median <= 30%, spread <= 2x.", "",
              f"Best rule per task ({'trained' if trained else 'interpolated'}): "
              + "; ".join(f"{n}: {r} ({fmt_regret(v)})" for n, (v, r) in best.items()), ""]
    return lines


def csv_rows(tasks: Sequence[TaskResult]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for t in tasks:
        for lr, loss in zip(t.oracle.lrs, t.oracle.means, strict=True):
            rows.append({"task": t.name, "finder": "oracle-grid", "seed": "", "lr": lr,
                         "kind": "trained", "regret": loss / t.oracle.loss - 1})
        for f in (*TRAINED_FINDERS, *NO_LR):
            lrs = t.suggested.get(f, [None] * len(t.regrets[f]))
            for seed, (lr, regret) in enumerate(zip(lrs, t.regrets[f], strict=True)):
                rows.append({"task": t.name, "finder": f, "seed": seed if f not in NO_LR else "",
                             "lr": lr, "kind": "trained", "regret": regret})
        rule_lrs = t.candidates()
        for name, regrets in t.trained_rules.items():
            for seed, (lr, regret) in enumerate(zip(rule_lrs[name], regrets, strict=True)):
                rows.append({"task": t.name, "finder": f"lrscope:{name}", "seed": seed, "lr": lr,
                             "kind": "trained", "regret": regret})
        for name, lrs in rule_lrs.items():
            for seed, lr in enumerate(lrs):
                rows.append({"task": t.name, "finder": f"lrscope:{name}", "seed": seed, "lr": lr,
                             "kind": "interpolated", "regret": t.oracle.interpolated(lr)})
    return rows
