#!/usr/bin/env bash
# ColossalAI 0.5.0 without its metadata's pins: its metadata asks for torch<=2.5.1 (a CUDA
# build) and ray, diffusers, ... that Booster never imports. --no-deps, then only what it
# really imports (requirements-colossalai.txt). pip prints a resolver complaint about the torch
# pin and exits 0; do not run `pip check`.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --no-deps colossalai==0.5.0
"${PIP[@]}" -r requirements-colossalai.txt 2>&1 | grep -v "^WARNING: Location" \
  | grep -vE "dependency resolver|colossalai 0.5.0 requires" || true
