"""How a study's trials run: in this process, in worker processes, batched (K trials in one
vmapped model) or as Ray tasks on a cluster. A package of its own above ``trials/`` and
``trials/batched/``, so that those two never import each other's caller."""

from lrscope.trials.runners.local import (
    PARALLEL_MODES,
    Job,
    TrialSetup,
    resolve_mode,
    run_jobs,
)
from lrscope.trials.runners.ray import RayOptions  # Ray itself is imported only to run

__all__ = ["PARALLEL_MODES", "Job", "RayOptions", "TrialSetup", "resolve_mode", "run_jobs"]
