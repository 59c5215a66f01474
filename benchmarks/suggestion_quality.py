"""How good is each finder's LR? Regret against an oracle grid on public tasks (a harness, not a
unit test).

For every task of benchmarks/suggestion_tasks.py:

1. S range tests (``--seeds``, default 5: different data orders, the same initial weights) with
   ``lrscope.range_test``, S more headlines of ``range_test(..., seeds=3)`` (``lrscope find
   --seeds 3``, each on 3 data orders of its own) and, on the same batches and ramp,
   torch-lr-finder's ``LRFinder.range_test``; the peers' rules (torch-lr-finder's own, fastai's
   valley, Lightning's) read its curve (benchmarks/suggestion_finders.py).
2. The oracle: ``--grid`` (12) log-spaced max_lr, each trained with OneCycleLR at torch's
   defaults for the task's budget on ``--train-seeds`` (2) seeds; oracle = best grid mean.
3. Each finder's LR is *trained* the same way; regret = its mean final test loss / oracle - 1
   (diverged = inf). Prodigy and Schedule-Free need no LR: their regret is their own final loss
   against the same oracle (benchmarks/suggestion_training.py).
4. For choosing a headline cheaply, every lrscope rule's LR (and a few combinations) is also
   scored by interpolating the grid (labelled "interpolated").

Every SGD task runs SGD with momentum 0.9 in the range test and in training: OneCycleLR's
defaults (cycle_momentum=True) set momentum 0.95 -> 0.85 during training, so a range test with
plain SGD (momentum 0) would suggest an LR for an optimizer with a ~10x smaller effective step
than the one trained (benchmarks/suggestion_tasks.py).

Every training is cached in OUT/trainings.jsonl keyed by (task, method, lr, seed) and valid only
for the task's budget and optimizer settings (its ``setup``): a rerun skips finished trainings,
a rule change trains only the LRs that are new, and a changed optimizer trains afresh. Writes
OUT/table.md (printed too) and OUT/regret.csv (every task, finder and seed).

    .venv/bin/python benchmarks/suggestion_quality.py [--tasks a,b] [--seeds 5] [--train-seeds 2]
        [--grid 12] [--workers 2] [--out benchmarks/results/suggestion_quality] [--tiny]

``--tiny`` (CI): the digits MLP only, one range-test seed, one training seed, a 6-point grid and
a third of the budget; well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
from code_version import code_version
from suggestion_finders import lrscope_curve, lrscope_seeds_headline, torch_lr_finder_curve
from suggestion_regret import make_oracle, trained_regret
from suggestion_table import NO_LR, NOT_HEADLINE, TRAINED_FINDERS, TaskResult, csv_rows, markdown
from suggestion_tasks import TASKS, get_task, lr_key
from suggestion_training import METHODS, setup, train

DEFAULT_OUT = Path(__file__).parent / "results" / "suggestion_quality"
# "--seeds 3": the s-th multi-seed headline reads data orders 100 + 3s .. 100 + 3s + 2, apart from
# the single range tests' (0..S-1) and from the other triples: S independent samples of it.
MULTI_SEEDS, MULTI_SEED_BASE = 3, 100
Key = tuple[str, str, float | None, int]  # task, method, lr (None: no LR), training seed


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    p.add_argument("--seeds", type=int, default=5, help="range-test seeds per task")
    p.add_argument("--train-seeds", type=int, default=2, help="training seeds per LR")
    p.add_argument("--grid", type=int, default=12, help="oracle grid points")
    p.add_argument("--workers", type=int, default=1, help="processes (1 thread each)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--range-steps", type=int, default=100)
    p.add_argument("--train-rules", action="store_true",
                   help="also train every lrscope rule's LR (not only the headline)")
    p.add_argument("--tiny", action="store_true", help="CI size: digits-mlp, 1 seed, 6-point grid")
    args = p.parse_args(argv)
    if args.tiny:
        args.tasks, args.seeds, args.train_seeds, args.grid = "digits-mlp", 1, 1, 6
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown or min(args.seeds, args.train_seeds, args.workers) < 1 or args.grid < 3:
        p.error(f"--tasks must name {', '.join(TASKS)} (got {', '.join(unknown) or 'ok'}); "
                "--seeds, --train-seeds, --workers >= 1; --grid >= 3")
    return args


def _init_worker() -> None:
    torch.set_num_threads(1)  # the pool's processes share the cores; no oversubscription


def run_job(job: tuple[Any, ...]) -> Any:
    """One range test (``("range", task, seed, tiny, start, end, steps)``) or one training
    (``("train", task, method, lr, seed, tiny)``), in whichever process runs it."""
    if job[0] == "range":
        _, name, seed, tiny, start, end, steps = job
        task = get_task(name, tiny)
        triple = [MULTI_SEED_BASE + MULTI_SEEDS * seed + k for k in range(MULTI_SEEDS)]
        return {"lrscope": lrscope_curve(task, seed, start, end, steps),
                "lrscope-seeds3": lrscope_seeds_headline(task, triple, start, end, steps),
                "tlf": torch_lr_finder_curve(task, seed, start, end, steps)}
    _, name, method, lr, seed, tiny = job
    return train(get_task(name, tiny), method, lr, seed)


def run_all(jobs: list[tuple[Any, ...]], workers: int, done: Callable[[tuple[Any, ...], Any], None],
            label: str) -> None:
    if not jobs:
        return
    print(f"{label}: {len(jobs)} jobs on {workers} worker(s)", file=sys.stderr, flush=True)
    if workers == 1:
        _init_worker()
        for i, job in enumerate(jobs, 1):
            done(job, run_job(job))
            _progress(i, len(jobs))
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for i, future in enumerate(as_completed(futures), 1):
            done(futures[future], future.result())
            _progress(i, len(jobs))


def _progress(i: int, n: int) -> None:
    if i == n or i % 25 == 0:
        print(f"  {i}/{n}", file=sys.stderr, flush=True)


class Cache:
    """Final losses of finished trainings, one JSON line each, appended as they finish.

    A line is reused only when its task's budget and its ``setup`` (the optimizer's settings,
    :func:`suggestion_training.setup`) are today's: another budget or optimizer is another
    experiment."""

    def __init__(self, path: Path, tasks: Iterable[str], tiny: bool) -> None:
        self.path, self.losses = path, {}
        self.budgets = {n: get_task(n, tiny).budget for n in tasks}
        self.setups = {(n, m): setup(get_task(n, tiny), m) for n in self.budgets for m in METHODS}
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                if (self.budgets.get(r["task"]) == r["budget"]
                        and self.setups.get((r["task"], r["what"])) == r.get("setup")):
                    self.losses[(r["task"], r["what"], r["lr"], r["seed"])] = r["loss"]

    def add(self, key: Key, loss: float) -> None:
        self.losses[key] = loss
        record = dict(zip(("task", "what", "lr", "seed"), key, strict=True))
        with self.path.open("a") as handle:
            handle.write(json.dumps({**record, "budget": self.budgets[key[0]],
                                     "setup": self.setups[(key[0], key[1])], "loss": loss})
                         + "\n")


def finder_lrs(curve: dict[str, Any]) -> dict[str, float | None]:
    tlf = curve["tlf"]
    return {"lrscope": curve["lrscope"]["suggestion"], "lrscope-seeds3": curve["lrscope-seeds3"],
            "torch-lr-finder": tlf["torch-lr-finder"],
            "fastai-valley": tlf["fastai-valley"], "lightning": tlf["lightning"]}


def rule_lrs(curve: dict[str, Any]) -> dict[str, float | None]:
    """Every lrscope rule's LR but the divergence point (an upper bound, never a training LR)."""
    return {k: v for k, v in curve["lrscope"]["suggestions"].items() if k not in NOT_HEADLINE}


