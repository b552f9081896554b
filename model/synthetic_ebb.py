"""A synthetic EBB! set: all-in-focus scenes with known depth, paired with their bokeh.

EBB!'s `Training/` layout (`original/N.jpg` + `bokeh/N.jpg`, paired by stem), plus
`disparity/N.png` (16-bit, larger = nearer), which the trainer ignores. The bokeh
comes from our depth-guided renderer (`DepthRenderNet`, paper Eq. 1-2 and 4-8),
focused on the main subject, so the target is exactly what a defocus network can learn:
textured subjects stay sharp, the far wall and its lights melt into discs, and the
floor blurs more the further it is from the subject.

    python -m bokehlite.model.synthetic_ebb OUT_DIR --count 64 --size 256x384
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..contract import parse_size
from ..interrupt import run_cli
from ..usage import OneLineParser

# Blur radius, in photo pixels per unit of |disparity - focus|, as a share of the
# photo's short side: the far wall (|d - d_f| ~ 0.5) gets a radius of ~6% of it,
# which stage 1's kernels (up to 35 px at 1/4) cover at any photo size.
APERTURE_SHARE = 0.12
JPEG_QUALITY = 95


def ebb_scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """One random scene: (image (H, W, 3) float32 in [0, 1], disparity (H, W) float32
    in [0, 1], larger = nearer, focus disparity: that of the main subject)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    unit = min(height, width) / 256.0            # feature sizes scale with the photo

    # Far wall: a dim colour with soft blotches, dotted with lights.
    far = float(rng.uniform(0.03, 0.15))
    wall = rng.uniform(0.05, 0.35, size=3).astype(np.float32)
    blotch = np.sin(x / (23 * unit) + rng.uniform(0, 6)) * np.sin(y / (17 * unit) + rng.uniform(0, 6))
    image = wall * (1.0 + 0.3 * blotch)[..., None]
    disparity = np.full((height, width), far, np.float32)

    # Floor: from the horizon down, nearer towards the bottom, tiled.
    horizon = rng.uniform(0.55, 0.8) * height
    floor = y >= horizon
    t = (y - horizon) / max(height - horizon, 1.0)
    disparity[floor] = (far + (rng.uniform(0.45, 0.7) - far) * t)[floor]
    tile = 14 * unit
    checker = ((x // tile + y // tile) % 2).astype(np.float32)
    floor_colour = rng.uniform(0.25, 0.6, size=3).astype(np.float32)
    image[floor] = (floor_colour * (0.75 + 0.35 * checker)[..., None])[floor]

    for _ in range(int(rng.integers(6, 16))):    # lights on the wall, above the horizon
        cy, cx = rng.uniform(2, horizon - 2), rng.uniform(2, width - 2)
        r = max(1.0, rng.uniform(0.8, 2.0) * unit)
        spot = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        image[spot] = rng.choice([[1.0, 0.92, 0.7], [1.0, 1.0, 1.0], [0.75, 0.9, 1.0], [1.0, 0.6, 0.4]])

    # Subjects, nearest last: striped, saturated, sharp-edged. The first is in focus.
    focus = float(rng.uniform(0.5, 0.75))
    subjects = [focus] + ([float(rng.uniform(0.2, 0.95))] if rng.random() < 0.5 else [])
    for d in sorted(subjects):
        cy, cx = rng.uniform(0.35, 0.7) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.18, 0.35) * height, rng.uniform(0.08, 0.18) * width
        if rng.random() < 0.5:
            inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        else:
            inside = (np.abs(y - cy) < ry) & (np.abs(x - cx) < rx)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4, 9) * unit
        stripes = 0.55 + 0.4 * np.sign(np.sin((x * np.cos(angle) + y * np.sin(angle)) / period * 2 * np.pi))
        colour = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        image[inside] = (colour * stripes[..., None])[inside]
        disparity[inside] = d
    return np.clip(image, 0.0, 1.0).astype(np.float32), disparity, focus


def render_bokeh(image: np.ndarray, disparity: np.ndarray, focus: float, aperture: float) -> np.ndarray:
    """The depth-guided renderer's bokeh of one scene, (H, W, 3) float32 in [0, 1]."""
    import torch

    net = _renderer(aperture * float(np.abs(disparity - focus).max()))
    with torch.no_grad():
        out = net(torch.from_numpy(image).permute(2, 0, 1)[None],
                  torch.from_numpy(disparity)[None, None],
                  torch.tensor([[focus]]), torch.tensor([[aperture]]))["bokeh"]
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


_RENDERERS: dict = {}


def _renderer(radius: float):
    """A renderer with stage 3's kernels up to the first that covers `radius`, the scene's
    largest blur radius: larger kernels would cost time and never be used."""
    from .config import STAGE3_KERNELS
    from .depth_render import DepthRenderNet

    sizes = tuple(k for k in STAGE3_KERNELS if k // 2 < radius)
    sizes += tuple(k for k in STAGE3_KERNELS if k // 2 >= radius)[:1]
    if sizes not in _RENDERERS:
        _RENDERERS[sizes] = DepthRenderNet(sizes, render_mode="pyramid").eval()
    return _RENDERERS[sizes]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_synthetic_ebb(out_dir: str | Path, count: int, size: tuple[int, int] = (256, 384),
                        seed: int = 0, progress=None) -> Path:
    """Write `count` pairs 0..count-1 into `out_dir` in the EBB! layout; returns `out_dir`."""
    import cv2

    from ..files import atomic_write

    out = Path(out_dir)
    for sub in ("original", "bokeh", "disparity"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    height, width = size
    aperture = APERTURE_SHARE * min(height, width)
    for i in range(count):
        image, disparity, focus = ebb_scene(height, width, seed * 100003 + i)
        bokeh = render_bokeh(image, disparity, focus, aperture)
        for sub, rgb in (("original", image), ("bokeh", bokeh)):
            ok, data = cv2.imencode(".jpg", _to_uint8(rgb)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            atomic_write(out / sub / f"{i}.jpg", data.tobytes())
        ok, data = cv2.imencode(".png", np.round(disparity * 65535).astype(np.uint16))
        atomic_write(out / "disparity" / f"{i}.png", data.tobytes())
        if progress:
            progress(i + 1, count)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m bokehlite.model.synthetic_ebb",
                      description="Write a synthetic EBB!-layout set (original/, bokeh/, "
                                  "disparity/) rendered by the depth-guided renderer.")
    p.add_argument("out", help="output folder")
    p.add_argument("--count", type=int, default=64, help="number of pairs (default: 64)")
    p.add_argument("--size", type=_size, default=(256, 384), metavar="HxW",
                   help="photo size (default: 256x384; EBB! photos are about 1024x1536)")
    p.add_argument("--seed", type=int, default=0, help="scene seed (default: 0)")
    return p


def _size(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1:
        print("synthetic_ebb: error: --count must be at least 1", file=sys.stderr)
        return 2
    from tqdm import tqdm        # train-bokeh's progress bar too; silent when stderr is not a terminal
    with tqdm(total=args.count, unit="pair", file=sys.stderr, disable=None) as bar:
        write_synthetic_ebb(args.out, args.count, args.size, args.seed,
                            progress=lambda i, n: bar.update(i - bar.n))
    print(f"wrote {args.count} pairs to {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli("synthetic_ebb", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
