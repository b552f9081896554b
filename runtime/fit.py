"""Fit any photo into the model's fixed input, and map the model's outputs back onto it.

We letterbox: scale the photo to fit inside H x W keeping its aspect ratio, centre it,
and fill the rest by mirroring the photo's edges. Stretching instead would make the
network's round bokeh disks come back as ellipses on a portrait photo, and mirroring
gives the network plausible context near the borders where a flat fill would not.
Outputs are sampled back from the photo's box only (bilinear, pixel centres aligned),
so nothing of the padding reaches the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Tile size for sampling outputs at full resolution: bounds memory on large photos and
# keeps cv2.remap under its 32767-pixel limit per side.
TILE_ROWS = 32    # an 8000-wide band of float32 temporaries is 23 MB at 32 rows, 90 MB at 128
TILE_COLS = 8192


@dataclass(frozen=True)
class Letterbox:
    """Where a photo of `photo_size` sits inside the model input of `model_size` (both (H, W))."""

    photo_size: tuple[int, int]
    model_size: tuple[int, int]
    top: int
    left: int
    height: int       # of the photo inside the model input
    width: int

    @classmethod
    def fit(cls, photo_size: tuple[int, int], model_size: tuple[int, int]) -> "Letterbox":
        (h0, w0), (mh, mw) = photo_size, model_size
        scale = min(mh / h0, mw / w0)
        height = min(mh, max(1, round(h0 * scale)))
        width = min(mw, max(1, round(w0 * scale)))
        return cls(photo_size, model_size, (mh - height) // 2, (mw - width) // 2, height, width)

    @property
    def scale(self) -> float:
        """Model pixels per photo pixel: lengths in the photo (a blur radius) times this
        are lengths at the model's resolution."""
        (h0, w0), (mh, mw) = self.photo_size, self.model_size
        return min(mh / h0, mw / w0)

    def to_model(self, rgb: np.ndarray, scale: float) -> np.ndarray:
        """(h0, w0, 3) or grey (h0, w0) photo of any dtype, `scale` its white level ->
        (1, H, W, 3) float32 RGB in [0, 1]. Resizing first keeps the float copy small."""
        small = self._fit(rgb).astype(np.float32) * np.float32(1.0 / scale)
        if small.ndim == 2:
            small = np.repeat(small[:, :, None], 3, axis=2)
        return np.clip(small, 0.0, 1.0)[None]

    def map_to_model(self, values: np.ndarray) -> np.ndarray:
        """(h0, w0) float map in [0, 1] aligned with the photo (a disparity map) ->
        (1, H, W, 1) float32, resized, centred and mirrored exactly as the photo is."""
        return np.clip(self._fit(values.astype(np.float32, copy=False)), 0.0, 1.0)[None, :, :, None]

    def _fit(self, pixels: np.ndarray) -> np.ndarray:
        shrinking = self.height <= pixels.shape[0] and self.width <= pixels.shape[1]
        small = cv2.resize(np.ascontiguousarray(pixels), (self.width, self.height),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        mh, mw = self.model_size
        return cv2.copyMakeBorder(small, self.top, mh - self.height - self.top, self.left,
                                  mw - self.width - self.left, cv2.BORDER_REFLECT_101)

    def tiles(self):
        """(rows, cols) slices covering the photo, TILE_ROWS x TILE_COLS at most."""
        h0, w0 = self.photo_size
        for r in range(0, h0, TILE_ROWS):
            for c in range(0, w0, TILE_COLS):
                yield slice(r, min(r + TILE_ROWS, h0)), slice(c, min(c + TILE_COLS, w0))

    def sample(self, tensor: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """Bilinear sample of a model output (h, w[, c]) covering the whole model input, at
        the photo pixels rows x cols. Pixel centres: photo x -> model left + (x + 0.5) * width / w0."""
        th, tw = tensor.shape[:2]
        (h0, w0), (mh, mw) = self.photo_size, self.model_size
        y = np.arange(rows.start, rows.stop, dtype=np.float64)
        x = np.arange(cols.start, cols.stop, dtype=np.float64)
        ys = ((self.top + (y + 0.5) * self.height / h0) * th / mh - 0.5).astype(np.float32)
        xs = ((self.left + (x + 0.5) * self.width / w0) * tw / mw - 0.5).astype(np.float32)
        map_x = np.ascontiguousarray(np.broadcast_to(xs[None, :], (len(ys), len(xs))))
        map_y = np.ascontiguousarray(np.broadcast_to(ys[:, None], (len(ys), len(xs))))
        return cv2.remap(np.ascontiguousarray(tensor), map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
