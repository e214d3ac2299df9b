#!/usr/bin/env python3
"""Times the official PyTorch Restormer on the configurations `train-native bench` measures,
and prints both side by side with the ratio (Restora's time / PyTorch's time).

The official architecture file (swz30/Restormer, basicsr/models/archs/restormer_arch.py) is
under a non-commercial licence: it is never copied into this repository. Point --arch at your
own copy; it is loaded from there.

    python3 tools/bench/pytorch_reference.py --arch ~/Restormer/basicsr/models/archs/restormer_arch.py \
        --out bench/pytorch.json --compare bench/restora-*/bench.json

`tools/bench/side-by-side.sh` runs both sides one after the other in one command.
Conventions match `train-native bench`: forward of one random image (batch 1), median of the
timed runs after warm-up; training step = forward, L1 loss, backward, AdamW (weight decay 1e-4,
per-parameter gradient clipping at norm 0.01), it/s = 1 / median step time.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

PRESETS = {
    # name: (dim, blocks, refinement); heads 1, 2, 4, 8 and expansion 2.66 for all, as in model/src/restormer.rs.
    "base": (48, [4, 6, 6, 8], 4),
    "small": (24, [2, 3, 3, 4], 2),
    "tiny": (8, [1, 1, 1, 1], 1),
}


def load_arch(path):
    spec = importlib.util.spec_from_file_location("restormer_arch", path)
    if spec is None or spec.loader is None:
        sys.exit(f"--arch {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "Restormer"):
        sys.exit(f"--arch {path}: defines no Restormer class")
    return module.Restormer


def build(restormer, preset):
    dim, blocks, refinement = PRESETS[preset]
    return restormer(dim=dim, num_blocks=blocks, num_refinement_blocks=refinement, heads=[1, 2, 4, 8])


def timed(step, warmup, repeats):
    times = []
    for i in range(warmup + repeats):
        began = time.perf_counter()
        step()
        elapsed = time.perf_counter() - began
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times), times


def measure_forward(torch, restormer, preset, size, warmup, repeats):
    torch.manual_seed(0)
    model = build(restormer, preset).eval()
    image = torch.rand(1, 3, size, size)

    def step():
        with torch.no_grad():
            model(image)

    return timed(step, warmup, repeats)


def measure_training(torch, restormer, preset, patch, batch, warmup, iters):
    torch.manual_seed(0)
    model = build(restormer, preset).train()
    optim = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    inputs = torch.rand(batch, 3, patch, patch)
    target = torch.rand(batch, 3, patch, patch)

    def step():
        optim.zero_grad(set_to_none=True)
        loss = (model(inputs) - target).abs().mean()
        loss.backward()
        for p in model.parameters():
            torch.nn.utils.clip_grad_norm_([p], 0.01)
        optim.step()

    return timed(step, warmup, iters)


def parse_train(spec):
    # "small@64x2" -> ("small", 64, 2)
    try:
        preset, rest = spec.split("@")
        patch, batch = rest.lower().split("x")
        return preset, int(patch), int(batch)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{spec}' is not PRESET@PATCHxBATCH, e.g. small@64x2")


def restora_rows(paths):
    """Forward medians (s) and training it/s from train-native bench reports."""
    forward, training = {}, {}
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        for cell in report.get("forward", []):
            if cell.get("status") == "ok" and cell.get("median_ms"):
                forward[(cell["preset"], cell["size"])] = cell["median_ms"] / 1e3
        for cell in report.get("training", []):
            if cell.get("status") == "ok" and cell.get("iterations_per_second"):
                training[(cell["preset"], cell["patch"], cell["batch"])] = cell["iterations_per_second"]
    return forward, training


def table(reference, restora_paths):
    forward, training = restora_rows(restora_paths)
    lines = [
        "| work | PyTorch | Restora | Restora / PyTorch (time) |",
        "|---|---:|---:|---:|",
    ]
    for row in reference["forward"]:
        ours = forward.get((row["preset"], row["size"]))
        ratio = f"{ours / row['median_s']:.2f}×" if ours else "n/a"
        ours_text = f"{ours:.3f} s" if ours else "n/a"
        lines.append(f"| forward `{row['preset']}` {row['size']}² | {row['median_s']:.3f} s | {ours_text} | {ratio} |")
    for row in reference["training"]:
        ours = training.get((row["preset"], row["patch"], row["batch"]))
        ratio = f"{row['iterations_per_second'] / ours:.2f}×" if ours else "n/a"
        ours_text = f"{ours:.3f} it/s" if ours else "n/a"
        lines.append(
            f"| training `{row['preset']}` patch {row['patch']} × batch {row['batch']} "
            f"| {row['iterations_per_second']:.3f} it/s | {ours_text} | {ratio} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, help="path to the official restormer_arch.py (not shipped)")
    parser.add_argument("--presets", default="tiny,small", help="forward presets, comma-separated")
    parser.add_argument("--sizes", default="256,512", help="forward image sides, comma-separated")
    parser.add_argument("--train", default="tiny@64x4,small@64x2,small@128x8", help="training rows PRESET@PATCHxBATCH")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-iters", type=int, default=10)
    parser.add_argument("--out", help="write the measurements here as JSON")
    parser.add_argument("--compare", nargs="*", default=[], help="train-native bench.json files to set beside")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    restormer = load_arch(args.arch)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for preset in presets:
        if preset not in PRESETS:
            sys.exit(f"unknown preset '{preset}' (expected {', '.join(PRESETS)})")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    train_rows = [parse_train(s.strip()) for s in args.train.split(",") if s.strip()]

    reference = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "threads": args.threads},
        "forward": [],
        "training": [],
    }
    for preset in presets:
        for size in sizes:
            median, runs = measure_forward(torch, restormer, preset, size, args.warmup, args.repeats)
            reference["forward"].append({"preset": preset, "size": size, "median_s": median, "runs_s": runs})
            print(f"forward {preset} {size}²: {median:.3f} s", file=sys.stderr)
    for preset, patch, batch in train_rows:
        median, runs = measure_training(torch, restormer, preset, patch, batch, 1, args.train_iters)
        reference["training"].append({"preset": preset, "patch": patch, "batch": batch,
                                      "iterations_per_second": 1.0 / median, "runs_s": runs})
        print(f"training {preset} {patch}x{batch}: {1.0 / median:.3f} it/s", file=sys.stderr)

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(reference, f, indent=2)
        os.replace(tmp, args.out)
    print(table(reference, args.compare))


if __name__ == "__main__":
    main()
