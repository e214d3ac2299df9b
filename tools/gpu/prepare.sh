#!/usr/bin/env bash
# Run HERE (not on the GPU machine): builds the CUDA release binary and stages what the device
# command carries. The device has CUDA 13 drivers and no Rust toolchain (../shared/NOTES.md).
#   tools/gpu/prepare.sh            -> .gpu/train-native (stripped), .data/corpus
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/restora/target}"
CUDARC_CUDA_VERSION=13000 cargo build --release --locked -p train-native --features cuda
mkdir -p .gpu .data
cp "$CARGO_TARGET_DIR/release/train-native" .gpu/train-native
strip .gpu/train-native
rm -rf .data/corpus && cp -r ../shared/corpus .data/corpus
du -sh .gpu/train-native .data/corpus
echo "carry: .gpu .data runs/foundation-small (if it exists); then run tools/gpu/train-foundation.sh on the device"
