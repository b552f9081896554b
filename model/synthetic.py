"""Deterministic test scenes: edges, textures and saturated highlights.

NumPy only, so export checks, benchmarks and tests share one generator without
pulling in torch or an image library.
"""
from __future__ import annotations

import numpy as np


def test_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] with a gradient, a checkerboard, noise texture,
    sharp-edged shapes and a few saturated point highlights."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    yn, xn = y / max(height - 1, 1), x / max(width - 1, 1)
    img = np.stack([0.2 + 0.5 * xn, 0.3 + 0.4 * yn, 0.6 - 0.3 * xn * yn], axis=-1)
    cell = max(2, min(height, width) // 12)
    checker = ((x // cell + y // cell) % 2).astype(np.float32)
    img[..., 1] += 0.15 * checker - 0.075
    img += 0.05 * rng.standard_normal((height, width, 3)).astype(np.float32)
    for _ in range(3):   # sharp-edged discs and boxes
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        size = rng.uniform(0.05, 0.2) * min(height, width)
        colour = rng.uniform(0, 0.9, size=3).astype(np.float32)
        inside = ((y - cy) ** 2 + (x - cx) ** 2 < size ** 2) if rng.random() < 0.5 else \
            (np.abs(y - cy) < size) & (np.abs(x - cx) < size / 2)
        img[inside] = colour
    for _ in range(max(3, height * width // 4096)):   # saturated highlights
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        img[max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = 1.0
    return np.clip(img, 0.0, 1.0)


def defocus_ramp(height: int, width: int) -> np.ndarray:
    """(H, W) float32 defocus in [0, 1], growing left to right: every layer appears."""
    return np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))


def plane_scene(height: int, width: int, disparities=(0.2, 0.5, 0.8), seed: int = 0,
                highlights: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Textured fronto-parallel planes side by side, one per disparity, each with point
    highlights. Returns (image (H, W, 3) float32 in [0, 1], disparity (H, W) float32)."""
    rng = np.random.default_rng(seed)
    n = len(disparities)
    bands = np.minimum((np.arange(width) * n) // width, n - 1)
    disparity = np.tile(np.asarray(disparities, np.float32)[bands], (height, 1))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = 0.5 + 0.2 * np.sin(x * 0.9) * np.sin(y * 0.7) + 0.05 * rng.standard_normal((height, width))
    tint = rng.uniform(0.5, 1.0, size=(n, 3)).astype(np.float32)
    image = (texture[..., None] * tint[bands][None, :, :] * 0.8).astype(np.float32)
    if highlights:
        for band in range(n):
            x0 = int((band + 0.5) * width / n)
            for yy in (height // 4, 3 * height // 4):
                image[yy, x0] = 1.0
    return np.clip(image, 0.0, 1.0), disparity


def street_scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A README-style scene: a textured subject in front of a far wall dotted with lights
    and a mid-distance floor. Returns (image (H, W, 3) in [0, 1], disparity (H, W))."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[:] = [0.10, 0.12, 0.22]                                  # far wall, dusk blue
    image += 0.04 * np.sin(x * 0.35)[..., None] * np.sin(y * 0.3)[..., None]
    disparity = np.full((height, width), 0.1, np.float32)
    floor = y > 0.62 * height                                      # floor gets nearer downwards
    disparity[floor] = 0.1 + 0.6 * (y[floor] / height - 0.62) / 0.38
    image[floor] = np.stack([0.30 + 0.1 * ((x[floor] // 12 + y[floor] // 12) % 2),
                             0.25 * np.ones(floor.sum()), 0.20 * np.ones(floor.sum())], axis=-1)
    for _ in range(40):                                            # lights on the far wall
        cy, cx = rng.integers(2, int(0.6 * height)), rng.integers(2, width - 2)
        image[cy - 1:cy + 2, cx - 1:cx + 2] = rng.choice([[1, 0.9, 0.6], [1, 1, 1], [0.7, 0.9, 1]])
    subject = ((x - 0.5 * width) / (0.16 * width)) ** 2 + ((y - 0.55 * height) / (0.32 * height)) ** 2 < 1
    stripes = 0.5 + 0.4 * np.sign(np.sin(x * 0.8 + y * 0.4))
    image[subject] = np.stack([0.85 * stripes, 0.45 * stripes, 0.25 * stripes], axis=-1)[subject]
    disparity[subject] = 0.6
    return np.clip(image, 0.0, 1.0), disparity
