"""A small but real study in a store: an MLP trained with SGD on the digits task.

Written through the store API the way a study writes (range test, then every schedule x seed),
with real losses from real training, plus the seed study's TensorBoard logs imported beside it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from lrscope.data.tasks.base import Task
from lrscope.data.tasks.digits import digits_task
from lrscope.outputs.import_tb import import_logdirs
from lrscope.rangetest.smoothing import smooth
from lrscope.rangetest.suggest import suggest
from lrscope.schedules import Ramp, Schedule, apply_schedule, parse
from lrscope.study.store.sqlite import MetricBuffer, Store
from seed_logs import SEED_LOGS

STEPS, EVAL_EVERY, SEEDS = 120, 40, (0, 1, 2)
SCRIPT_LABEL = "exponential <script>window.__pwned = 1</script>"
SCHEDULES = {  # label -> spec
    "step(lr=0.5, step_size=40, gamma=0.5)": "step(lr=0.5, step_size=40, gamma=0.5)",
    SCRIPT_LABEL: "exponential(lr=0.5, gamma=0.99)",
    "exponential(lr=0.5, gamma=0.995)": "exponential(lr=0.5, gamma=0.995)",
    "onecycle(max_lr=1.0)": f"onecycle(max_lr=1.0, total_steps={STEPS})",
    "constant(lr=100)": "constant(lr=100)",
}


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task) -> tuple[float, float]:
    out = model(task.test_x)
    loss = float(task.loss_fn(out, task.test_y))
    return loss, float((out.argmax(1) == task.test_y).float().mean())


def train(store: Store, run_id: int, task: Task, label: str, schedule: Schedule,
          seed: int) -> None:
    start = store.start_trial(run_id, f"{label}/seed{seed}", label=label, spec=schedule.spec(),
                              family=schedule.family, seed=seed)
    if start.skip:
        return
    torch.manual_seed(seed)
    model = task.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule(0), momentum=0.9)
    began, diverged_at, first = time.perf_counter(), None, math.inf
    with MetricBuffer(store, start.trial_id) as buffer:
        for step, (x, y) in enumerate(task.train_batches(seed).steps(STEPS)):
            lr = apply_schedule(optimizer, schedule, step)
            loss = task.loss_fn(model(x), y)
            value = loss.item()
            buffer.add_many(step, {"lr": lr, "train_loss": value})
            first = first if step else value
            # Diverged: not finite, or 100x the first loss (LR 100 blows up to ~1e5, then
            # sits at a dead ~150 rather than reaching NaN).
            if not math.isfinite(value) or value > 100 * first:
                diverged_at = step
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % EVAL_EVERY == 0:
                test_loss, accuracy = evaluate(model, task)
                buffer.add_many(step + 1, {"test_loss": test_loss, "test_accuracy": accuracy})
    store.finish_trial(start.trial_id, "finished" if diverged_at is None else "diverged",
                       diverged_at_step=diverged_at, wall_time=time.perf_counter() - began)


def range_test(store: Store, run_id: int, task: Task, steps: int = 80) -> None:
    torch.manual_seed(0)
    model = task.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    ramp = Ramp(start_lr=1e-4, end_lr=30.0, total_steps=steps)
    lrs, losses = [], []
    for step, (x, y) in enumerate(task.train_batches(0).steps(steps)):
        lrs.append(apply_schedule(optimizer, ramp, step))
        loss = task.loss_fn(model(x), y)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > 4 * losses[0]:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    smoothed = smooth(losses)
    headline, _, every = suggest(lrs, smoothed)
    store.save_range_test(run_id, lrs=lrs, losses=losses, smoothed=smoothed,
                          suggestions={k: v for k, v in every.items() if v is not None},
                          suggestion=headline,
                          stopped="diverged" if len(lrs) < steps else "completed")


def build_study(directory: Path, *, with_import: bool = SEED_LOGS.is_dir()) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: threads only fight the other processes for cores
    try:
        task = digits_task("mlp")
        with Store.in_dir(directory) as store:
            run = store.ensure_run("digits-study", config={
                "task": "digits", "steps": STEPS, "seeds": list(SEEDS), "target_accuracy": 0.8})
            store.update_run(run.id, recipe="max_lr = divergence LR / 3 (Smith); step and "
                                            "exponential decays start at max_lr")
            range_test(store, run.id, task)
            for label, spec in SCHEDULES.items():
                for seed in SEEDS:
                    train(store, run.id, task, label, parse(spec), seed)
            if with_import:
                import_logdirs(store, [SEED_LOGS])
    finally:
        torch.set_num_threads(threads)
    return directory
