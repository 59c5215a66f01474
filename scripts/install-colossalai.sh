#!/usr/bin/env bash
# ColossalAI 0.5.0 without its metadata's pins: its metadata asks for torch<=2.5.1 (a CUDA
# build) and ray, diffusers, ... that Booster never imports. --no-deps, then only what it
# really imports (requirements-colossalai.txt), with the torch already installed held fixed
# (a constraint), so that nothing can swap it for a CUDA build. pip prints a resolver
# complaint about colossalai's torch pin and exits 0; do not run `pip check`.
#   scripts/install-colossalai.sh          (after scripts/setup-venv.sh; uses .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PIP=("$PY" -m pip install -q --disable-pip-version-check)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')" >"$constraints"

"${PIP[@]}" --no-deps colossalai==0.5.0
status=0
log=$("${PIP[@]}" -c "$constraints" -r requirements-colossalai.txt 2>&1) || status=$?
printf '%s\n' "$log" | grep -vE "^WARNING: Location|dependency resolver|colossalai 0.5.0 requires" \
  | grep -v '^$' || true
[ "$status" = 0 ] || { echo "install-colossalai: pip failed (exit $status)" >&2; exit "$status"; }

# What the engine imports must import (warnings about optional CUDA kernels are expected).
check='from colossalai.booster import Booster
from colossalai.booster.plugin import HybridParallelPlugin, TorchDDPPlugin
import torch; print("colossalai ready; torch", torch.__version__)'
out=$("$PY" -W ignore -c "$check" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
printf '%s\n' "$out" | tail -n 1
