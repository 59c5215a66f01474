"""Repo-wide test set-up: tests marked ``colossalai`` are skipped, all for one reason, where
ColossalAI is not installed (it is optional; scripts/install-colossalai.sh installs it)."""

from __future__ import annotations

import importlib.util

import pytest

COLOSSALAI_MISSING = "colossalai is not installed (scripts/install-colossalai.sh installs it)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if importlib.util.find_spec("colossalai") is not None:
        return
    skip = pytest.mark.skip(reason=COLOSSALAI_MISSING)
    for item in items:
        if "colossalai" in item.keywords:
            item.add_marker(skip)
