"""Test-wide set-up: one torch thread; the Ray-cluster tests on one xdist worker.

The tests train tiny models, where a second intra-op thread only adds synchronisation, and on
a shared 2-core CI machine a thread pool per process makes runs 10-50x slower. Subprocesses
the tests start get OMP_NUM_THREADS=1 for the same reason.
"""

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Property tests draw the same examples on every run (deterministic CI, no example database).
from hypothesis import settings  # noqa: E402

settings.register_profile("lrscope", derandomize=True, database=None, deadline=None)
settings.load_profile("lrscope")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (scripts/test.sh runs the suite on 2 workers), the tests that start a
    local Ray cluster run on one worker, one after another: two clusters at once would only
    compete for the 2 cores each claims."""
    for item in items:
        if item.path.name == "test_ray_runner.py" or "[ray]" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("ray"))
