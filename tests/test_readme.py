"""The set-up facts the README and docs/integrations.md state, checked against the scripts and
pins they describe, so they cannot drift (issue 19 item 13)."""

from __future__ import annotations

import importlib.metadata
import itertools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
INTEGRATIONS = (REPO / "docs/integrations.md").read_text(encoding="utf-8")
# `echo "torch==$(<python> -c '<code>')"`: how a set-up script pins the torch it installed.
TORCH_PIN = re.compile(r"""echo "torch==\$\((\S+) -c '([^']*)'\)""")
# numpy made unimportable, as it is in a fresh .venv that holds only torch.
NO_NUMPY = "import sys; sys.modules['numpy'] = None\n"


def test_issue19_item13_setup_reads_the_torch_version_without_a_numpy_warning() -> None:
    """setup-venv.sh pins torch before numpy is installed: reading its version must not import
    torch ("UserWarning: Failed to initialize NumPy: No module named 'numpy'")."""
    for script in ("setup-venv.sh", "install-colossalai.sh"):
        found = TORCH_PIN.findall((REPO / "scripts" / script).read_text(encoding="utf-8"))
        assert len(found) == 1, f"{script}: no torch pin line"
        (_, code), = found
        proc = subprocess.run([sys.executable, "-W", "error", "-c", NO_NUMPY + code],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", (script, proc.stderr[-2000:])
        assert proc.stdout.strip() == importlib.metadata.version("torch"), script


def test_issue19_item13_readme_says_how_to_run_the_installed_command() -> None:
    setup = README[README.index("## Set-up"):README.index("## Use")]
    assert "demo.sh" in setup
    assert "source .venv/bin/activate" in setup and ".venv/bin/lrscope" in setup
    assert "lrscope" in (REPO / "scripts/demo.sh").read_text(encoding="utf-8")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "lrscope" in scripts["project"]["scripts"]  # what .venv/bin/lrscope is


def test_issue19_item13_extras_install_from_a_clone() -> None:
    """lrscope is installed from a clone, not PyPI: an extra is `pip install -e ".[name]"`,
    and every extra named exists in pyproject.toml."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]
    for name, text in (("README.md", README), ("docs/integrations.md", INTEGRATIONS)):
        assert not re.search(r"pip install ['\"]?lrscope\[", text), name
        named = re.findall(r'pip install -e "\.\[(\w+)\]"', text)
        assert named and set(named) <= set(extras), (name, named)
    assert 'pip install -e ".[lightning]"' in README + INTEGRATIONS


def test_issue19_item13_stated_transformers_version_is_the_one_ci_installs() -> None:
    """CI (.ci/run -> scripts/test.sh) installs transformers through
    scripts/install-colossalai.sh's requirements file; the docs state that version."""
    requirements = (REPO / "requirements-colossalai.txt").read_text(encoding="utf-8")
    assert "requirements-colossalai.txt" in (REPO / "scripts/install-colossalai.sh").read_text()
    pinned = re.findall(r"^transformers==(\S+)$", requirements, flags=re.M)
    stated = re.findall(r"[Tt]ested with transformers (\d[\w.]*\d)", INTEGRATIONS + README)
    assert len(pinned) == 1 and stated and set(stated) == set(pinned), (stated, pinned)


def _python_blocks(text: str) -> list[str]:
    """The README's Python examples, as written, but the compare block (which
    tests/study/test_compare_api.py runs and checks on its own)."""
    parts = text.split("```python\n")
    return [part.split("```", 1)[0] for before, part in itertools.pairwise(parts)
            if "readme-compare" not in before.rsplit("\n\n", 1)[-1]]


@pytest.mark.slow
def test_issue19_every_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    """Each Python block of the README runs, as pasted, in a fresh interpreter (issue 19: every
    command and Python example of the README runs as written)."""
    blocks = _python_blocks(README)
    assert blocks and any("range_test" in block for block in blocks)
    for block in blocks:
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, (block[:200], proc.stderr[-3000:])
    assert (tmp_path / "find.png").exists()  # result.plot("find.png") drew the curve
