"""What the models are timed on: a generated EBB!-sized scene, or the user's photos.

Either way the result is an (N, H, W, 3) float32 RGB stack in [0, 1] at the model's
input size, saved once and loaded by every measuring process, so each backend sees
the very same pixels. Resizing happens here, outside any timed window.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_IMAGES = 4   # every measuring process holds the whole stack; keep its share of RSS small


def image_files(folder: Path) -> list[Path]:
    """The first MAX_IMAGES image files of `folder`, by name; ValueError if there are none."""
    if not folder.is_dir():
        raise ValueError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--images {folder}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files")
    return files[:MAX_IMAGES]


def read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1], resized to `size` (area down, bilinear up)."""
    import cv2
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"cannot read image {path}")
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0 if raw.dtype == np.uint8 else 1.0
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    elif raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2BGR)
    rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB).astype(np.float32) / scale
    h, w = size
    shrink = h * w < rgb.shape[0] * rgb.shape[1]
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(rgb, 0.0, 1.0)


def make_inputs(size: tuple[int, int], images: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """(stack (N, H, W, 3), names). Without `images`: one generated scene (seed 0)."""
    if images is None:
        from ..model.synthetic import test_scene
        return test_scene(*size, seed=0)[None], ["generated scene (seed 0)"]
    files = image_files(images)
    return np.stack([read_image(p, size) for p in files]), [p.name for p in files]
