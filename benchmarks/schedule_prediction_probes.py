"""Compressed-horizon probes, judged by the schedule-prediction benchmark (issue 18).

Issue 18 names "the same schedules compressed to a shorter horizon" as a fair cheap predictor
where the loss-curve laws fail. This measures it on the benchmark's own problems, truth and
oracle (run benchmarks/schedule_prediction.py first: the full, full-scales and truth arms are
read from its WORK folder, nothing of theirs is retrained).

For each problem, suite (with and without lr_scales) and share of the budget: every candidate
is trained once, at the first study seed, with its schedule compressed k times, the smallest
whole k whose probes fit that share of what the budget leaves after the range test (lrscope's
``compress(schedule, factor=T/P)``: the whole shape, warmup to decay, in P = ceil(T/k) steps),
as one study WORK/<problem>/probe-k<k>[-scales]/ (no range test: its steps are counted once,
as the full study's). Scored:

* **probe tau**: Kendall tau of the probes' final validation losses against the truth.
* **probe, then confirm**: the m best-probed candidates trained at full length at the first
  seed (read from the full study's seed-0 trials: the same seeded trials a study would run),
  the best of them measured is the pick; m is what the budget (1/6, 1/12 with lr_scales)
  leaves after the range test and the probes (none: the best-probed, untrained, is the pick).
  Its regret against the truly best candidate and the global oracle, and its cost as a
  fraction of the full study's.
* **probes + law, then confirm**: the same m runs, but after the first (the best-probed) each
  next one is the best the annealing law predicts, fitted to every probe's curve and every
  full-length curve so far (the probes give the law many shapes, the full runs the horizon);
  the ranking shown is the measured value where trained, the law's prediction elsewhere.
* with lr_scales, **shapes probed, then scales**: the shapes ordered by their probes at the
  middle scale (only those probes counted), the best-probed shape trained at full length at
  every scale and the next shapes at the scale that measured best, as the budget allows: peaks
  compared at full length, where the probes mislead.
* beside them, from the same cached arms: **full** (3 seeds) and **seed 0**: every candidate at
  full length at the first seed only (what predict's fallback trains), its pick and tau.

    .venv/bin/python benchmarks/schedule_prediction_probes.py [--share 0.25,0.5] [--tiny]
        [--work runs/schedule_prediction] [--out benchmarks/results/schedule_prediction]

Writes OUT/probes.md (printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from schedule_prediction import DEFAULT_OUT, DEFAULT_WORK
from schedule_prediction_problems import PARALLEL, Settings, lrscope_task, make_optimizer
from schedule_prediction_runs import NAME, per_candidate
from schedule_prediction_scores import _regret, _tau, informative
from schedule_prediction_table import median, num, pct

from lrscope.schedules import parse
from lrscope.study.api import prepare_compare
from lrscope.study.predict.curves import final_value, lr_sequence, trial_curve
from lrscope.study.predict.law import Curve, LawFitError, fit_law
from lrscope.study.predict.probes import compression
from lrscope.study.run import run_study
from lrscope.study.stats.leaderboard import run_metric
from lrscope.study.store.sqlite import Store

BUDGET = {False: 1 / 6, True: 1 / 12}  # the predict strategy's default budgets


def probe_specs(candidates: list[str], steps: int, k: float,
                exponent: float = 0.0) -> tuple[int, dict[str, str]]:
    """(P, candidate -> its schedule compressed into P = ceil(steps / k) steps), its LRs times
    (steps / P) ** ``exponent`` (0: as they are)."""
    short = math.ceil(steps / k)
    factor = f"{steps / short:.6g}"
    boost = (steps / short) ** exponent
    return short, {c: f"compress({parse(c, total_steps=steps).scaled(boost, digits=6).spec()}, "
                      f"factor={factor})" if exponent else
                   f"compress({parse(c, total_steps=steps).spec()}, factor={factor})"
                   for c in candidates}


def run_probes(problem: str, settings: Settings, out: Path, steps: int,
               specs: list[str], seed: int | None = None) -> Path:
    """The probe study in ``out`` (resumed when it exists: only missing trials train), each
    probe evaluated 8 times so that a law can be fitted to its curve, at ``seed`` (None: the
    first study seed)."""
    task = lrscope_task(problem, settings.tiny)
    seed = settings.study_seeds[0] if seed is None else seed
    call = prepare_compare(task.make_model, make_optimizer(problem, settings.tiny), task,
                           steps=steps, schedules=specs, seeds=[seed],
                           parallel=PARALLEL.get(problem, "batched"), out=out, quiet=True,
                           eval_every=max(1, steps // 8))
    run_study(dataclasses.replace(call.plan, range_test=None), out, call.engine)
    return out


def curves(out: Path, steps: int, seed: int, labels: dict[str, str]) -> dict[str, Curve | None]:
    """candidate -> the selection-metric curve of its trial at ``seed`` in the study in ``out``
    (``labels``: candidate -> its label there), None unless it finished."""
    found: dict[str, Curve | None] = {}
    by_label = {label: candidate for candidate, label in labels.items()}
    with Store.in_dir(out, create=False) as store:
        run = store.find_run(NAME)
        assert run is not None, f"no study in {out}"
        metric = run_metric(store, run.id)
        for t in store.trials(run.id):
            if t.seed != seed or t.label not in by_label:
                continue
            lrs = lr_sequence(parse(t.label, total_steps=steps), steps)
            found[by_label[t.label]] = (trial_curve(store, t, metric, lrs)
                                        if t.status == "finished" else None)
    return found


def regrets(pick: str | None, truth: dict[str, float], oracle: float) -> tuple[float, float]:
    value = truth.get(pick, math.inf) if pick else math.inf
    return _regret(value, min(truth.values())), _regret(value, oracle)  # type: ignore[return-value]


def with_law(probes: dict[str, Curve | None], full: dict[str, Curve | None], steps: int,
             first: str, runs: int) -> tuple[list[str], dict[str, float]]:
    """Probes + law, then confirm: the best-probed candidate is trained first; then, while
    ``runs`` allow, the annealing law is fitted to every probe's curve and every full-length
    curve so far, and the best-predicted untrained candidate is trained next (the probes'
    order when the law cannot be fitted). Returns the trained candidates, in order, and the
    last predictions (the ranking of the untrained)."""
    trained = [first]
    predicted = {c: final_value(curve) for c, curve in probes.items()}
    lrs = {c: lr_sequence(parse(c, total_steps=steps), steps) for c in probes}
    while len(trained) < runs:
        seen = [c for c in [*probes.values(), *(full[t] for t in trained)]
                if c is not None and np.all(np.isfinite(c.values))]
        try:
            law = fit_law(seen, "annealing", seed=0)
            predicted = {c: float(law.final(lrs[c])[0]) for c in probes}
        except LawFitError:
            pass
        rest = [c for c in probes if c not in trained]
        if not rest:
            break
        trained.append(min(rest, key=lambda c: (_finite(predicted[c]), c)))
    return trained, predicted


def shapes_then_scales(origins: dict[str, list[Any]], probe: dict[str, float],
                       at_seed0: dict[str, float], runs: int) -> list[str]:
    """With lr_scales, peaks measured at full length, shapes by their probes: the shapes
    ordered by their probes at the scale nearest 1, the best-probed shape trained at every
    scale, then the next shapes at the scale that measured best, while ``runs`` allow.
    Returns the trained candidates (``origins``: candidate -> [its shape, its scale])."""
    at = {(shape, scale): c for c, (shape, scale) in origins.items()}
    scales = sorted({scale for _, scale in origins.values()})
    middle = min(scales, key=lambda scale: abs(math.log(scale)))
    shapes = sorted({shape for shape, _ in origins.values()},
                    key=lambda shape: (probe[at[(shape, middle)]], shape))
    trained = [at[(shapes[0], scale)] for scale in scales][:runs]
    if not trained:
        return []
    best = origins[min(trained, key=lambda c: (at_seed0[c], c))][1]
    return trained + [at[(shape, best)] for shape in shapes[1:]][:runs - len(trained)]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def score(problem: str, scales: bool, shares: list[float], settings: Settings,
          work: Path) -> list[dict[str, Any]]:
    arms = work / problem
    arm = "full-scales" if scales else "full"
    full = json.loads((arms / f"{arm}.json").read_text())
    truth_all = per_candidate(json.loads((arms / "truth.json").read_text()), "test", "mean")
    oracle = min(truth_all.values())
    candidates = sorted(full["origins"])
    truth = {c: truth_all[c] for c in candidates}
    steps, seed0 = full["steps"], settings.study_seeds[0]
    full_steps = len(candidates) * len(settings.study_seeds) * steps + full["range_steps"]
    limit = math.floor(BUDGET[scales] * full_steps + 1e-9)
    at_full = curves(arms / arm, steps, seed0, {c: c for c in candidates})
    at_seed0 = {c: final_value(at_full.get(c)) for c in candidates}
    suite = "scales" if scales else "default"
    base = {"problem": problem, "suite": suite, "informative": informative(truth)}
    ranked = per_candidate(full, "val")
    rows = [{**base, "how": "full (3 seeds)", "k": "-", "tau": _tau(ranked, truth),
             "m": len(candidates), "regret": regrets(full["pick"], truth, oracle),
             "fraction": 1.0},
            {**base, "how": "seed 0, every candidate", "k": "-", "tau": _tau(at_seed0, truth),
             "m": len(candidates),
             "regret": regrets(min(candidates, key=lambda c: (at_seed0[c], c)), truth, oracle),
             "fraction": (len(candidates) * steps + full["range_steps"]) / full_steps}]
    for share in shares:
        k = compression(len(candidates), steps, share * (limit - full["range_steps"]))
        short, specs = probe_specs(candidates, steps, k)
        tag = f"probe-k{k:g}" + ("-scales" if scales else "")
        probes = curves(run_probes(problem, settings, arms / tag, short, list(specs.values())),
                        short, seed0, specs)
        probe = {c: final_value(probes.get(c)) for c in candidates}
        spent = full["range_steps"] + len(candidates) * short
        m = max(0, (limit - spent) // steps)
        fraction = (spent + m * steps) / full_steps
        order = sorted(candidates, key=lambda c: (probe[c], c))
        pick = min(order[:m], key=lambda c: (at_seed0[c], c)) if m else order[0]
        rows.append({**base, "how": f"probes ({share:.0%} of the budget), then confirm",
                     "k": str(k), "tau": _tau(probe, truth), "m": m,
                     "regret": regrets(pick, truth, oracle), "fraction": fraction})
        if m:
            trained, predicted = with_law({c: probes.get(c) for c in candidates}, at_full,
                                          steps, order[0], m)
            shown = {c: at_seed0[c] if c in trained else predicted[c] for c in candidates}
            pick = min(trained, key=lambda c: (at_seed0[c], c))
            rows.append({**base, "how": f"probes + law ({share:.0%} of the budget), then "
                         "confirm", "k": str(k), "tau": _tau(shown, truth), "m": m,
                         "regret": regrets(pick, truth, oracle), "fraction": fraction})
        if scales:  # the same probes, those at the middle scale only: the shapes' order
            shapes = len({shape for shape, _ in full["origins"].values()})
            spent = full["range_steps"] + shapes * short
            m = max(0, (limit - spent) // steps)
            trained = shapes_then_scales(full["origins"], probe, at_seed0, m)
            pick = min(trained, key=lambda c: (at_seed0[c], c)) if trained else None
            rows.append({**base, "how": f"shapes probed ({share:.0%}), the best one's scales "
                         "and the next shapes at its best scale", "k": str(k), "tau": None,
                         "m": m, "regret": regrets(pick, truth, oracle),
                         "fraction": (spent + m * steps) / full_steps})
    return rows


def render(rows: list[dict[str, Any]], argv: list[str], wall_s: float) -> str:
    lines = ["# Compressed-horizon probes vs the full study (issue 18's cheaper predictor)", "",
             f"- command: `python benchmarks/schedule_prediction_probes.py {' '.join(argv)}`",
             f"- torch {torch.__version__}, one process, 1 torch thread; this run "
             f"{wall_s / 60:.1f} min (cached probe studies are read back)", "",
             "| problem | suite | how | k | tau | full runs | regret vs best | regret vs oracle "
             "| cost / full |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['suite']} | {r['how']} | {r['k']} | "
                     f"{num(r['tau'])} | "
                     f"{r['m']} | {pct(r['regret'][0])} | {pct(r['regret'][1])} | "
                     f"{pct(r['fraction'])} |")
    lines += ["", "## Medians over the informative problems", "",
              "| suite | how | problems | tau | regret vs best | regret vs oracle | cost / full |",
              "|---|---|---|---|---|---|---|"]
    for suite in ("default", "scales"):
        hows = dict.fromkeys(r["how"] for r in rows if r["suite"] == suite)
        for how in hows:
            mine = [r for r in rows if r["suite"] == suite and r["how"] == how
                    and r["informative"]]
            taus = [r["tau"] for r in mine if r["tau"] is not None]
            lines.append(
                f"| {suite} | {how} | {len(mine)} | {num(median(taus))} | "
                f"{pct(median([r['regret'][0] for r in mine]))} | "
                f"{pct(median([r['regret'][1] for r in mine]))} | "
                f"{pct(median([r['fraction'] for r in mine]))} |")
    return "\n".join(lines) + "\n"


def probe_parser(description: str, shares: str) -> argparse.ArgumentParser:
    """The arguments every probes benchmark takes: --share (default ``shares``), --out,
    --work, --tiny."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--share", default=shares,
                   help="shares of the budget the probes spend, comma-separated")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--tiny", action="store_true", help="the CI size of the main benchmark")
    return p


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    p = probe_parser(__doc__.split("\n\n")[0], "0.25,0.5")
    args = p.parse_args(args_in)
    settings = Settings.tiny_run() if args.tiny else Settings()
    work = args.work / ("tiny" if args.tiny else "full")
    shares = [float(v) for v in args.share.split(",") if v.strip()]
    torch.set_num_threads(1)
    began = time.monotonic()
    problems = [p for p in settings.problems if (work / p / "truth.json").exists()]
    if not problems:
        p.error(f"no cached arms under {work}: run benchmarks/schedule_prediction.py first")
    rows = [row for problem in problems for scales in (False, True)
            for row in score(problem, scales, shares, settings, work)]
    table = render(rows, args_in, time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probes.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
