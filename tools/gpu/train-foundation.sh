#!/usr/bin/env bash
# Call 2 of a GPU leg, ON the GPU machine (carry .data), right after tools/gpu/stage.sh: resumes the
# staged run on CUDA for at most $LIMIT seconds, then sends back through $OUT (at most 8 files of
# 16 MiB) the log, the pointers and the newest checkpoint, and the best weights if they changed.
#   LIMIT=480 bash tools/gpu/train-foundation.sh
# The leg trains at the GPU's patch × batch (PATCH, BATCH: 128 × 8, Restormer's own) with the run's
# schedule; the committed config.toml keeps the CPU legs' 64 × 2. Checkpoints every 100
# iterations, so the cut at $LIMIT loses fewer than 100.
set -uo pipefail
source "$(dirname "$0")/pointer.sh"
source "$(dirname "$0")/env.sh"
LIMIT="${LIMIT:-480}"
RUN="$STAGE/run"
[ -x "$STAGE/train-native" ] || { echo "nothing staged in $STAGE: run tools/gpu/stage.sh first"; exit 2; }
timeout --signal=INT --kill-after=20 "$LIMIT" "$STAGE/train-native" train --resume "$RUN" --backend cuda \
  --data .data/corpus/train --val .data/corpus/val --patch "${PATCH:-128}" --batch "${BATCH:-8}" \
  --workers "${WORKERS:-12}" --checkpoint-every 100
echo "train-native exited with $?"
out="${OUT:-out}"
mkdir -p "$out"
cp "$RUN/log.jsonl" "$out/"
cp "$RUN/checkpoints/last.json" "$out/"
dir=$(pointer_dir "$RUN/checkpoints/last.json")
mkdir -p "$out/$dir" && cp "$RUN/checkpoints/$dir"/* "$out/$dir/"
if [ -f "$RUN/checkpoints/best.json" ]; then
  cp "$RUN/checkpoints/best.json" "$out/"
  cp "$RUN/best.safetensors" "$out/"
fi
ls -la "$out" "$out/$dir"
grep -v '"type":"train"' "$RUN/log.jsonl" | tail -8
tail -1 "$RUN/log.jsonl"
