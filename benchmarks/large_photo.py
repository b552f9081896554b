"""Peak memory of `bokeh-render` on one large photo: a 48-megapixel JPEG by default.

Why a whole `bokeh-render` in a fresh process, and not the model alone: on a large photo
the photo's own buffers (the decoder's, the render's, the blend's) add to the model's, and
a phone app pays for all of them. The photo is a generated scene (smooth gradients, noise
and two sharp discs), written as a quality-95 JPEG like a camera's; the renderer's own
`--json` reports the process's peak RSS and time.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

LARGE_PHOTO_SIZE = (6000, 8000)        # height, width: 48 MP, a phone camera's full frame
TIMEOUT_S = 900


def write_large_photo(path: Path, size: tuple[int, int] = LARGE_PHOTO_SIZE, seed: int = 0) -> Path:
    """A deterministic `size` (H, W) RGB scene as a JPEG at `path`, built in bands to stay small."""
    import cv2
    h, w = size
    rng = np.random.default_rng(seed)
    pixels = np.empty((h, w, 3), np.uint8)
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    for top in range(0, h, 512):
        rows = min(512, h - top)
        y = np.linspace(top / h, (top + rows) / h, rows, endpoint=False, dtype=np.float32)[:, None]
        band = np.stack([0.5 + 0.4 * np.sin(12 * x + 3 * y), 0.4 + 0.3 * np.cos(7 * y - 5 * x),
                         0.3 + 0.6 * y * x], axis=-1)
        band += rng.normal(0.0, 0.03, band.shape).astype(np.float32)
        pixels[top:top + rows] = np.clip(band * 255.0, 0, 255).astype(np.uint8)
    for cx, cy, r in ((0.3, 0.6, 0.15), (0.7, 0.4, 0.1)):       # foreground discs, sharp edges
        cv2.circle(pixels, (int(cx * w), int(cy * h)), int(r * min(h, w)), (230, 200, 40), -1)
    if not cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"cannot write {path}")
    return path


def measure_large_photo(model: Path, work: Path, threads: int,
                        size: tuple[int, int] = LARGE_PHOTO_SIZE) -> dict:
    """Run `bokeh-render` (backend litert) on a generated `size` JPEG; its time and peak RSS."""
    photo = write_large_photo(work / "large_photo.jpg", size)
    command = [sys.executable, "-m", "bokehlite.runtime.cli", str(photo), "-o", str(work / "large_out"),
               "-m", str(model), "--backend", "litert", "--threads", str(threads), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"bokeh-render on the {size[0]}x{size[1]} (HxW) photo exited {done.returncode}: {last}")
    report = json.loads(done.stdout)
    return {"size": list(size), "megapixels": size[0] * size[1] / 1e6, "backend": report["backend"],
            "threads": threads, "seconds": report["files"][0]["seconds"],
            "peak_rss_mb": report["peak_rss_mb"],
            "method": "bokeh-render --backend litert --json in a fresh process, one quality-95 JPEG"}
