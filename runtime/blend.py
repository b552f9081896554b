"""Eq. 9 of the paper, at the user's full resolution.

    M = sigmoid(eta * (tau - D)),   result = M * I + (1 - M) * B

I is the original photo, never resampled, so wherever the mask says "in focus" the
result keeps the photo's own sharpness. B (the rendered bokeh) and D (the defocus
map) come from the model at a lower resolution and are sampled up tile by tile, so
memory stays bounded on 100 MP photos. A bokeh-only model has no D: its B is sampled up
alone (`upsample_full_resolution`).
"""
from __future__ import annotations

import numpy as np

from .fit import Letterbox

# Rec. 601 luma: the weights sum to one, so a grey photo's in-focus pixels come back unchanged.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def focus_mask(defocus: np.ndarray, eta: float, tau: float) -> np.ndarray:
    """Eq. 9 mask: ~1 where the defocus D is below tau (in focus), ~0 where defocused."""
    z = np.float32(eta) * (np.float32(tau) - defocus.astype(np.float32, copy=False))
    # A steep mask (the render track's eta = 272) would overflow exp in float32; past |z| = 40
    # the sigmoid is 0 or 1 to float32 precision anyway.
    z = np.clip(z, -40.0, 40.0, out=z)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32, copy=False)


def blend(image: np.ndarray, bokeh: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Eq. 9 on float32 arrays in [0, 1]: image and bokeh (..., 3), mask (...)."""
    m = mask[..., None]
    return np.clip(m * image + (1.0 - m) * bokeh, 0.0, 1.0)


def blend_full_resolution(photo: np.ndarray, scale: float, bokeh: np.ndarray, defocus: np.ndarray,
                          box: Letterbox, eta: float, tau: float, out: np.ndarray) -> None:
    """Write Eq. 9 for every photo pixel into `out` (same shape and dtype as `photo`).

    photo: (h0, w0, 3) RGB or (h0, w0) grey, white level `scale` (255, 65535 or 1.0).
    bokeh: (h, w, 3) and defocus: (h', w') model outputs covering the whole model input.
    """
    integer = np.issubdtype(out.dtype, np.integer)
    for rows, cols in box.tiles():
        image = photo[rows, cols].astype(np.float32) * np.float32(1.0 / scale)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        mask = focus_mask(box.sample(defocus, rows, cols), eta, tau)
        result = blend(image, box.sample(bokeh, rows, cols), mask)
        if out.ndim == 2:
            result = result @ _LUMA
        result = result * np.float32(scale)
        out[rows, cols] = np.rint(result) if integer else result


def upsample_full_resolution(bokeh: np.ndarray, box: Letterbox, scale: float, out: np.ndarray) -> None:
    """The bokeh-only variant's result: its (h, w, 3) bokeh sampled up, tile by tile, through the
    letterbox into `out` ((h0, w0, 3) RGB or (h0, w0) grey, white level `scale`). Without the
    defocus map there is no Eq. 9 blend, so in-focus pixels have the model size's resolution."""
    integer = np.issubdtype(out.dtype, np.integer)
    for rows, cols in box.tiles():
        result = np.clip(box.sample(bokeh, rows, cols), 0.0, 1.0)
        if out.ndim == 2:
            result = result @ _LUMA
        result = result * np.float32(scale)
        out[rows, cols] = np.rint(result) if integer else result
