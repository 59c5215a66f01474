"""How a study ran, as DIR/parallel.json records it beside the store: the parallel mode, its
workers and threads, the device, the torch and lrscope versions and the wall time.

:func:`lrscope.study.run.save_parallel_choice` writes it at the end of each call that trained
something (keyed by the study's name); the report and the verdict read it here, as plain JSON.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> _ = (out / PARALLEL_FILE).write_text('{"study": {"mode": "none"}}')
>>> how_it_ran(out, "study"), how_it_ran(out, "other")
({'mode': 'none'}, {})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARALLEL_FILE = "parallel.json"


def how_it_ran(out: str | Path, name: str) -> dict[str, Any]:
    """The study ``name``'s entry of ``out``/parallel.json; empty when there is none (a study
    written before it was kept, by hand, or an imported run)."""
    try:
        saved = json.loads((Path(out) / PARALLEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entry = saved.get(name) if isinstance(saved, dict) else None
    return dict(entry) if isinstance(entry, dict) else {}
