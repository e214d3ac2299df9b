#!/usr/bin/env bash
# Run ON the GPU machine, from the repository root: trains (or resumes) the foundation model for
# at most $LIMIT seconds, then copies the run's newest checkpoint, weights and log to $OUT.
# The run folder is committed between sessions (each file < 16 MiB), so every lent minute adds on.
#   LIMIT=520 tools/gpu/train-foundation.sh
set -uo pipefail
LIMIT="${LIMIT:-520}"
RUN=runs/foundation-small
for lib in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib; do
  [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
if [ -f "$RUN/checkpoints/last.json" ]; then
  args=(train --resume "$RUN" --backend cuda)
else
  args=(train --config tools/gpu/foundation-small.toml --out "$RUN" --backend cuda)
fi
# A kill at the limit loses at most one checkpoint interval: checkpoints are written atomically.
timeout --signal=INT --kill-after=20 "$LIMIT" .gpu/train-native "${args[@]}"
echo "train-native exited with $?"
# Back through $OUT (at most 8 files of 16 MiB): the log, the config and the newest checkpoint,
# whose folder name last.json gives; put them back under runs/foundation-small/ here.
out="${OUT:-out}"
mkdir -p "$out/checkpoints"
cp "$RUN/log.jsonl" "$RUN/config.toml" "$out/"
cp "$RUN/checkpoints/last.json" "$out/checkpoints/"
dir=$(sed -n 's/.*"dir": *"\([^"]*\)".*/\1/p' "$RUN/checkpoints/last.json")
cp -r "$RUN/checkpoints/$dir" "$out/checkpoints/"
ls -la "$out" "$out/checkpoints/$dir"
tail -3 "$RUN/log.jsonl"
