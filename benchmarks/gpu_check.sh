#!/usr/bin/env bash
# Issue 11's GPU checks, in one run (under 8 minutes on an H200), into one log file:
#   1. batched K=8 and K=32 vs sequential (bench_batched.py --device cuda) on digits MLP,
#      digits LeNet and Fashion-MNIST LeNet-5; on LeNet-5 also each mode and auto's choice;
#   2. the seed study end to end (examples/seed_study.toml, 8 schedules x 3 seeds x 2345 steps)
#      with --parallel auto;
#   3. ColossalAI's gemini and low_level_zero plugins on one range test, under torchrun, 1 GPU.
#
#   benchmarks/gpu_check.sh                          the checks, on CUDA
#   GPU_CHECK_DEVICE=cpu benchmarks/gpu_check.sh --dry-run
#                                                    every step in a tiny config (seconds each):
#                                                    proves the commands; on the CPU the GPU
#                                                    plugins must refuse with "needs CUDA"
# Environment: GPU_CHECK_LOG (default runs/gpu_check-<time>.log), GPU_CHECK_PYTHON (a Python
# with torch; default .venv/bin/python, else python3), GPU_CHECK_DATA (Fashion-MNIST's IDX
# folder; default Debian's, else .gpu-bundle/fashion-mnist).
#
# Nothing is installed beyond what `scripts/setup-venv.sh test` installs. A machine with no
# network (a lent GPU machine) gets it from .gpu-bundle/ (benchmarks/gpu_bundle.sh makes it
# where pip works; carry it): its wheels go to a scratch --target folder, its Fashion-MNIST is
# read in place. Without a Python that has torch and the lrscope dependencies and without a
# bundle, scripts/setup-venv.sh test makes .venv (needs the network).
# Exit: 0 every step ran and passed; 1 no CUDA device or a step failed; 3 a step was skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: benchmarks/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac
DEVICE=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEVICE" != cuda ] && [ "$DRY" = 0 ]; then
  echo "gpu_check: GPU_CHECK_DEVICE=$DEVICE is only for --dry-run; the checks run on cuda" >&2
  exit 2
fi

no_cuda() { echo "no CUDA device: nothing to check${1:+ ($1)}" >&2; exit 1; }
# Before anything is set up: a machine without an NVIDIA GPU stops here, in a second.
if [ "$DEVICE" = cuda ] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
then
  no_cuda "nvidia-smi finds no GPU"
fi

LOG=${GPU_CHECK_LOG:-runs/gpu_check-$(date +%Y%m%d-%H%M%S).log}
mkdir -p "$(dirname "$LOG")"
LOG=$(cd "$(dirname "$LOG")" && pwd)/$(basename "$LOG")
exec > >(tee -a "$LOG") 2>&1
echo "gpu_check: log $LOG; device $DEVICE; $([ "$DRY" = 1 ] && echo "dry run" || echo "full")"
export PYTHONUNBUFFERED=1

