#!/usr/bin/env python3
"""Convert LPIPS AlexNet weights to the safetensors file `restora-model` loads.

Two variants, same key names as the PyTorch modules' own state dicts (so the file can be
diffed against the source with nothing but a key list):

Shift-tolerant (default): the 20 tensors of stlpips-pytorch 0.0.2's
`weights/vST0.0/alex_shift_tolerant.pth`, names and shapes unchanged, f32:

    scaling_layer.shift   [1, 3, 1, 1]      scaling_layer.scale   [1, 3, 1, 1]
    net.slice1.0.weight   [64, 3, 11, 11]   net.slice1.0.bias     [64]      conv1
    net.slice1.1.filt     [64, 1, 3, 3]                                     blur-pool 1
    net.slice2.4.filt     [64, 1, 3, 3]                                     blur-pool 2
    net.slice2.5.weight   [192, 64, 5, 5]   net.slice2.5.bias     [192]     conv2
    net.slice3.8.filt     [192, 1, 3, 3]                                    blur-pool 3
    net.slice3.9.weight   [384, 192, 3, 3]  net.slice3.9.bias     [384]     conv3
    net.slice4.11.weight  [256, 384, 3, 3]  net.slice4.11.bias    [256]     conv4
    net.slice5.13.weight  [256, 256, 3, 3]  net.slice5.13.bias    [256]     conv5
    lin0.model.1.weight   [1, 64, 1, 1]  ...  lin4.model.1.weight [1, 256, 1, 1]

Standard LPIPS v0.1 (`--standard`): what `lpips.LPIPS(net='alex').state_dict()` holds, built
from the `lpips` wheel's linear heads (`lpips/weights/v0.1/alex.pth`) and torchvision's
ImageNet AlexNet (`alexnet-owt-7be5be79.pth`, which you must already have: nothing is
downloaded here). Convolutions are `net.slice1.0`, `net.slice2.3`, `net.slice3.6`,
`net.slice4.8`, `net.slice5.10` (`.weight`, `.bias`), the heads `lin{0..4}.model.1.weight`,
plus the scaling layer's constants; no `filt` tensors.

The file's `__metadata__` records the variant and the source.

Usage:
    python convert_stlpips.py [--pth PATH] [--out PATH]
    python convert_stlpips.py --standard --lpips-pth PATH --alexnet-pth PATH --out PATH
"""

import argparse
import hashlib
import importlib.util
import os
import sys

import torch
from safetensors.torch import load_file, save_file

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "static", "weights", "lpips", "alex_shift_tolerant.safetensors")

SHIFT_TOLERANT_KEYS = {
    "scaling_layer.shift": (1, 3, 1, 1),
    "scaling_layer.scale": (1, 3, 1, 1),
    "net.slice1.0.weight": (64, 3, 11, 11),
    "net.slice1.0.bias": (64,),
    "net.slice1.1.filt": (64, 1, 3, 3),
    "net.slice2.4.filt": (64, 1, 3, 3),
    "net.slice2.5.weight": (192, 64, 5, 5),
    "net.slice2.5.bias": (192,),
    "net.slice3.8.filt": (192, 1, 3, 3),
    "net.slice3.9.weight": (384, 192, 3, 3),
    "net.slice3.9.bias": (384,),
    "net.slice4.11.weight": (256, 384, 3, 3),
    "net.slice4.11.bias": (256,),
    "net.slice5.13.weight": (256, 256, 3, 3),
    "net.slice5.13.bias": (256,),
    "lin0.model.1.weight": (1, 64, 1, 1),
    "lin1.model.1.weight": (1, 192, 1, 1),
    "lin2.model.1.weight": (1, 384, 1, 1),
    "lin3.model.1.weight": (1, 256, 1, 1),
    "lin4.model.1.weight": (1, 256, 1, 1),
}

# torchvision AlexNet `features.<i>` -> lpips' `net.slice<k>.<i>` (lpips/pretrained_networks.py).
TORCHVISION_TO_LPIPS = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
# LPIPS' ScalingLayer constants (identical in lpips and stlpips).
SHIFT = [-0.030, -0.088, -0.188]
SCALE = [0.458, 0.448, 0.450]


def stlpips_pth() -> str:
    """Path of the weights inside the installed stlpips-pytorch package (not imported: its
    import pulls IPython and torchsummary, which the conversion does not need)."""
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("stlpips-pytorch is not installed: pip install stlpips-pytorch==0.0.2 (or pass --pth)")
    root = list(spec.submodule_search_locations)[0]
    return os.path.join(root, "weights", "vST0.0", "alex_shift_tolerant.pth")


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check(state: dict, expected: dict) -> None:
    for key, shape in expected.items():
        if key not in state:
            sys.exit(f"missing key {key}")
        if tuple(state[key].shape) != shape:
            sys.exit(f"{key}: shape {tuple(state[key].shape)}, expected {shape}")
    extra = sorted(set(state) - set(expected))
    if extra:
        sys.exit(f"unexpected keys: {extra}")


def shift_tolerant(pth: str) -> tuple[dict, dict]:
    state = torch.load(pth, map_location="cpu", weights_only=True)
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    check(state, SHIFT_TOLERANT_KEYS)
    meta = {
        "format": "pt",
        "variant": "shift_tolerant",
        "source": "stlpips-pytorch 0.0.2, stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth",
        "source_sha256": sha256(pth),
        "license": "BSD-2-Clause, Copyright (c) 2022, Abhijay Ghildyal, Feng Liu",
    }
    return state, meta


def standard(lpips_pth: str, alexnet_pth: str) -> tuple[dict, dict]:
    heads = torch.load(lpips_pth, map_location="cpu", weights_only=True)
    trunk = torch.load(alexnet_pth, map_location="cpu", weights_only=True)
    state = {
        "scaling_layer.shift": torch.tensor(SHIFT).reshape(1, 3, 1, 1),
        "scaling_layer.scale": torch.tensor(SCALE).reshape(1, 3, 1, 1),
    }
    for i, k in TORCHVISION_TO_LPIPS.items():
        for p in ("weight", "bias"):
            state[f"net.slice{k}.{i}.{p}"] = trunk[f"features.{i}.{p}"]
    for k in range(5):
        state[f"lin{k}.model.1.weight"] = heads[f"lin{k}.model.1.weight"]
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    meta = {
        "format": "pt",
        "variant": "standard",
        "source": "lpips v0.1 alex.pth (heads) + torchvision alexnet (trunk)",
        "heads_sha256": sha256(lpips_pth),
        "trunk_sha256": sha256(alexnet_pth),
    }
    return state, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", help="stlpips alex_shift_tolerant.pth (default: from the installed package)")
    ap.add_argument("--standard", action="store_true", help="build standard LPIPS v0.1 AlexNet weights")
    ap.add_argument("--lpips-pth", help="with --standard: lpips/weights/v0.1/alex.pth")
    ap.add_argument("--alexnet-pth", help="with --standard: torchvision alexnet-owt-7be5be79.pth")
    ap.add_argument("--out", default=None, help=f"output file (default {DEFAULT_OUT})")
    args = ap.parse_args()

    if args.standard:
        if not (args.lpips_pth and args.alexnet_pth and args.out):
            sys.exit("--standard needs --lpips-pth, --alexnet-pth and --out")
        state, meta = standard(args.lpips_pth, args.alexnet_pth)
        out = args.out
    else:
        state, meta = shift_tolerant(args.pth or stlpips_pth())
        out = args.out or DEFAULT_OUT

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_file(state, out, metadata=meta)
    back = load_file(out)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {out}: {len(state)} tensors, {n} values, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
