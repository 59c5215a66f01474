"""Which lrscope a benchmark measured: what its tables print as ``code``."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    """``git -C ROOT args`` (its output), or "unknown" where git or the checkout is missing."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_version() -> str:
    """``lrscope at <short commit>``, saying so when src/ has uncommitted changes."""
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "src") else ""
    return f"lrscope at {git('rev-parse', '--short', 'HEAD')}{dirty}"