def needed(args: argparse.Namespace, curves: dict[str, list[Any]]) -> list[Key]:
    keys: list[Key] = []
    seeds = range(args.train_seeds)
    for name in args.tasks:
        task = get_task(name, args.tiny)
        lrs = set(task.grid(args.grid))
        for curve in curves[name]:
            lrs |= {lr_key(v) for v in finder_lrs(curve).values() if v is not None}
            if args.train_rules:
                lrs |= {lr_key(v) for v in rule_lrs(curve).values() if v is not None}
        keys += [(name, "onecycle", lr, s) for lr in sorted(lrs) for s in seeds]
        keys += [(name, method, None, s) for method in NO_LR for s in seeds]
    return keys


def results(args: argparse.Namespace, curves: dict[str, list[Any]],
            cache: Cache) -> list[TaskResult]:
    out = []
    seeds = range(args.train_seeds)

    def losses(name: str, method: str, lr: float | None) -> list[float] | None:
        if method == "onecycle" and lr is None:
            return None
        key_lr = None if lr is None else lr_key(lr)
        return [cache.losses[(name, method, key_lr, s)] for s in seeds]

    for name in args.tasks:
        task = get_task(name, args.tiny)
        grid = task.grid(args.grid)
        oracle = make_oracle(grid, {lr: losses(name, "onecycle", lr) or [] for lr in grid})
        per_seed = [finder_lrs(c) for c in curves[name]]
        suggested = {f: [p[f] for p in per_seed] for f in TRAINED_FINDERS}
        regrets = {f: [trained_regret(oracle, losses(name, "onecycle", lr)) for lr in lrs]
                   for f, lrs in suggested.items()}
        for method in NO_LR:
            regrets[method] = [trained_regret(oracle, losses(name, method, None))]
        trained_rules: dict[str, list[float | None]] = {}
        if args.train_rules:
            per_rule = [rule_lrs(c) for c in curves[name]]
            for rule in sorted({r for p in per_rule for r in p}):
                trained_rules[rule] = [trained_regret(oracle, losses(name, "onecycle", p.get(rule)))
                                       for p in per_rule]
                # The median seed's LR (what a multi-seed headline gives) is one already trained.
                lrs = [p.get(rule) for p in per_rule]
                if all(v is not None for v in lrs):
                    middle = sorted(range(len(lrs)), key=lambda i: lrs[i])[len(lrs) // 2]  # type: ignore[arg-type,return-value]
                    trained_rules[f"seed-median {rule}"] = [trained_rules[rule][middle]] * len(lrs)
        out.append(TaskResult(name, task.kind, oracle, suggested, regrets,
                              [dict(c["lrscope"]["suggestions"]) for c in curves[name]],
                              [c["lrscope"]["rule"] for c in curves[name]],
                              [c["lrscope"]["warnings"] for c in curves[name]], trained_rules))
    return out


def header(args: argparse.Namespace, argv: Iterable[str]) -> dict[str, str]:
    budgets = ", ".join(f"{n} {get_task(n, args.tiny).budget}" for n in args.tasks)
    return {
        "command": "`" + shlex.join(["python", "benchmarks/suggestion_quality.py", *argv]) + "`",
        "code": code_version(),
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{args.workers} worker(s) x 1 thread",
        "range tests": f"{args.seeds} seeds, {args.start_lr:g} -> {args.end_lr:g} in "
                       f"{args.range_steps} steps (exp), same batches for lrscope and tlf",
        "oracle": f"{args.grid}-point log grid (SGD 1e-4..10, Adam 1e-5..1e-1), "
                  f"{args.train_seeds} training seed(s); budgets (steps): {budgets}",
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, list[Any]] = {name: [None] * args.seeds for name in args.tasks}

    def got_curve(job: tuple[Any, ...], value: Any) -> None:
        curves[job[1]][job[2]] = value

    ranges = [("range", n, s, args.tiny, args.start_lr, args.end_lr, args.range_steps)
              for n in args.tasks for s in range(args.seeds)]
    run_all(ranges, args.workers, got_curve, "range tests")
    (args.out / "curves.json").write_text(json.dumps(curves))
    cache = Cache(args.out / "trainings.jsonl", args.tasks, args.tiny)
    todo = [k for k in needed(args, curves) if k not in cache.losses]

    def got_loss(job: tuple[Any, ...], loss: Any) -> None:
        cache.add((job[1], job[2], job[3], job[4]), loss)

    run_all([("train", *key, args.tiny) for key in todo], args.workers, got_loss, "trainings")
    tasks = results(args, curves, cache)
    table = markdown(tasks, header(args, argv))
    (args.out / "table.md").write_text(table)
    rows = csv_rows(tasks)
    with (args.out / "regret.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
