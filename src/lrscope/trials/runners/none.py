"""``--parallel none``: the trials one after another in this process, through the study's
engine (the only runner for a distributed engine: its ranks share each trial)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lrscope.engines import Engine
from lrscope.trials.runners.base import NO_HOOKS, Hooks, Job, Started, TrialSetup
from lrscope.trials.runners.threads import ThreadOptions, in_process_threads, torch_threads
from lrscope.trials.trial import TrialResult


@dataclass(frozen=True)
class SequentialRunner:
    """One trial at a time, on ``options.threads`` (lrscope.trials.runners.base.Runner)."""

    options: ThreadOptions = field(default_factory=ThreadOptions)
    name = "none"
    sequential = True

    def on(self, engine: Engine) -> SequentialRunner:
        return self  # any engine, any device

    def run(self, jobs: Sequence[Job], setup: TrialSetup, engine: Engine,
            hooks: Hooks = NO_HOOKS) -> Iterator[tuple[Job, TrialResult]]:
        if not jobs:
            return
        threads = in_process_threads(self.options.threads, engine.device.type)
        hooks.start(Started(self.name, 1, threads))
        with torch_threads(threads):  # the caller's count put back after
            for job in jobs:
                hear = None if hooks.on_eval is None else functools.partial(hooks.on_eval, job)
                yield job, setup.run(job, engine, hear)
