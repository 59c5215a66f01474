#!/usr/bin/env bash
# Install lrscope into .venv and run the main job on the embedded default (digits).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv/bin/lrscope compare --task digits "$@"
