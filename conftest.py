"""Repo-wide test set-up: tests marked ``colossalai`` are skipped, all for one reason, where
ColossalAI is not installed (it is optional; scripts/install-colossalai.sh installs it)."""

from __future__ import annotations

import importlib.util

import pytest

# Modules of optional integrations: their doctests are collected only where the library is.
OPTIONAL_MODULES = {
    "src/lrscope/integrations/lightning.py": "lightning",
    "src/lrscope/integrations/transformers.py": "transformers",
}
collect_ignore = [path for path, needs in OPTIONAL_MODULES.items()
                  if importlib.util.find_spec(needs) is None]

COLOSSALAI_MISSING = "colossalai is not installed (scripts/install-colossalai.sh installs it)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if importlib.util.find_spec("colossalai") is not None:
        return
    skip = pytest.mark.skip(reason=COLOSSALAI_MISSING)
    for item in items:
        if "colossalai" in item.keywords:
            item.add_marker(skip)
