#!/usr/bin/env bash
# Make .gpu-bundle/ for benchmarks/gpu_check.sh on a machine with no network (a lent GPU
# machine whose image has CUDA torch, numpy, scipy, matplotlib, rich, tensorboard, but not
# lrscope's other dependencies). Run it here, where pip works, then carry .gpu-bundle.
#   benchmarks/gpu_bundle.sh                 pydantic's wheels + Fashion-MNIST (about 33 MB)
#   benchmarks/gpu_bundle.sh --colossalai    + colossalai 0.5.0 and what its Booster imports
#                                              (requirements-colossalai.txt; bitsandbytes alone
#                                              is large: check the 64 MiB carry limit)
# Only packages scripts/setup-venv.sh test installs, at the versions this .venv holds, as
# CPython 3.12 x86-64 wheels (the GPU image's Python; override with BUNDLE_PYTHON_VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
VER=${BUNDLE_PYTHON_VERSION:-3.12}
OUT=.gpu-bundle
mkdir -p "$OUT/wheels"
grep -qxF "/$OUT/" .git/info/exclude 2>/dev/null || echo "/$OUT/" >>"$(git rev-parse --git-path info/exclude)"
pinned() { for name in "$@"; do echo "$name==$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))")"; done; }
packages=$(pinned pydantic pydantic-core annotated-types typing-inspection)
if [ "${1:-}" = --colossalai ]; then
  packages+=" $(pinned transformers tokenizers huggingface_hub peft galore-torch bitsandbytes einops)"
  # colossalai 0.5.0 is a source distribution: built here into a pure-Python wheel
  "$PY" -m pip wheel -q --no-deps -w "$OUT/wheels" colossalai==0.5.0
fi
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$VER" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$OUT/wheels" $packages
if [ -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p "$OUT/fashion-mnist" && cp -u /usr/share/datasets/fashion-mnist/*.gz "$OUT/fashion-mnist/"
fi
du -sh "$OUT"
