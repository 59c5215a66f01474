"""How a study's trials run: in this process, in worker processes, or batched (K trials in one
vmapped model). A package of its own above ``trials/`` and ``trials/batched/``, so that those
two never import each other's caller."""

from lrscope.trials.runners.local import (
    PARALLEL_MODES,
    Job,
    TrialSetup,
    resolve_mode,
    run_jobs,
)

__all__ = ["PARALLEL_MODES", "Job", "TrialSetup", "resolve_mode", "run_jobs"]
