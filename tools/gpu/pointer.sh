# Sourced by the leg scripts: the checkpoint folder a pointer file (checkpoints/last.json,
# best.json) names, e.g. `pointer_dir runs/x/checkpoints/last.json` -> iter-00005000.
pointer_dir() { sed -n 's/.*"dir": *"\([^"]*\)".*/\1/p' "$1"; }