# -- the Python: one with torch and lrscope's dependencies -------------------------------------
BUNDLE=$ROOT/.gpu-bundle
has_deps() { "$1" -c 'import torch, numpy, scipy, matplotlib, rich, pydantic, tensorboard' 2>/dev/null; }
PY=${GPU_CHECK_PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=$(command -v python3 || true); fi
fi
if [ -n "$PY" ] && ! has_deps "$PY" && compgen -G "$BUNDLE/wheels/*.whl" >/dev/null; then
  SITE=$(mktemp -d /tmp/gpu-check-site.XXXXXX)
  echo "installing the bundle's wheels into $SITE (no network)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
    "$BUNDLE"/wheels/*.whl || { echo "gpu_check: the bundle's wheels did not install" >&2; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -z "$PY" ] || ! has_deps "$PY"; then
  echo "no Python with torch and lrscope's dependencies: scripts/setup-venv.sh test"
  scripts/setup-venv.sh test || { echo "gpu_check: setup failed (no network? see .gpu-bundle)" >&2
                                  exit 1; }
  PY=.venv/bin/python
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's lrscope, first
if [ "$DEVICE" = cuda ]; then
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || no_cuda "torch $("$PY" -c 'import torch; print(torch.__version__)') sees none"
fi
"$PY" - <<'EOF'
import sys, torch, lrscope
print("python", sys.version.split()[0], "| torch", torch.__version__, "| lrscope", lrscope.__file__)
if torch.cuda.is_available():
    print("cuda", torch.version.cuda, "|", torch.cuda.get_device_name(0))
EOF

DATA=${GPU_CHECK_DATA:-}
if [ -z "$DATA" ]; then
  for dir in /usr/share/datasets/fashion-mnist "$BUNDLE/fashion-mnist"; do
    [ -d "$dir" ] && { DATA=$dir; break; }
  done
fi
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# -- steps: each one timed, limited, its status kept for the summary ---------------------------
declare -a SUMMARY=()
FAILED=0
SKIPPED=0
step() {  # step NAME TIMEOUT_S [--refusal-ok] CMD...: run, log, record
  local name=$1 limit=$(($2 * LIMIT_SCALE)); shift 2
  local refusal_ok=0
  [ "$1" = --refusal-ok ] && { refusal_ok=1; shift; }
  echo; echo "=== $name ($(date +%T), limit ${limit}s)"; echo "\$ $*"
  local start=$SECONDS out rc
  out=$WORK/step.out
  timeout "$limit" "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start)) verdict=ok
  if [ "$rc" != 0 ]; then
    if [ "$refusal_ok" = 1 ] && grep -q "needs CUDA" "$out"; then
      verdict="ok (refused on $DEVICE, as documented)"
    elif [ "$rc" = 124 ]; then
      verdict="FAILED: timed out"; FAILED=1
    else
      verdict="FAILED: exit $rc"; FAILED=1
    fi
  fi
  SUMMARY+=("$(printf '%-44s %5ss  %s' "$name" "$took" "$verdict")")
}
skip() { SUMMARY+=("$(printf '%-44s %5s   SKIPPED: %s' "$1" - "$2")"); SKIPPED=1; echo "=== $1: skipped ($2)"; }

LIMIT_SCALE=1  # the limits fit an H200; a dry run on a (shared) CPU gets more time
if [ "$DRY" = 1 ]; then
  LIMIT_SCALE=6
  BENCH=(--tiny --ks 2 3) ; FMODES=(--modes none batched auto)
  STUDY=(--limit-train 1280 --limit-test 256 --steps 20 --eval-every 10 --seeds 1 --range-steps 20)
  FIND=(--task digits --steps 20 --quiet)
else
  BENCH=(--ks 8 32 --steps 300 --eval-every 100 --reps 2); FMODES=(--modes none batched auto)
  STUDY=()
  FIND=(--task digits --steps 100 --quiet)
fi
DATA_FLAG=(); [ -n "$DATA" ] && DATA_FLAG=(--data-dir "$DATA")

# 1. batched vs sequential (processes are CPU-only: bench_batched says so and skips them)
step "batched vs sequential, digits MLP" 50 \
  "$PY" benchmarks/bench_batched.py --device "$DEVICE" --task digits-mlp "${BENCH[@]}"
step "batched vs sequential, digits LeNet" 50 \
  "$PY" benchmarks/bench_batched.py --device "$DEVICE" --task digits-lenet "${BENCH[@]}"
if [ -n "$DATA" ]; then
  step "each mode vs sequential, Fashion LeNet-5" 110 \
    "$PY" benchmarks/bench_batched.py --device "$DEVICE" --task fashion-lenet5 "${DATA_FLAG[@]}" \
    "${BENCH[@]}" "${FMODES[@]}"
  # 2. the seed study end to end
  step "seed study end to end, --parallel auto" 150 \
    "$PY" -m lrscope compare --config examples/seed_study.toml --parallel auto \
    --device "$DEVICE" "${DATA_FLAG[@]}" "${STUDY[@]}" --out "$WORK/seed-study"
else
  skip "each mode vs sequential, Fashion LeNet-5" "no Fashion-MNIST (set GPU_CHECK_DATA)"
  skip "seed study end to end, --parallel auto" "no Fashion-MNIST (set GPU_CHECK_DATA)"
fi

# 3. ColossalAI's GPU plugins on one range test, one process under torchrun
if "$PY" -c 'import colossalai.booster' 2>/dev/null; then
  for plugin in gemini low_level_zero; do
    opt=(); [ "$plugin" = gemini ] && opt=(--optimizer adam)  # gemini trains Adam(W) only
    step "colossalai $plugin, range test" 50 --refusal-ok \
      env OMP_NUM_THREADS=4 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
      -m lrscope find --engine colossalai --plugin "$plugin" "${opt[@]}" "${FIND[@]}" \
      --out "$WORK/find-$plugin"
  done
else
  skip "colossalai gemini + low_level_zero" "colossalai does not import (scripts/install-colossalai.sh)"
fi

echo; echo "=== summary (log: $LOG)"
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILED" = 1 ] && exit 1
[ "$SKIPPED" = 1 ] && exit 3
exit 0
