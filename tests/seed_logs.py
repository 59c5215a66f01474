"""Where the seed study's TensorBoard logs are: $LRSCOPE_SEED_LOGS, ../shared or /work/shared
(tests that read them skip when they are absent)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seed_logs() -> Path:
    candidates = [os.environ.get("LRSCOPE_SEED_LOGS", ""), REPO.parent / "shared/seed/tb_logs",
                  REPO / "shared/seed/tb_logs", "/work/shared/seed/tb_logs"]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), Path(candidates[-1]))


SEED_LOGS = seed_logs()
