#!/usr/bin/env bash
# Run HERE (not on the GPU machine): builds the CUDA release binary and stages a GPU leg of the
# foundation run. The device has CUDA 13 drivers and no Rust toolchain (../shared/NOTES.md).
#
# What travels to the device is capped at 64 MiB, and the tracked run folder alone is larger, so
# a leg takes two calls (tools/gpu/README.md):
#   .gpu/    the binary (xz) and the run's newest checkpoint -> call 1, tools/gpu/stage.sh
#   .data/   the corpus                                       -> call 2, tools/gpu/train-foundation.sh
# and the tracked folders that would push the tree over the cap (runs/, static/weights/) wait in
# the ignored .gpu-aside/ until tools/gpu/collect.sh puts them back with the leg's results.
#   tools/gpu/prepare.sh [RUN]      RUN defaults to runs/foundation-small-cpu
#   PREBUILT=path/to/train-native tools/gpu/prepare.sh   (a CUDA build made elsewhere)
set -euo pipefail
source "$(dirname "$0")/pointer.sh"
cd "$(dirname "$0")/../.."
RUN="${1:-runs/foundation-small-cpu}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/restora/target}"
[ -n "${PREBUILT:-}" ] || CUDARC_CUDA_VERSION=13000 cargo build --release --locked -p train-native --features cuda

rm -rf .gpu && mkdir -p .gpu/run/checkpoints
strip -o .gpu/train-native "${PREBUILT:-$CARGO_TARGET_DIR/release/train-native}"
xz -T2 -6 .gpu/train-native
last=$(pointer_dir "$RUN/checkpoints/last.json")
cp "$RUN/config.toml" "$RUN/log.jsonl" .gpu/run/
cp "$RUN/checkpoints/last.json" .gpu/run/checkpoints/
cp -r "$RUN/checkpoints/$last" .gpu/run/checkpoints/
# The best checkpoint's folder stays here; the leg's best is judged against the score in state.json.
echo "$RUN" > .gpu/run-path

rm -rf .data/corpus && mkdir -p .data && cp -r ../shared/corpus .data/corpus
chmod -R u+w .data/corpus

mkdir -p .gpu-aside
for tracked in runs static/weights; do
  [ -e "$tracked" ] && mkdir -p ".gpu-aside/$(dirname "$tracked")" && mv "$tracked" ".gpu-aside/$tracked"
done
du -sh .gpu .data/corpus
echo "call 1: carry .gpu, command: bash tools/gpu/stage.sh"
echo "call 2 (at once, while the machine is warm): carry .data, command: LIMIT=480 bash tools/gpu/train-foundation.sh"
echo "then: tools/gpu/collect.sh <files_at of call 2>"
