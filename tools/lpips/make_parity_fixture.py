#!/usr/bin/env python3
"""Write model/tests/fixtures/lpips_parity.safetensors: seeded image pairs with the distances
stlpips-pytorch 0.0.2 computes for them, for model/tests/lpips_parity.rs.

Keys (all f32):
    pair{i}.a, pair{i}.b   [1, 3, H, W]  images in [0, 1]
    pair{i}.st             [1]           LPIPS(net='alex', variant='shift_tolerant')(a, b, normalize=True)
    pair{i}.st_layers      [5]           its five per-layer terms (they sum to pair{i}.st)
    pair{i}.std            [1]           standard AlexNet LPIPS v0.1 structure (stlpips' 'vanilla'
                                         AlexNet = torchvision's, plain max-pool) with the synthetic
                                         weights below, so the standard path is checked without
                                         shipping ImageNet weights
The metadata `pairs` says what each pair is.

Synthetic weights (bit-exact in Rust, see `synthetic_weights` in lpips_parity.rs): for the
k-th key of STANDARD_KEYS, value j is u = (splitmix64(k << 32 | j) >> 40) / 2^23 - 1 in [-1, 1)
(exact in f32), times sqrt(3 / fan_in) for conv weights, 0.1 for biases, |u| for the linear
heads; the scaling layer keeps LPIPS' constants.

Usage: python make_parity_fixture.py   (needs torch, torchvision, ipython, torchsummary,
safetensors, stlpips-pytorch==0.0.2; runs on CPU in a few seconds)
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from stlpips_pytorch import stlpips

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "model", "tests", "fixtures", "lpips_parity.safetensors")

STANDARD_KEYS = [
    ("net.slice1.0.weight", (64, 3, 11, 11)),
    ("net.slice1.0.bias", (64,)),
    ("net.slice2.3.weight", (192, 64, 5, 5)),
    ("net.slice2.3.bias", (192,)),
    ("net.slice3.6.weight", (384, 192, 3, 3)),
    ("net.slice3.6.bias", (384,)),
    ("net.slice4.8.weight", (256, 384, 3, 3)),
    ("net.slice4.8.bias", (256,)),
    ("net.slice5.10.weight", (256, 256, 3, 3)),
    ("net.slice5.10.bias", (256,)),
    ("lin0.model.1.weight", (1, 64, 1, 1)),
    ("lin1.model.1.weight", (1, 192, 1, 1)),
    ("lin2.model.1.weight", (1, 384, 1, 1)),
    ("lin3.model.1.weight", (1, 256, 1, 1)),
    ("lin4.model.1.weight", (1, 256, 1, 1)),
]


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def synthetic_weights() -> dict:
    state = {}
    with np.errstate(over="ignore"):
        for k, (key, shape) in enumerate(STANDARD_KEYS):
            n = int(np.prod(shape))
            j = np.arange(n, dtype=np.uint64)
            bits = splitmix64((np.uint64(k) << np.uint64(32)) | j) >> np.uint64(40)
            u = bits.astype(np.float32) / np.float32(2**23) - np.float32(1.0)
            if key.startswith("lin"):
                v = np.abs(u)
            elif key.endswith("bias"):
                v = u * np.float32(0.1)
            else:
                fan_in = n // shape[0]
                v = u * np.float32(np.sqrt(3.0 / fan_in))
            state[key] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    return state


def smooth_field(g: torch.Generator, h: int, w: int, cells: int) -> torch.Tensor:
    coarse = torch.rand(1, 3, cells, cells, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def photo_like(g: torch.Generator, h: int, w: int) -> torch.Tensor:
    """A seeded image with smooth shading, a few hard-edged shapes and fine texture."""
    img = 0.6 * smooth_field(g, h, w, 4) + 0.25 * smooth_field(g, h, w, 12)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for _ in range(4):
        cy, cx = torch.randint(0, h, (1,), generator=g).item(), torch.randint(0, w, (1,), generator=g).item()
        r = torch.randint(4, max(5, min(h, w) // 3), (1,), generator=g).item()
        colour = torch.rand(3, 1, 1, generator=g)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).float()
        img = img * (1 - disc) + colour * disc
    img = img + 0.03 * torch.randn(1, 3, h, w, generator=g)
    return img.clamp(0, 1)


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    k2 = (k[:, None] * k[None, :]).expand(3, 1, -1, -1)
    return F.conv2d(F.pad(img, (r, r, r, r), mode="reflect"), k2, groups=3)


def pairs() -> list:
    g = torch.Generator().manual_seed(20221023)
    out = []
    a = photo_like(g, 64, 64)
    out.append(("64x64 clean vs Gaussian noise sigma 0.1", a, (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)))
    a = photo_like(g, 64, 64)
    out.append(("64x64 clean vs Gaussian blur sigma 1.5", a, gaussian_blur(a, 1.5)))
    big = photo_like(g, 65, 65)
    out.append(("64x64 crop vs the same scene shifted by 1 px right", big[:, :, :64, :64], big[:, :, :64, 1:65].contiguous()))
    a = photo_like(g, 48, 80)
    out.append(("48x80 (HxW) clean vs noise sigma 0.05 + blur sigma 0.8", a, gaussian_blur((a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1), 0.8)))
    big = photo_like(g, 49, 80)
    out.append(("48x80 (HxW) crop vs the same scene shifted by 1 px down", big[:, :, :48, :], big[:, :, 1:49, :].contiguous()))
    return out


def per_layer(model, a, b):
    """The distance and its five layer terms. stlpips' `retPerLayer` returns the first term
    after adding the others into it in place (`val = res[0]; val += res[l]`), so the terms are
    recorded as they leave `spatial_average` instead."""
    terms = []
    original = stlpips.spatial_average

    def recording(in_tens, keepdim=True):
        out = original(in_tens, keepdim=keepdim)
        terms.append(out.clone())
        return out

    stlpips.spatial_average = recording
    try:
        d = model(a, b, normalize=True)
    finally:
        stlpips.spatial_average = original
    assert len(terms) == 5
    return d, terms


def main() -> None:
    torch.set_grad_enabled(False)
    st = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    std = stlpips.LPIPS(net="alex", variant="vanilla", pretrained=False, verbose=False).eval()
    weights = synthetic_weights()
    missing, unexpected = std.load_state_dict(weights, strict=False)
    assert not unexpected and all(m.startswith(("lins.", "scaling_layer.")) for m in missing), (missing, unexpected)

    tensors, descriptions = {}, []
    for i, (what, a, b) in enumerate(pairs()):
        a, b = a.float().contiguous(), b.float().contiguous()
        d_st, layers = per_layer(st, a, b)
        d_std = std(a, b, normalize=True)
        tensors[f"pair{i}.a"] = a
        tensors[f"pair{i}.b"] = b
        tensors[f"pair{i}.st"] = d_st.reshape(1)
        tensors[f"pair{i}.st_layers"] = torch.cat([l.reshape(1) for l in layers])
        tensors[f"pair{i}.std"] = d_std.reshape(1)
        descriptions.append(what)
        print(f"pair{i}: {what}: st {d_st.item():.6f}  std(synthetic) {d_std.item():.6f}")

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata={"pairs": json.dumps(descriptions), "source": "stlpips-pytorch 0.0.2"})
    os.chmod(OUT, 0o644)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
