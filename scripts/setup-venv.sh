#!/usr/bin/env bash
# Create .venv and install lrscope into it. torch==2.13.0 goes first and on its own: a bare
# `torch` (or a range a newer release satisfies) can pull a multi-GB CUDA build.
#   scripts/setup-venv.sh            runtime only
#   scripts/setup-venv.sh test       + test tools, ColossalAI, and (as root) Debian's
#                                      Fashion-MNIST and Chromium for the tests that need them
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" torch==2.13.0
# Everything after torch is installed with it held fixed (lightning, torch-lr-finder, ... must
# not swap it for a CUDA build). The version is read from the package's metadata: importing
# torch before numpy is installed warns "Failed to initialize NumPy".
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))')" >"$constraints"
PIP+=(-c "$constraints")
if [ "${1:-}" = test ]; then
  "${PIP[@]}" -e ".[test]"
  scripts/install-colossalai.sh
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
     && { [ ! -d /usr/share/datasets/fashion-mnist ] || [ ! -x /usr/bin/chromium ]; }; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null
  fi
else
  "${PIP[@]}" -e .
fi
