"""What trials/batched/ calls itself (issue 17 item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import lrscope.trials.batched as batched


def test_issue17_item7_the_batched_runner_does_not_call_itself_an_engine() -> None:
    """trials/batched/ is a runner (it runs trials); an engine (lrscope.engines) is where one
    model trains. Its docstrings and comments say "batched runner", never "engine", apart
    from the names of the engine it uses (LocalEngine, lrscope.engines)."""
    folder = Path(batched.__file__).parent
    said = [f"{path.name}:{number}: {line.strip()}"
            for path in sorted(folder.glob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"\bengine\b", re.sub(r"LocalEngine|lrscope\.engines[\w.]*", "",
                                                 line), re.IGNORECASE)]
    assert said == []
