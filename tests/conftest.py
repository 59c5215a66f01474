"""Test-wide set-up: one torch thread.

The tests train tiny models, where a second intra-op thread only adds synchronisation, and on
a shared 2-core CI machine a thread pool per process makes runs 10-50x slower. Subprocesses
the tests start get OMP_NUM_THREADS=1 for the same reason.
"""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Property tests draw the same examples on every run (deterministic CI, no example database).
from hypothesis import settings  # noqa: E402

settings.register_profile("lrscope", derandomize=True, database=None, deadline=None)
settings.load_profile("lrscope")
