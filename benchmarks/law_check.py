"""How well the loss-curve laws predict held-out schedules on real stored studies (issue 18).

For each study folder given (made by ``lrscope compare``, every schedule at >= 1 seed), fit a law
on the constant and cosine runs of the first seed and predict every other schedule's final
selection metric; report the relative error per candidate, Kendall's tau between the predicted
and the measured ranking (measured: the mean over seeds), and the interval's coverage (of the
seed-0 value, and of every seed's). Variants: the law (multi_power | annealing), the residual
scale (log | linear), the LR the law sees (as scheduled, or lr/(1-momentum) for the schedules
that cycle momentum), and the curve fitted (the validation metric at the evaluation steps, or the
smoothed training loss at every few steps with an affine calibration to the validation metric).

The studies its numbers (src/lrscope/study/predict/law.py's docstring) were measured on:

    lrscope compare --task digits --seeds 2 --steps 400 --eval-every 10 --parallel none \
        --out /tmp/law-digits
    lrscope compare --task fashion-mnist --model mlp --limit-train 12000 --limit-test 2000 \
        --seeds 2 --steps 400 --eval-every 10 --parallel none --out /tmp/law-fashion
    lrscope compare --task digits --model lenet --optimizer adamw --seeds 2 --steps 300 \
        --eval-every 10 --parallel none --out /tmp/law-digits-adamw
    PYTHONPATH=src python benchmarks/law_check.py /tmp/law-digits /tmp/law-fashion \
        /tmp/law-digits-adamw
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from lrscope.schedules import parse
from lrscope.study.predict.curves import lr_sequence, trial_curve
from lrscope.study.predict.law import Curve, LawFitError, fit_law
from lrscope.study.stats.leaderboard import run_metric
from lrscope.study.store.sqlite import Store


@dataclass
class Run:
    label: str
    family: str
    seed: int
    lrs: np.ndarray
    effective: np.ndarray
    val: Curve | None
    train_steps: np.ndarray
    train: np.ndarray


def load(folder: str) -> tuple[int, list[Run]]:
    with Store.in_dir(folder, create=False) as store:
        run = store.runs(kind="study")[0]
        metric = run_metric(store, run.id)
        total = int(run.config.get("steps") or 0)
        runs = []
        for trial in store.trials(run.id):
            if trial.spec is None:
                continue
            _, lr = store.metric_series(trial.id, "lr")
            total = total or len(lr)
            schedule = parse(trial.spec)
            lrs = lr_sequence(schedule, total)
            steps, train = store.metric_series(trial.id, "train_loss")
            runs.append(Run(trial.label, trial.family, trial.seed, lrs,
                            lr_sequence(schedule, total, effective=True),
                            trial_curve(store, trial, metric, lrs) if trial.status == "finished"
                            else None, steps + 1, train))
    return total, runs


def smoothed(run: Run, every: int) -> Curve:
    """The training loss averaged over blocks of ``every`` steps, at each block's end."""
    n = len(run.train) // every * every
    blocks = run.train[:n].reshape(-1, every).mean(axis=1)
    return Curve(run.lrs, np.arange(every, n + 1, every), blocks)


def evaluate(total: int, runs: list[Run], law: str, log: bool, effective: bool,
             on: str, skip: float = 0.1) -> dict[str, object]:
    seed0 = min(r.seed for r in runs)
    by = {(r.label, r.seed): r for r in runs}
    labels = sorted({r.label for r in runs})
    fits = [lab for lab in labels if lab.startswith(("constant", "cosine"))]
    pick = (lambda r: r.effective) if effective else (lambda r: r.lrs)
    fit_runs = [by[(lab, seed0)] for lab in fits]
    try:
        if on == "val":
            curves = [Curve(pick(r), r.val.steps, r.val.values) for r in fit_runs if r.val]
            fitted = fit_law(curves, law, log=log, skip=skip)
            calibrate = (0.0, 1.0, 0.0)
        else:
            every = max(1, total // 100)
            curves = [Curve(pick(r), c.steps, c.values)
                      for r in fit_runs for c in [smoothed(r, every)]]
            fitted = fit_law(curves, law, log=log, skip=skip)
            xs = np.concatenate([fitted.predict(pick(r), r.val.steps) for r in fit_runs if r.val])
            ys = np.concatenate([r.val.values for r in fit_runs if r.val])
            b, a = np.polyfit(xs, ys, 1)
            calibrate = (a, b, float(np.std(ys - (a + b * xs), ddof=2)))
    except LawFitError as e:
        return {"error": str(e)}
    rows = []
    for lab in labels:
        measured = [by[(lab, s)].val.values[-1] for s in sorted({r.seed for r in runs})
                    if (lab, s) in by and by[(lab, s)].val is not None
                    and by[(lab, s)].val.steps[-1] == total]
        if not measured:
            continue
        value, low, high = fitted.final(pick(by[(lab, seed0)]))
        a, b, sd = calibrate
        value, low, high = a + b * value, a + b * low - 1.96 * sd, a + b * high + 1.96 * sd
        rows.append((lab, lab in fits, value, low, high, measured))
    held = [r for r in rows if not r[1]]
    pred = [r[2] for r in held]
    mean = [float(np.mean(r[5])) for r in held]
    tau = kendalltau(pred, mean).statistic if len(held) > 1 else math.nan
    tau_all = kendalltau([r[2] for r in rows], [float(np.mean(r[5])) for r in rows]).statistic
    cover0 = np.mean([r[3] <= r[5][0] <= r[4] for r in held])
    cover = np.mean([r[3] <= m <= r[4] for r in held for m in r[5]])
    rel = [abs(r[2] - float(np.mean(r[5]))) / abs(float(np.mean(r[5]))) for r in held]
    return {"rows": rows, "tau": tau, "tau_all": tau_all, "cover0": cover0, "cover": cover,
            "median_rel": float(np.median(rel)), "fitted": fitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--detail", action="store_true", help="print every candidate")
    parser.add_argument("--laws", nargs="+", default=["multi_power", "annealing"])
    parser.add_argument("--on", nargs="+", default=["val", "train"])
    parser.add_argument("--skip", nargs="+", type=float, default=[0.1])
    parser.add_argument("--log-only", action="store_true")
    parser.add_argument("--effective", action="store_true", help="also the momentum-aware LR")
    args = parser.parse_args()
    for folder in args.folders:
        total, runs = load(folder)
        print(f"== {folder}: {len(runs)} runs of {total} steps")
        for law, log, effective, on, skip in itertools.product(
                args.laws, (True, False)[:2 - args.log_only], (False, True)[:1 + args.effective],
                args.on, args.skip):
            out = evaluate(total, runs, law, log, effective, on, skip)
            name = (f"{law:11s} {'log' if log else 'lin'} {'eff' if effective else 'lr '} "
                    f"{on:5s} skip {skip:.2f}")
            if "error" in out:
                print(f"{name}  failed: {out['error']}")
                continue
            print(f"{name}  tau {out['tau']:+.2f} (all 8: {out['tau_all']:+.2f})  "
                  f"median rel err {out['median_rel']:.1%}  coverage seed0 {out['cover0']:.0%} "
                  f"all seeds {out['cover']:.0%}")
            if args.detail:
                for lab, fit, value, low, high, measured in out["rows"]:  # type: ignore[attr-defined]
                    print(f"    {'fit ' if fit else '    '}{lab:60.60s} pred {value:.4f} "
                          f"[{low:.4f}, {high:.4f}]  measured {np.round(measured, 4).tolist()}")


if __name__ == "__main__":
    main()
