#!/usr/bin/env bash
# The GPU items of the open issues as one run on a lent device machine (its tool's README: one short,
# prepared script, with time left to run it again). The device image has PyTorch, transformers, peft and
# accelerate but not diffusers and the few packages below: they travel as wheels.
#
#   here, once:  echo /.whl/ >> .git/info/exclude && bash benchmarks/gpu_checks.sh --fetch
#   there:       the device tool's run, command "bash benchmarks/gpu_checks.sh", carry [".whl"], timeout 540
#
# Each figure goes to $OUT (comes back) and to the output; each step has its own time limit, so one that
# hangs cannot take the others' time. Nothing is downloaded there: the models are built from configs.
set -uo pipefail
cd "$(dirname "$0")/.."

# Versions as the CPU environment has them (pip show); pure-Python wheels, so one download serves the device.
WHEELS="diffusers==0.42.1 torchsde==0.2.6 trampoline==0.1.2 compel==2.5.1 sd-parsers==0.6"

if [ "${1:-}" = "--fetch" ]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $WHEELS
    ls -la .whl
    exit
fi

OUT="${OUT:-/tmp/gpu-checks}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_checks: the wheels did not install (run with --fetch here first, and carry .whl)"; exit 1; }
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"

step() {  # step NAME SECONDS COMMAND...: one figure, its output kept in $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit}s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

# Issue 27, item 7: a study of 4 samplers x 3 step counts x 4 seeds, batched against one by one (goal <= 0.4).
step study 240 python3 benchmarks/compare_batching.py --study --sd15 --device cuda --dtype float16 --repeats 2
# Live previews on a GPU keep the frame cap (no processor-share cap there): their cost (goals 1.02, 1.03).
step preview 150 python3 benchmarks/gpu_preview.py --repeats 3
# The sampling engine against diffusers' classes at SD 1.5 scale (goals 1.02 and 1.05).
step engine 120 python3 benchmarks/gpu_engine.py --repeats 3
