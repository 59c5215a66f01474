#!/usr/bin/env bash
# Install everything the tests need into .venv, then lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh test
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
# Both cores (pytest-xdist): most tests wait on subprocesses (torchrun, Ray, worker pools) or
# draw report figures on one torch thread; tests/conftest.py keeps the Ray tests on one worker.
.venv/bin/python -m pytest -q -n 2 --dist loadgroup "$@"
