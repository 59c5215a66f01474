"""The ``engine`` fixture: every engine the contract suite runs on, one parameter each.

ColossalAI engines are made once per session (the import costs ~4 s) and closed at its end;
their parameters carry the ``colossalai`` mark (skipped where it is not installed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from lrscope.engines import Engine, get_engine

ENGINES = [
    pytest.param("local", id="local"),
    pytest.param("colossalai:torch_ddp", id="colossalai-torch_ddp", marks=pytest.mark.colossalai),
    pytest.param("colossalai:hybrid", id="colossalai-hybrid", marks=pytest.mark.colossalai),
]


@pytest.fixture(scope="session")
def colossalai_engine() -> Iterator[Callable[[str], Engine]]:
    """``colossalai_engine(plugin)``: the session's one-process ColossalAI engine for it."""
    made: dict[str, Engine] = {}

    def get(plugin: str) -> Engine:
        if plugin not in made:
            made[plugin] = get_engine("colossalai", plugin=plugin)
        return made[plugin]

    yield get
    for engine in made.values():
        engine.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    name, _, plugin = request.param.partition(":")
    if name == "colossalai":
        return request.getfixturevalue("colossalai_engine")(plugin)
    return get_engine(name)
