#!/usr/bin/env bash
# Data-parallel training speed: `train` iterations per second on one device, on two replicas in
# one process (`--devices cpu,cpu`) and on two processes as two nodes on 127.0.0.1, for the same
# whole batch. Prints a Markdown table (and keeps each run's stderr under --out).
#
#   tools/bench/data-parallel.sh [--data ../shared/corpus/train] [--out bench/data-parallel] [--iters 24]
#                                [--preset small] [--patch 64] [--batches 2,4] [--devices cpu,cpu] [--bin PATH]
#
# On a CPU the replicas share the same cores, so this shows the cost of the exchange, not a
# speed-up; with --devices cuda:0,cuda:1 (a build with --features cuda) it measures GPUs.
set -euo pipefail
cd "$(dirname "$0")/../.."

data="../shared/corpus/train" out="bench/data-parallel" iters=24 preset=small patch=64 batches="2,4" devices="cpu,cpu" bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --preset) preset="$2"; shift 2 ;;
    --patch) patch="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "unknown argument: $1 (expected --data, --out, --iters, --preset, --patch, --batches, --devices, --bin)" >&2; exit 2 ;;
  esac
done
[ -d "$data" ] || { echo "--data $data: no such folder" >&2; exit 2; }

# --bin: an existing release binary (skips the build).
if [ -z "$bin" ]; then
  cargo build --release -p train-native
  bin="${CARGO_TARGET_DIR:-target}/release/train-native"
fi
one="${devices%%,*}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# `… (1.23 it/s)` from the summary line on stderr.
rate() { grep -o '([0-9.]* it/s)' "$1" | tail -1 | tr -d '(' | cut -d' ' -f1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "| $preset, patch $patch | one device ($one) | $devices (one process) | two nodes on 127.0.0.1 ($one each) |"
echo "|---|---:|---:|---:|"
for batch in ${batches//,/ }; do
  common=(train --data "$data" --preset "$preset" --patch "$patch" --batch "$batch" --iters "$iters" --seed 1
          --val-every 1000000 --checkpoint-every 1000000)
  tag="$preset-$patch-b$batch"
  "$bin" "${common[@]}" --out "$work/one-$batch" --devices "$one" 2> "$out/$tag-one.log" > /dev/null
  "$bin" "${common[@]}" --out "$work/replicas-$batch" --devices "$devices" 2> "$out/$tag-replicas.log" > /dev/null
  port="$(free_port)"
  nodes=(--devices "$one" --nodes 2 --coordinator "127.0.0.1:$port")
  "$bin" "${common[@]}" --out "$work/nodes-$batch" "${nodes[@]}" --node-rank 1 2> "$out/$tag-node1.log" > /dev/null &
  node1=$!
  "$bin" "${common[@]}" --out "$work/nodes-$batch" "${nodes[@]}" --node-rank 0 2> "$out/$tag-node0.log" > /dev/null
  wait "$node1"
  echo "| batch $batch | $(rate "$out/$tag-one.log") it/s | $(rate "$out/$tag-replicas.log") it/s | $(rate "$out/$tag-node0.log") it/s |"
done
