"""``--parallel batched``: per seed, all its schedules in one vmapped model
(:mod:`lrscope.trials.batched.run`), in this process, on the local engine (CPU or GPU)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lrscope.data.tasks.base import Task
from lrscope.engines import Engine
from lrscope.errors import InputError
from lrscope.trials.runners.base import NO_HOOKS, Hooks, Job, Started, TrialSetup, local_engine_only
from lrscope.trials.runners.threads import ThreadOptions, in_process_threads, torch_threads
from lrscope.trials.trial import Evaluation, TrialResult


def batched_refusal(plan: TrialSetup) -> str | None:
    """Why the batched runner refuses ``plan`` whatever its model (None: it may run it)."""
    from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE

    if not isinstance(plan.task, Task):
        return f"data: batched runs read a lrscope Task's in-memory tensors; {UNSUPPORTED_ADVICE}"
    if not plan.options.plain:
        return ("options: batched runs train in full precision without clipping or "
                f"accumulation; {UNSUPPORTED_ADVICE}")
    return None


@dataclass(frozen=True)
class BatchedRunner:
    """K trials of a seed in one vmapped model (lrscope.trials.runners.base.Runner)."""

    options: ThreadOptions = field(default_factory=ThreadOptions)
    name = "batched"
    sequential = False

    def on(self, engine: Engine) -> BatchedRunner:
        local_engine_only(self.name, engine)
        return self

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        from lrscope.trials.batched.run import run_trials_batched

        if not jobs:
            return
        refusal = batched_refusal(setup)
        if refusal is not None:  # refused before anything runs
            raise InputError(refusal)
        assert isinstance(setup.task, Task)
        threads = in_process_threads(self.options.threads, engine.device.type)
        hooks.start(Started(self.name, 1, threads))
        with torch_threads(threads):  # the caller's count put back after
            for seed in dict.fromkeys(job.seed for job in jobs):
                group = [job for job in jobs if job.seed == seed]

                def hear(i: int, ev: Evaluation, group: list[Job] = group) -> None:
                    if hooks.on_eval is not None:
                        hooks.on_eval(group[i], ev)

                results = run_trials_batched(
                    setup.task, [job.schedule for job in group], seed=seed, steps=setup.steps,
                    eval_every=setup.eval_every, make_optimizer=setup.make_optimizer,
                    device=engine.device, on_eval=hear)
                yield from zip(group, results, strict=True)
