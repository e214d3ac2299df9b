#!/usr/bin/env python3
"""Check a PyTorch checkpoint written by Restora (`restora_model::pth::to_pth`) against a
safetensors file holding the same tensors.

PyTorch itself loads the checkpoint, with `torch.load(path, weights_only=True)` (the restricted
unpickler: only tensors, storages and plain containers allowed). The state dict is the top-level
`params` entry when there is one (official Restormer checkpoints), else the loaded object.

Checked: the state dict is an OrderedDict; it has exactly the safetensors file's keys (in the
order its `restora.key_order` metadata gives, when present); every tensor is float32, contiguous,
on the CPU, without grad, of the same shape and bit for bit the same values (NaN included).

Usage:

    python tools/pth/check_pth.py OURS.pth REFERENCE.safetensors

Needs `torch` and `safetensors`. Exits 1 on the first kind of mismatch found (all are listed).
"""

import argparse
import collections
import sys

import torch
from safetensors import safe_open


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pth", help="checkpoint written by Restora")
    parser.add_argument("safetensors", help="the same tensors as safetensors")
    args = parser.parse_args()

    print(f"torch {torch.__version__}")
    loaded = torch.load(args.pth, weights_only=True, map_location="cpu")
    if isinstance(loaded, dict) and list(loaded) == ["params"]:
        print("top-level key: 'params'")
        state = loaded["params"]
    else:
        print("top-level key: none (bare state dict)")
        state = loaded

    problems = []
    if not isinstance(state, collections.OrderedDict):
        problems.append(f"state dict is a {type(state).__name__}, not an OrderedDict")

    with safe_open(args.safetensors, framework="pt") as reference:
        metadata = reference.metadata() or {}
        expected = {key: reference.get_tensor(key) for key in reference.keys()}

    ours, theirs = set(state), set(expected)
    for key in sorted(theirs - ours):
        problems.append(f"missing: {key!r}")
    for key in sorted(ours - theirs):
        problems.append(f"unexpected: {key!r}")

    order = metadata.get("restora.key_order")
    if order is not None and list(state) != order.split(","):
        problems.append("keys are not in the order of the safetensors metadata 'restora.key_order'")

    values = 0
    for key in sorted(ours & theirs):
        tensor, reference = state[key], expected[key].to(torch.float32)
        if not isinstance(tensor, torch.Tensor):
            problems.append(f"{key!r}: a {type(tensor).__name__}, not a tensor")
            continue
        if tensor.dtype != torch.float32:
            problems.append(f"{key!r}: dtype {tensor.dtype}")
            continue
        if tensor.device.type != "cpu" or tensor.requires_grad or not tensor.is_contiguous():
            problems.append(f"{key!r}: device {tensor.device}, requires_grad {tensor.requires_grad}, "
                            f"contiguous {tensor.is_contiguous()}")
        if tensor.shape != reference.shape:
            problems.append(f"{key!r}: shape {list(tensor.shape)}, expected {list(reference.shape)}")
            continue
        if not torch.equal(tensor.contiguous().view(torch.int32), reference.contiguous().view(torch.int32)):
            differing = (tensor.view(torch.int32) != reference.view(torch.int32)).sum().item()
            problems.append(f"{key!r}: {differing} of {tensor.numel()} values differ")
        values += tensor.numel()

    for problem in problems:
        print(f"MISMATCH {problem}")
    print(f"{len(state)} tensors, {values} values compared against {len(expected)} in {args.safetensors}: "
          + ("MISMATCH" if problems else "all identical"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
