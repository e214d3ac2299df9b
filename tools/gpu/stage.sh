#!/usr/bin/env bash
# Call 1 of a GPU leg, ON the GPU machine (carry .gpu): keeps the binary and the checkpoint
# outside the working tree, where they survive until the machine goes back, then checks that
# the CUDA backend runs and times it (bench.md comes back through $OUT).
set -uo pipefail
source "$(dirname "$0")/env.sh"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r .gpu/. "$STAGE/"
xz -d "$STAGE/train-native.xz" && chmod +x "$STAGE/train-native"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ls "$STAGE" "$STAGE/run/checkpoints"
# Forward latency and training it/s of the foundation model's shape, as the leg will train it.
timeout --kill-after=10 "${BENCH_LIMIT:-100}" "$STAGE/train-native" bench --backend cuda --presets small \
  --sizes 256,512 --train-patch 128 --train-batch 8 --train-iters 20 --max-seconds 20 --out "${OUT:-out}/bench"
echo "bench exited with $?"
