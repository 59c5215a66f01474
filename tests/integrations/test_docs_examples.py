"""Every example in docs/integrations.md runs as written (in a fresh interpreter, in a scratch
folder), so the docs cannot drift from the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
NEEDS = {"lightning": "lightning", "transformers": "transformers", "torch_lr_finder": None}


def examples() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
            found.append((title, block))
    return found


def test_every_section_has_an_example():
    titles = [title for title, _ in examples()]
    assert len(titles) == 3 and len(set(titles)) == 3, titles


@pytest.mark.slow
@pytest.mark.parametrize(("title", "code"), examples(), ids=[t for t, _ in examples()])
def test_the_example_runs(tmp_path, title, code):
    for word, module in NEEDS.items():
        if module is not None and word in code:
            pytest.importorskip(module)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout.split()
    assert printed, "the example prints its suggestion"
    assert float(printed[0]) > 0  # a learning rate


@pytest.mark.slow
def test_issue19_item13_the_lightning_example_is_seeded(tmp_path):
    """Run twice, the Lightning example prints the same suggestion: it is seeded."""
    pytest.importorskip("lightning")
    (code,) = [c for title, c in examples() if "Lightning" in title]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    printed = []
    for attempt in range(2):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        proc = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                              text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        printed.append(proc.stdout.split())
    assert printed[0] and printed[0] == printed[1]
