"""A study end to end (`lrscope compare`, per ``--parallel`` mode) against a bare sequential
PyTorch loop doing the same work.

Each way runs in a fresh interpreter, as a user types it (imports, data loading, the range
test, the trials, evaluations, the report: all in the wall time). A first `compare` run (not
timed) records the work it did: the range test's steps, each trial's steps (a diverged trial
stops early) and evaluation steps. The bare loop (``--bare WORK.json``, pure torch over the same
task tensors: same model, batch size, optimizer, schedules, validation split) then does exactly
that work: the range test's LR ramp with its validation losses, and every trial's steps with a
test and validation evaluation at the same steps. Repetitions rotate the order (bare, auto,
none, ...) so that machine load hits all alike; the ratio printed is the median of
per-repetition ratios, compare / bare (target for issue 11: <= 0.7 on 2 CPU cores; 2.05 before).

    .venv/bin/python benchmarks/bench_study.py [--task fashion-lenet5] [--steps 300]
        [--schedules SPEC ...] [--modes auto none batched processes] [--reps 2]
        [--device cpu|cuda] [--data-dir DIR] [--tiny]

Default: 4 schedules x 300 steps, 1 seed, LeNet-5 on Fashion-MNIST (issue 11's measurement).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

TASKS = {"fashion-lenet5": ("fashion-mnist", "lenet5"), "digits-lenet": ("digits", "lenet"),
         "digits-mlp": ("digits", "mlp")}
SCHEDULES = ["onecycle(max_lr=0.1)", "cosine(lr=0.05)", "exponential(lr=0.05, gamma=0.995)",
             "step(lr=0.05, step_size=100, gamma=0.5)"]
RANGE_START, RANGE_END, VAL_FRACTION, VAL_EXAMPLES = 1e-5, 10.0, 0.1, 512


def compare_argv(args: argparse.Namespace, mode: str, out: Path) -> list[str]:
    task, model = TASKS[args.task]
    argv = [sys.executable, "-m", "lrscope", "compare", "--task", task, "--model", model,
            "--schedules", *args.schedules, "--steps", str(args.steps), "--seeds", "1",
            "--eval-every", str(args.eval_every), "--range-steps", str(args.range_steps),
            "--range-start", str(RANGE_START), "--range-end", str(RANGE_END),
            "--val-fraction", str(VAL_FRACTION), "--device", args.device,
            "--parallel", mode, "--name", "bench", "--out", str(out)]
    for flag, value in (("--limit-train", args.limit_train), ("--limit-test", args.limit_test),
                        ("--data-dir", args.data_dir)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def recorded_work(out: Path) -> dict[str, Any]:
    """What the compare run in ``out`` computed: range-test steps and each trial's steps."""
    from lrscope.study.store.sqlite import Store

    with Store.in_dir(out, create=False) as store:
        run = store.find_run("bench")
        assert run is not None, f"no study in {out}"
        rt = store.range_test(run.id)
        trials = []
        for t in store.trials(run.id):
            steps, _ = store.metric_series(t.id, "train_loss")
            evals, _ = store.metric_series(t.id, "test_loss")
            trials.append({"spec": t.spec or t.label, "seed": t.seed, "steps": len(steps),
                           "evals": [int(s) for s in evals]})
    return {"range_steps": 0 if rt is None else len(rt.lrs), "trials": trials}


