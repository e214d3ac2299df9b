#!/usr/bin/env bash
# Restora's CPU backend and the official PyTorch Restormer on the same machine, one after the
# other, same thread count, then one table with the ratio.
#
#   tools/bench/side-by-side.sh --arch path/to/restormer_arch.py [--out bench/cpu-side-by-side] [--threads N]
#
# Needs `pip install torch`; the official architecture file is loaded from --arch, never copied
# here (non-commercial licence). Rows: forward 256² and 512² for tiny and small; training it/s
# for tiny@64×4, small@64×2, small@128×8. Both sides use the official architecture without the
# mask channel (train-native bench --mask-aware false).
set -euo pipefail
cd "$(dirname "$0")/../.."

arch="" out="bench/cpu-side-by-side" threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "unknown argument: $1 (expected --arch, --out, --threads)" >&2; exit 2 ;;
  esac
done
[ -n "$arch" ] || { echo "--arch path/to/restormer_arch.py is required (the official file, not shipped)" >&2; exit 2; }
[ -f "$arch" ] || { echo "--arch $arch: no such file" >&2; exit 2; }

cargo build --release -p train-native
bin="${CARGO_TARGET_DIR:-target}/release/train-native"
export RAYON_NUM_THREADS="$threads"
# Training benches time one tiny forward first (8², negligible): bench always runs a forward size.
common=(--backend cpu --mask-aware false --repeats 5)

"$bin" bench --presets tiny,small --sizes 256,512 --warmup 2 --train-iters 0 "${common[@]}" --out "$out/forward"
"$bin" bench --presets tiny --sizes 8 --warmup 1 --train-patch 64 --train-batch 4 --train-iters 10 "${common[@]}" --out "$out/tiny-64x4"
"$bin" bench --presets small --sizes 8 --warmup 1 --train-patch 64 --train-batch 2 --train-iters 10 "${common[@]}" --out "$out/small-64x2"
"$bin" bench --presets small --sizes 8 --warmup 1 --train-patch 128 --train-batch 8 --train-iters 5 "${common[@]}" --out "$out/small-128x8"

python3 tools/bench/pytorch_reference.py --arch "$arch" --threads "$threads" --out "$out/pytorch.json" \
  --compare "$out"/forward/bench.json "$out"/tiny-64x4/bench.json "$out"/small-64x2/bench.json "$out"/small-128x8/bench.json \
  | tee "$out/side-by-side.md"
