#!/usr/bin/env bash
# Run HERE after a GPU leg: puts the tracked folders back from .gpu-aside/ and, given the folder
# where call 2's $OUT files landed, merges the leg into the run folder (log, last checkpoint,
# last/best weights). Without an argument it only puts the folders back (a leg that failed).
#   tools/gpu/collect.sh /work/.device/<...>/files
set -euo pipefail
source "$(dirname "$0")/pointer.sh"
cd "$(dirname "$0")/../.."
for tracked in runs static/weights; do
  if [ -e ".gpu-aside/$tracked" ]; then
    [ -e "$tracked" ] && { echo "$tracked exists both here and in .gpu-aside/: resolve by hand"; exit 1; }
    mv ".gpu-aside/$tracked" "$tracked"
  fi
done
[ $# -ge 1 ] || exit 0
leg="$1"
RUN=$(cat .gpu/run-path)
dir=$(pointer_dir "$leg/last.json")
[ -f "$leg/$dir/model.safetensors" ] || { echo "$leg holds no checkpoint $dir"; exit 1; }
old=$(pointer_dir "$RUN/checkpoints/last.json")
if [ "$dir" != "$old" ]; then
  rm -rf "$RUN/checkpoints/$dir.partial" && cp -r "$leg/$dir" "$RUN/checkpoints/$dir.partial"
  mv "$RUN/checkpoints/$dir.partial" "$RUN/checkpoints/$dir"
  cp "$leg/$dir/model.safetensors" "$RUN/last.safetensors"
  cp "$leg/last.json" "$RUN/checkpoints/last.json"
  rm -rf "${RUN:?}/checkpoints/$old"
fi
if [ -f "$leg/best.json" ]; then
  cp "$leg/best.safetensors" "$RUN/best.safetensors"
  cp "$leg/best.json" "$RUN/checkpoints/best.json"
fi
cp "$leg/log.jsonl" "$RUN/log.jsonl"
echo "$RUN now at $(cat "$RUN/checkpoints/last.json" | tr -d '\n ')"