def run_bare(work: dict[str, Any]) -> None:
    """The bare loop: what a user writes by hand for the same work (pure torch below the
    data loading, which both ways share)."""
    from lrscope.data.tasks import get_task
    from lrscope.schedules import parse

    device = torch.device(work["device"])
    task = get_task(work["task"], model=work["model"], data_dir=work["data_dir"],
                    limit_train=work["limit_train"], limit_test=work["limit_test"])
    task = task.with_validation(VAL_FRACTION).to(device)
    x, y, batch = task.train_x, task.train_y, task.batch_size
    loss_fn = torch.nn.functional.cross_entropy

    def batches(seed: int) -> Any:
        g = torch.Generator().manual_seed(seed)
        while True:
            order = torch.randperm(len(x), generator=g).to(device)
            for i in range(0, len(x), batch):
                yield x[order[i:i + batch]], y[order[i:i + batch]]

    @torch.no_grad()
    def evaluate(model: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> float:
        model.eval()
        total = sum(float(loss_fn(model(xs[i:i + 1024]), ys[i:i + 1024])) * len(ys[i:i + 1024])
                    for i in range(0, len(xs), 1024))
        model.train()
        return total / max(len(ys), 1)

    def fresh(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(seed)
        model = task.make_model().to(device)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(model: torch.nn.Module, opt: torch.optim.Optimizer, lr: float, b: Any) -> Any:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(b[0]), b[1])
        loss.backward()
        opt.step()
        return loss

    planned, ran = work["planned_range_steps"], work["range_steps"]
    if ran:
        model, opt = fresh(0)
        data, val_every = batches(0), max(1, planned // 10)
        for i in range(ran):  # the exponential ramp; the range test reads every loss
            lr = RANGE_START * (RANGE_END / RANGE_START) ** (i / max(planned - 1, 1))
            float(step(model, opt, lr, next(data)))
            if (i + 1) % val_every == 0:
                evaluate(model, task.test_x[:VAL_EXAMPLES], task.test_y[:VAL_EXAMPLES])
    for trial in work["trials"]:
        model, opt = fresh(trial["seed"])
        schedule = parse(trial["spec"]).with_total_steps(work["steps"])
        data, evals = batches(trial["seed"]), set(trial["evals"])
        for i in range(trial["steps"]):
            step(model, opt, schedule(i), next(data))
            if i + 1 in evals:
                evaluate(model, task.test_x, task.test_y)
                assert task.val_x is not None and task.val_y is not None
                evaluate(model, task.val_x, task.val_y)


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(argv)}\n{done.stderr[-2000:]}")
    return seconds, done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-lenet5", choices=sorted(TASKS))
    parser.add_argument("--schedules", nargs="+", default=SCHEDULES, metavar="SPEC")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--range-steps", type=int, default=100)
    parser.add_argument("--modes", nargs="+", default=["auto", "none", "batched", "processes"],
                        choices=["auto", "none", "batched", "processes"])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir")
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--limit-test", type=int)
    parser.add_argument("--tiny", action="store_true", help="2 schedules x 20 steps on 1280 "
                        "examples, 10 range-test steps, 1 repetition: proves it runs")
    parser.add_argument("--bare", metavar="WORK.json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        run_bare(json.loads(Path(args.bare).read_text()))
        return 0
    if args.tiny:
        args.schedules, args.steps, args.eval_every = args.schedules[:2], 20, 10
        args.range_steps, args.reps, args.limit_train, args.limit_test = 10, 1, 1280, 256
    print("command:", shlex.join([sys.executable, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timed(compare_argv(args, args.modes[0], root / "first"))  # warm caches, record work
        task, model = TASKS[args.task]
        work = {**recorded_work(root / "first"), "planned_range_steps": args.range_steps,
                "steps": args.steps, "task": task, "model": model, "device": args.device,
                "data_dir": args.data_dir, "limit_train": args.limit_train,
                "limit_test": args.limit_test}
        (root / "work.json").write_text(json.dumps(work))
        trained = sum(t["steps"] for t in work["trials"])
        print(f"{args.task} on {args.device}: {len(work['trials'])} trials, {trained} trial "
              f"steps, {work['range_steps']} range-test steps; {args.reps} reps")
        names = ["bare", *args.modes]
        seconds: dict[str, list[float]] = {name: [] for name in names}
        ratios: dict[str, list[float]] = {name: [] for name in names}
        said: dict[str, str] = {}
        for rep in range(args.reps):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                cmd = ([sys.executable, __file__, "--bare", str(root / "work.json")]
                       if name == "bare" else compare_argv(args, name, root / f"{name}-{rep}"))
                took, err = timed(cmd)
                seconds[name].append(took)
                said[name] = next((line for line in err.splitlines()[::-1]
                                   if "parallel" in line.lower()), "")
            for name in names:
                ratios[name].append(seconds[name][-1] / seconds["bare"][-1])
    print(f"{'way':<28} {'median s':>9} {'x bare':>7}")
    for name in names:
        label = "bare torch loop" if name == "bare" else f"compare --parallel {name}"
        print(f"{label:<28} {statistics.median(seconds[name]):>9.2f} "
              f"{statistics.median(ratios[name]):>6.2f}x")
    if said.get("auto"):
        print("auto said:", said["auto"].strip())
    best = min(args.modes, key=lambda m: statistics.median(ratios[m]))
    print(f"fastest mode: {best} ({statistics.median(ratios[best]):.2f}x bare; target <= 0.7)")
    return 0 if all(math.isfinite(r) for rs in ratios.values() for r in rs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
