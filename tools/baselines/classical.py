#!/usr/bin/env python3
"""Score the classical restoration methods a user would reach for, per degradation, on Restora's
own degradations (`train-native degrade`), and optionally Restora models on the same inputs.

PSNR and SSIM come from scikit-image; LPIPS from `train-native score` (the shipped shift-tolerant
AlexNet LPIPS, the code `train-native eval` uses), which also recomputes PSNR as a cross-check.
Writes a Markdown table (--out) and a JSON file next to it with every per-image figure.
See tools/baselines/README.md for the methods and their settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

try:
    import bm3d
    import cv2
    import numpy as np
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
except ImportError as err:  # pragma: no cover - environment problem, not a code path
    sys.exit(f"error: {err}. Install the requirements: pip install -r tools/baselines/requirements.txt")

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}

# Degradation parameters (fixed, so every method sees the same inputs).
GAUSSIAN_SIGMA = 25.0  # /255
POISSON_PEAK = 30.0  # photons at white
SP_RATIO = 0.05
BLUR_SIGMA = 2.0  # px
MOTION_LENGTH = 15.0  # px
MOTION_ANGLE = 30.0  # degrees: off-axis, so the anti-aliased line kernel is exercised
ALIAS_FACTOR = 0.3

# Method settings (textbook defaults, not tuned on the validation photos).
RL_ITERATIONS = 50  # scikit-image's default
UNSHARP_SIGMA = 2.0
UNSHARP_AMOUNT = 1.0
ALIAS_SMOOTH_SIGMA = 0.8
INPAINT_RADIUS = 3

DEFAULT_LPIPS = REPO_ROOT / "static" / "weights" / "lpips" / "alex_shift_tolerant.safetensors"
LPIPS_NOTE = (
    "LPIPS (lower is better): shift-tolerant AlexNet LPIPS (stlpips-pytorch 0.0.2 weights, "
    "`static/weights/lpips/`), computed by `train-native score`, the same code as `train-native eval`."
)
TASKS = ("denoise", "deblur", "dealias", "inpaint")


# ---------------------------------------------------------------------------------------------
# Image helpers


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def save_rgb(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path)


def to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    # Same rounding as the CLI's 8-bit PNG encoder: clamp to [0, 1], scale, round.
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def center_crop(image: np.ndarray, max_side: int) -> np.ndarray:
    if max_side <= 0:
        return image
    h, w = image.shape[:2]
    ch, cw = min(h, max_side), min(w, max_side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


# ---------------------------------------------------------------------------------------------
# Blur kernels. The CLI cannot export its kernels, so they are rebuilt here from
# model/src/degradations/blur.rs and checked against the CLI's impulse response at start-up.


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = math.ceil(3.0 * sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k1 = np.exp(-(x * x) / (2.0 * sigma * sigma))
    k1 /= k1.sum()
    return np.outer(k1, k1)


def motion_line_kernel(length: float, angle_degrees: float) -> np.ndarray:
    # Equally weighted sub-pixel samples along the segment, centred by their centroid and
    # bilinearly splatted (MotionKernel::Line).
    steps = math.ceil(8.0 * length)
    step = length / steps
    angle = math.radians(angle_degrees)
    t = (np.arange(steps) + 0.5) * step - 0.5 * length
    px, py = t * math.cos(angle), t * math.sin(angle)
    px, py = px - px.mean(), py - py.mean()
    radius = math.ceil(max(np.abs(px).max(), np.abs(py).max())) + 1
    size = 2 * radius + 1
    x, y = px + radius, py + radius
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(int), y0.astype(int)
    k = np.zeros((size, size))
    np.add.at(k, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(k, (y0, x0 + 1), fx * (1 - fy))
    np.add.at(k, (y0 + 1, x0), (1 - fx) * fy)
    np.add.at(k, (y0 + 1, x0 + 1), fx * fy)
    return k / k.sum()


# ---------------------------------------------------------------------------------------------
# Classical methods. Each takes the degraded uint8 RGB image and its context, returns uint8 RGB.


@dataclass
class Context:
    kernel: np.ndarray | None = None  # true blur kernel
    mask: np.ndarray | None = None  # uint8, 255 = missing
    notes: dict = field(default_factory=dict)  # per-image settings worth recording (e.g. sigma)


def bm3d_gaussian(img: np.ndarray, ctx: Context) -> np.ndarray:
    return to_uint8(bm3d.bm3d_rgb(to_float(img), sigma_psd=GAUSSIAN_SIGMA / 255.0))


def bm3d_poisson_matched(img: np.ndarray, ctx: Context) -> np.ndarray:
    # Poisson variance is x / peak per pixel; its image average is mean(x) / peak, and the noisy
    # mean is an unbiased estimate of mean(x). Peak is known, like sigma for Gaussian noise.
    x = to_float(img)
    sigma = math.sqrt(max(x.mean(), 1e-6) / POISSON_PEAK)
    ctx.notes["sigma_255"] = round(sigma * 255.0, 3)
    return to_uint8(bm3d.bm3d_rgb(x, sigma_psd=sigma))


def bm3d_poisson_anscombe(img: np.ndarray, ctx: Context) -> np.ndarray:
    # Anscombe transform makes the noise ~unit-variance Gaussian; BM3D then runs with sigma 1
    # (scaled to [0, 1]); the closed-form exact unbiased inverse (Mäkitalo & Foi 2011) avoids the
    # low-count bias of the algebraic inverse.
    counts = np.round(to_float(img) * POISSON_PEAK)  # 8-bit quantisation keeps counts exact
    scale = 2.0 * math.sqrt(POISSON_PEAK + 3.0 / 8.0)
    vst = 2.0 * np.sqrt(counts + 3.0 / 8.0) / scale
    d = np.maximum(bm3d.bm3d_rgb(vst, sigma_psd=1.0 / scale) * scale, 2.0 * math.sqrt(3.0 / 8.0))
    r = math.sqrt(1.5)
    inverse = 0.25 * d**2 + 0.25 * r / d - 11.0 / 8.0 / d**2 + 5.0 / 8.0 * r / d**3 - 0.125
    return to_uint8(inverse / POISSON_PEAK)


def median3(img: np.ndarray, ctx: Context) -> np.ndarray:
    return cv2.medianBlur(img, 3)


def richardson_lucy_true_kernel(img: np.ndarray, ctx: Context) -> np.ndarray:
    # The update of skimage.restoration.richardson_lucy (same start, 0.5, and iteration; equal to
    # it away from the borders), but with the CLI's reflected border: skimage zero-pads, and over
    # 50 iterations the border error spreads far inside (a 64 px crop lost 14 dB under motion blur).
    assert ctx.kernel is not None
    y = to_float(img)
    flipped = np.ascontiguousarray(ctx.kernel[::-1, ::-1])  # filter2D correlates; RL convolves

    def filt(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)

    x = np.full_like(y, 0.5)
    for _ in range(RL_ITERATIONS):
        blurred = filt(x, flipped)
        ratio = np.where(blurred > 1e-12, y / np.maximum(blurred, 1e-12), 0.0)
        x *= filt(ratio, ctx.kernel)  # correlation with k = convolution with the mirrored kernel
    return to_uint8(x)


def unsharp_mask(img: np.ndarray, ctx: Context) -> np.ndarray:
    x = to_float(img)
    blurred = cv2.GaussianBlur(x, (0, 0), UNSHARP_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    return to_uint8(x + UNSHARP_AMOUNT * (x - blurred))


def gaussian_smooth(img: np.ndarray, ctx: Context) -> np.ndarray:
    x = to_float(img)
    return to_uint8(cv2.GaussianBlur(x, (0, 0), ALIAS_SMOOTH_SIGMA, borderType=cv2.BORDER_REFLECT_101))


def inpaint(flag: int) -> Callable[[np.ndarray, Context], np.ndarray]:
    # Both OpenCV inpainters treat channels alike, so RGB order needs no conversion.
    def run(img: np.ndarray, ctx: Context) -> np.ndarray:
        assert ctx.mask is not None
        return cv2.inpaint(img, ctx.mask, INPAINT_RADIUS, flag)

    return run


def identity(img: np.ndarray, ctx: Context) -> np.ndarray:
    return img


@dataclass
class Degradation:
    key: str  # folder-safe name
    label: str  # for the table
    cli_args: list[str]
    task: str  # Restora task for `restore --task`
    methods: list[tuple[str, Callable[[np.ndarray, Context], np.ndarray]]]
    kernel: np.ndarray | None = None


def degradations() -> list[Degradation]:
    return [
        Degradation(
            "gaussian-noise", f"Gaussian noise σ={GAUSSIAN_SIGMA:g}",
            ["--kind", "gaussian-noise", "--sigma", f"{GAUSSIAN_SIGMA:g}"], "denoise",
            [("input", identity), (f"BM3D (true σ={GAUSSIAN_SIGMA:g})", bm3d_gaussian)],
        ),
        Degradation(
            "poisson-noise", f"Poisson noise peak={POISSON_PEAK:g}",
            ["--kind", "poisson-noise", "--peak", f"{POISSON_PEAK:g}"], "denoise",
            [
                ("input", identity),
                ("BM3D (σ = √(mean/peak))", bm3d_poisson_matched),
                ("BM3D + Anscombe VST", bm3d_poisson_anscombe),
            ],
        ),
        Degradation(
            "salt-and-pepper", f"Salt & pepper {SP_RATIO:g}",
            ["--kind", "salt-and-pepper", "--ratio", f"{SP_RATIO:g}"], "denoise",
            [("input", identity), ("median 3×3", median3)],
        ),
        Degradation(
            "gaussian-blur", f"Gaussian blur σ={BLUR_SIGMA:g}",
            ["--kind", "gaussian-blur", "--sigma", f"{BLUR_SIGMA:g}"], "deblur",
            [
                ("input", identity),
                (f"Richardson–Lucy (true kernel, {RL_ITERATIONS} it)", richardson_lucy_true_kernel),
                (f"unsharp mask (σ={UNSHARP_SIGMA:g}, amount {UNSHARP_AMOUNT:g})", unsharp_mask),
            ],
            kernel=gaussian_kernel(BLUR_SIGMA),
        ),
        Degradation(
            "motion-blur", f"Motion blur {MOTION_LENGTH:g} px at {MOTION_ANGLE:g}°",
            ["--kind", "motion-blur", "--length", f"{MOTION_LENGTH:g}", "--angle", f"{MOTION_ANGLE:g}",
             "--motion-kernel", "line"], "deblur",
            [
                ("input", identity),
                (f"Richardson–Lucy (true kernel, {RL_ITERATIONS} it)", richardson_lucy_true_kernel),
                (f"unsharp mask (σ={UNSHARP_SIGMA:g}, amount {UNSHARP_AMOUNT:g})", unsharp_mask),
            ],
            kernel=motion_line_kernel(MOTION_LENGTH, MOTION_ANGLE),
        ),
        Degradation(
            "aliasing", f"Aliasing ×{ALIAS_FACTOR:g}",
            ["--kind", "aliasing", "--factor", f"{ALIAS_FACTOR:g}"], "dealias",
            [("input", identity), (f"Gaussian smoothing σ={ALIAS_SMOOTH_SIGMA:g}", gaussian_smooth)],
        ),
        Degradation(
            "scratches", "Scratches (mask given)", ["--kind", "scratches"], "inpaint",
            [
                ("input", identity),
                (f"OpenCV inpaint Navier–Stokes (r={INPAINT_RADIUS})", inpaint(cv2.INPAINT_NS)),
                (f"OpenCV inpaint Telea (r={INPAINT_RADIUS})", inpaint(cv2.INPAINT_TELEA)),
            ],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# CLI plumbing


def run_cli(binary: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"`{binary.name} {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc


def check_kernels(binary: Path, work: Path, degs: list[Degradation]) -> None:
    """Fails loudly if the CLI's blur kernels no longer match the ones rebuilt here."""
    n = 63
    impulse = np.zeros((n, n, 3), np.uint8)
    impulse[n // 2, n // 2] = 255
    src, out = work / "impulse.png", work / "impulse-out.png"
    save_rgb(src, impulse)
    for deg in degs:
        if deg.kernel is None:
            continue
        run_cli(binary, ["degrade", *deg.cli_args, "-i", str(src), "-o", str(out)])
        got = load_rgb(out)[..., 0].astype(np.float64)
        r = deg.kernel.shape[0] // 2
        expected = np.zeros((n, n))
        expected[n // 2 - r : n // 2 + r + 1, n // 2 - r : n // 2 + r + 1] = deg.kernel * 255.0
        error = np.abs(np.round(expected) - got).max()
        if error > 1.0:
            raise RuntimeError(
                f"the {deg.key} kernel rebuilt here differs from the CLI's by {error:g} grey levels; "
                "update the kernel functions from model/src/degradations/blur.rs"
            )


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def default_binary() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    return base / "release" / "train-native"


def score(clean: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    psnr = peak_signal_noise_ratio(clean, restored, data_range=255)
    ssim = structural_similarity(clean, restored, data_range=255, channel_axis=-1)
    return min(float(psnr), 100.0), float(ssim)  # cap: identical images give inf, which JSON lacks


# ---------------------------------------------------------------------------------------------
# Main


@dataclass
class Model:
    """A Restora model scored beside the classical methods, on the degradations of `tasks`."""

    label: str
    weights: Path | None  # None: the shipped model `restore` picks for the task (models.json)
    tasks: tuple[str, ...]


def parse_weights(value: str) -> tuple[tuple[str, ...], Path]:
    """`[TASK,...=]PATH`: the tasks prefix is optional (all tasks without it)."""
    prefix, sep, rest = value.partition("=")
    tasks = tuple(t.strip() for t in prefix.split(","))
    if sep and all(t in TASKS for t in tasks):
        return tasks, Path(rest)
    return TASKS, Path(value)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "corpus" / "val",
                   help="folder of clean images, searched recursively (default: ../shared/corpus/val "
                        "relative to the repository root)")
    p.add_argument("--out", type=Path, default=Path("classical-baselines.md"),
                   help="Markdown report; the JSON with per-image figures goes next to it (.json)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N images (sorted by path)")
    p.add_argument("--bin", type=Path, default=None,
                   help="train-native binary (default: $CARGO_TARGET_DIR/release/train-native, "
                        "else target/release/train-native in the repository)")
    p.add_argument("--weights", action="append", default=[], metavar="[TASK,...=]PATH",
                   help="also score `train-native restore` with these weights on the same degraded images, "
                        "on the degradations of the given tasks (all without a prefix); repeatable")
    p.add_argument("--shipped", action="store_true",
                   help="also score the model the CLI and the page ship for each task "
                        "(static/weights/models.json; run from anywhere, the CLI is run from the repository)")
    p.add_argument("--lpips", type=Path, default=DEFAULT_LPIPS,
                   help="LPIPS weights for `train-native score` (default: the shipped ones)")
    p.add_argument("--max-side", type=int, default=512,
                   help="center-crop each clean image to at most this many pixels per side before "
                        "degrading (BM3D is slow on large images); 0 keeps full size (default: 512)")
    p.add_argument("--keep-temp", action="store_true", help="keep the intermediate images and print where")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    binary = (args.bin or default_binary()).resolve()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return fail(f"train-native binary not found or not executable: {binary}\n"
                    "build it (cargo build --release -p train-native) or pass --bin PATH")
    if not args.data.is_dir():
        return fail(f"data folder not found: {args.data}\npass --data FOLDER (clean validation images)")
    images = list_images(args.data)
    if not images:
        return fail(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {args.data}")
    if args.limit is not None:
        if args.limit < 1:
            return fail("--limit must be at least 1")
        images = images[: args.limit]
    models = []
    for value in args.weights:
        tasks, path = parse_weights(value)
        if not path.is_file():
            return fail(f"weights file not found: {path}")
        models.append(Model(f"Restora ({path.name})", path.resolve(), tasks))
    if args.shipped:
        models += [Model("Restora, shipped", None, (task,)) for task in TASKS]
    if not args.lpips.is_file():
        return fail(f"LPIPS weights not found: {args.lpips} (pass --lpips PATH)")
    if args.out.suffix.lower() != ".md":
        return fail(f"--out should be a Markdown file (.md): {args.out}")

    degs = degradations()
    work = Path(tempfile.mkdtemp(prefix="restora-baselines-"))
    started = time.time()
    try:
        check_kernels(binary, work, degs)
        per_image, outputs, notes = evaluate(args, binary, work, images, degs, models)
        add_lpips(binary, args.lpips, work / "clean", outputs, per_image)
    except RuntimeError as err:
        return fail(str(err))
    finally:
        if args.keep_temp:
            print(f"intermediates kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.time() - started

    rows = summarise(per_image, degs)
    settings = {
        "data": str(args.data.resolve()),
        "images": [str(p.relative_to(args.data)) for p in images],
        "max_side": args.max_side,
        "binary": str(binary),
        "models": [{"label": m.label, "weights": str(m.weights) if m.weights else "shipped", "tasks": m.tasks}
                   for m in models],
        "notes": notes,
        "seed": "image index (0-based, sorted order)",
        "degradations": {d.key: d.cli_args for d in degs},
        "runtime_s": round(elapsed, 1),
        "host": platform.node(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(settings, rows, args))
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps(
        {"settings": settings, "lpips": LPIPS_NOTE, "rows": rows, "per_image": per_image},
        indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} and {json_path} ({elapsed:.0f} s)", file=sys.stderr)
    return 0


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def slug(method: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-")


def evaluate(args, binary: Path, work: Path, images: list[Path], degs: list[Degradation],
             models: list[Model]) -> tuple[list[dict], dict, list[str]]:
    """Per-image rows, the folder of each (degradation, method)'s outputs, and notes for the report."""
    per_image: list[dict] = []
    outputs: dict[tuple[str, str], Path] = {}
    notes: list[str] = []
    names = [str(p.relative_to(args.data)) for p in images]
    cleans = []
    for index, path in enumerate(images):
        clean = center_crop(load_rgb(path), args.max_side)
        # Written as 8-bit RGB so the CLI and the scores see exactly the same reference.
        clean_path = work / "clean" / f"{index:04d}.png"
        clean_path.parent.mkdir(parents=True, exist_ok=True)
        save_rgb(clean_path, clean)
        cleans.append((clean_path, clean))

    for deg in degs:
        degraded_dir, mask_dir = work / deg.key / "degraded", work / deg.key / "mask"
        degraded_dir.mkdir(parents=True)
        for index, (clean_path, clean) in enumerate(cleans):
            out = degraded_dir / f"{index:04d}.png"
            extra = []
            if deg.task == "inpaint":
                mask_dir.mkdir(exist_ok=True)
                extra = ["--mask-out", str(mask_dir / f"{index:04d}.png")]
            # Seed = image index: reproducible, and different images get different noise.
            run_cli(binary, ["degrade", *deg.cli_args, "--seed", str(index), "-i", str(clean_path),
                             "-o", str(out), *extra])
            degraded = load_rgb(out)
            ctx = Context(kernel=deg.kernel)
            if deg.task == "inpaint":
                with Image.open(mask_dir / f"{index:04d}.png") as m:
                    ctx.mask = np.where(np.asarray(m.convert("L")) > 127, 255, 0).astype(np.uint8)
            for method, fn in deg.methods:
                t0 = time.time()
                restored = fn(degraded, ctx)
                seconds = time.time() - t0
                method_dir = outputs.setdefault((deg.key, method), work / deg.key / slug(method))
                method_dir.mkdir(exist_ok=True)
                save_rgb(method_dir / f"{index:04d}.png", restored)
                psnr, ssim = score(clean, restored)
                per_image.append({"degradation": deg.key, "method": method, "image": names[index],
                                  "seed": index, "psnr": round(psnr, 4), "ssim": round(ssim, 5),
                                  "seconds": round(seconds, 2), **ctx.notes})
                ctx.notes = {}
                print(f"[{deg.key} {index + 1}/{len(cleans)}] {method}: {psnr:.2f} dB, SSIM {ssim:.4f}, "
                      f"{seconds:.1f} s", file=sys.stderr)
        for model in models:
            if deg.task in model.tasks:
                rows, note = restore_with_model(binary, model, deg, degraded_dir, mask_dir, cleans, names, outputs)
                per_image += rows
                if note and note not in notes:
                    notes.append(note)
    return per_image, outputs, notes


def restore_with_model(binary, model: Model, deg: Degradation, degraded_dir, mask_dir, cleans, names,
                       outputs) -> tuple[list[dict], str | None]:
    # One folder call per degradation, so the weights load once; the time per image includes it.
    out_dir = degraded_dir.parent / f"restora-{len(outputs)}"
    cmd = ["restore", "--task", deg.task, "-i", str(degraded_dir), "-o", str(out_dir)]
    if model.weights is not None:
        cmd += ["--weights", str(model.weights)]
    if deg.task == "inpaint":
        cmd += ["--mask", str(mask_dir)]
    t0 = time.time()
    try:
        proc = run_cli(binary, cmd, cwd=REPO_ROOT)  # from the repository: `restore` finds models.json
    except RuntimeError as err:
        if model.weights is None and "ships no model" in str(err):
            return [], f"No shipped model for {deg.task}: {str(err).splitlines()[-1].removeprefix('error: ')}"
        raise
    seconds = (time.time() - t0) / len(cleans)
    label = model.label
    if model.weights is None:
        # `restore` names the model it picked: "note: using the shipped [preview ]model NAME (FILE)".
        picked = re.search(r"using the shipped (?:preview )?model .* \(([^()]+)\)", proc.stderr)
        label = f"{model.label} ({picked.group(1) if picked else 'unnamed'})"
    outputs[(deg.key, label)] = out_dir
    results = []
    for index, (_, clean) in enumerate(cleans):
        restored = load_rgb(out_dir / f"{index:04d}.png")
        psnr, ssim = score(clean, restored)
        results.append({"degradation": deg.key, "method": label, "image": names[index],
                        "seed": index, "psnr": round(psnr, 4), "ssim": round(ssim, 5),
                        "seconds": round(seconds, 2)})
        print(f"[{deg.key} {index + 1}/{len(cleans)}] {label}: {psnr:.2f} dB, SSIM {ssim:.4f}", file=sys.stderr)
    return results, None


def add_lpips(binary: Path, lpips: Path, clean_dir: Path, outputs: dict, per_image: list[dict]) -> None:
    """LPIPS of every output from `train-native score`; its PSNR must agree with scikit-image's."""
    for (deg, method), folder in outputs.items():
        report = folder.parent / f"{folder.name}-scores.json"
        run_cli(binary, ["score", "--reference", str(clean_dir), "--restored", str(folder),
                         "--lpips", str(lpips), "--report", str(report)])
        scored = {Path(i["image"]).stem: i for i in json.loads(report.read_text())["images"]}
        for row in per_image:
            if row["degradation"] != deg or row["method"] != method:
                continue
            theirs = scored[f"{row['seed']:04d}"]
            if abs(theirs["psnr"] - row["psnr"]) > 0.01:
                raise RuntimeError(f"{deg} / {method} / {row['image']}: PSNR {row['psnr']:.4f} here but "
                                   f"{theirs['psnr']:.4f} from `train-native score`: the metrics disagree")
            row["lpips"] = round(theirs["lpips"], 5)
        print(f"[{deg}] {method}: LPIPS scored", file=sys.stderr)


def summarise(per_image: list[dict], degs: list[Degradation]) -> list[dict]:
    rows = []
    for deg in degs:
        methods = list(dict.fromkeys(r["method"] for r in per_image if r["degradation"] == deg.key))
        input_psnr = None
        for method in methods:
            hits = [r for r in per_image if r["degradation"] == deg.key and r["method"] == method]
            psnr = float(np.mean([r["psnr"] for r in hits]))
            if method == "input":
                input_psnr = psnr
            lpips = [r["lpips"] for r in hits if r.get("lpips") is not None]
            rows.append({
                "degradation": deg.key, "label": deg.label, "method": method,
                "psnr": round(psnr, 3),
                "delta_psnr": None if input_psnr is None else round(psnr - input_psnr, 3),
                "ssim": round(float(np.mean([r["ssim"] for r in hits])), 4),
                "lpips": round(float(np.mean(lpips)), 4) if len(lpips) == len(hits) else None,
                "images": len(hits),
                "seconds_per_image": round(float(np.mean([r["seconds"] for r in hits])), 2),
            })
    return rows


def markdown(settings: dict, rows: list[dict], args: argparse.Namespace) -> str:
    n = len(settings["images"])
    crop = (f"each center-cropped to at most {args.max_side}×{args.max_side} px before degrading"
            if args.max_side > 0 else "full size")
    lines = [
        "# Classical baselines on Restora's degradations",
        "",
        f"- Data: `{settings['data']}`, {n} image{'s' if n != 1 else ''} ({crop}).",
        f"- Degradations: `{Path(settings['binary']).name} degrade`, seed = image index.",
        "- Metrics: PSNR (dB) and SSIM on 8-bit RGB (scikit-image, data_range 255, 7×7 window, "
        "no border crop); Δ = PSNR gain over the degraded input.",
        f"- {LPIPS_NOTE}",
        "- Time: wall seconds per image on this machine"
        + ("; Restora rows include loading the weights." if settings["models"] else "."),
        *[f"- {note}" for note in settings["notes"]],
        f"- Total runtime: {settings['runtime_s']:.0f} s.",
        "",
        "| Degradation | Method | PSNR | Δ PSNR | SSIM | LPIPS | Images | s / image |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        delta = "" if row["method"] == "input" else f"{row['delta_psnr']:+.2f}"
        lpips = "n/a" if row["lpips"] is None else f"{row['lpips']:.4f}"
        lines.append(f"| {row['label']} | {row['method']} | {row['psnr']:.2f} | {delta} | {row['ssim']:.4f} "
                     f"| {lpips} | {row['images']} | {row['seconds_per_image']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
