"""The host steps both renderers share, as plain functions: the checks at the public boundary,
the aperture's default and scale (R1 of docs/contract.md), and the blend tail that turns the
model's outputs into the output photo.

BokehRenderer (renderer.py) and PortraitRenderer (portrait.py) are thin sequences of these
steps around their models; a rule changes here, once, for both.
"""
from __future__ import annotations

import math

import numpy as np

from .blend import blend_full_resolution, upsample_full_resolution
from .errors import DepthError, ModelOutputError
from .fit import Letterbox

# White level per accepted dtype: what 1.0 means.
WHITE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


# --- checks at the public boundary --------------------------------------------------------------

def check_image(image) -> np.ndarray:
    """The photo as `render` takes it, or TypeError / ValueError naming what was expected."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype not in WHITE:
        raise ValueError(f"expected uint8, uint16 or float32 pixels, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise ValueError(f"expected an image of shape (H, W, 3), (H, W, 4) or (H, W), got {image.shape}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"expected an image of at least 2x2 pixels, got {image.shape[1]}x{image.shape[0]}")
    if image.dtype == np.float32:
        lo, hi = float(np.min(image)), float(np.max(image))
        if not (0.0 <= lo and hi <= 1.0):     # also false for NaN
            raise ValueError(f"expected float32 values in [0, 1], got range [{lo:g}, {hi:g}]")
    return image


def check_out(image: np.ndarray, out: np.ndarray | None) -> None:
    """`out`, where a render writes its result, must be like the (checked) image, or the image itself."""
    if out is not None and (out.shape != image.shape or out.dtype != image.dtype):
        raise ValueError(f"out must be {image.dtype} {image.shape} like the image, got {out.dtype} {out.shape}")


def check_disparity(disparity, photo_size: tuple[int, int]) -> np.ndarray:
    """(H, W) or (H, W, 1) float disparity in [0, 1] at the photo's size -> (H, W)."""
    if not isinstance(disparity, np.ndarray):
        raise TypeError(f"expected disparity as a numpy array, got {type(disparity).__name__}")
    if disparity.ndim == 3 and disparity.shape[2] == 1:
        disparity = disparity[:, :, 0]
    if disparity.shape != tuple(photo_size):
        raise ValueError(f"expected disparity of shape {tuple(photo_size)} (the photo's H, W), "
                         f"got {disparity.shape}")
    if disparity.dtype.kind != "f":
        raise ValueError(f"expected float disparity in [0, 1], got {disparity.dtype}")
    lo, hi = float(np.min(disparity)), float(np.max(disparity))
    if not (0.0 <= lo and hi <= 1.0):     # also false for NaN
        raise ValueError(f"expected disparity values in [0, 1], got range [{lo:g}, {hi:g}]")
    return disparity


def check_number(name: str, value, upper: float, unit: str = "") -> float:
    """A finite number in [0, upper] as a float; TypeError for a non-number, DepthError naming
    `name` for one out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected {name} as a number, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and 0.0 <= float(value) <= upper):        # also false for NaN
        raise DepthError(f"expected {name} in [0, {upper:g}]{unit}, got {value}")
    return float(value)


def check_finite(outputs: dict[str, np.ndarray], names, model: str) -> None:
    """ModelOutputError if an output the blend reads holds NaN or inf: the blend would turn
    them into black pixels and exit 0."""
    for name in names:
        bad = int(np.count_nonzero(~np.isfinite(outputs[name])))
        if bad:
            raise ModelOutputError(f"{model}: the model's {name} output has {bad} NaN or infinite "
                                   f"value(s) of {outputs[name].size}; nothing was written")


# --- the aperture (R1) --------------------------------------------------------------------------

def chosen_aperture(host, aperture: float | None) -> float:
    """The aperture a render uses, in photo pixels: the caller's, or the model contract's
    default (its sidecar's host block) when None. The one place that default is applied."""
    return host.default_aperture if aperture is None else aperture


def photo_aperture(host, box: Letterbox, aperture: float | None) -> float:
    """The aperture in photo pixels, checked: the contract's default when None; at most the
    contract's largest, which is in model pixels, at this photo's scale."""
    if aperture is None:
        return chosen_aperture(host, aperture)
    return check_number("aperture", aperture, host.max_aperture / box.scale,
                        f" photo pixels (the model's {host.max_aperture:g} at this photo's scale)")


def model_aperture(host, box: Letterbox, aperture: float | None) -> np.ndarray:
    """The model's `aperture` input, (1, 1) float32 in model pixels: the photo's aperture
    (`photo_aperture`) scaled by the letterbox, so one aperture looks the same at any size."""
    return np.array([[photo_aperture(host, box, aperture) * box.scale]], np.float32)


# --- the blend tail -----------------------------------------------------------------------------

def colour_view(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The colour part of an image (RGB or grey, without alpha) and its white level."""
    if image.ndim == 3 and image.shape[2] == 4:
        color = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        color = image[:, :, 0]
    else:
        color = image
    return color, WHITE[image.dtype]


def blend_photo(image: np.ndarray, bokeh: np.ndarray, defocus: np.ndarray | None, box: Letterbox,
                contract, out: np.ndarray | None = None) -> np.ndarray:
    """The output photo, same shape and dtype as `image`: Eq. 9 of the model's (h, w, 3) bokeh
    and (h', w') defocus with the photo at its own resolution (contract.eta, contract.tau), or,
    with no defocus (a bokeh-only model), its bokeh sampled up. Alpha is copied through.

    out: where to write it (checked by `check_out`), `image` itself included: the blend reads
    each tile before it writes it."""
    result = np.empty_like(image) if out is None else out
    if image.ndim == 3 and image.shape[2] == 4 and result is not image:
        result[:, :, 3] = image[:, :, 3]
    color, scale = colour_view(image)
    out_color, _ = colour_view(result)       # a view: the blend writes into `result`
    if defocus is None:         # bokeh-only model: no D, so no Eq. 9; its bokeh, sampled up
        upsample_full_resolution(bokeh, box, scale, out_color)
    else:
        blend_full_resolution(color, scale, bokeh, defocus, box, contract.eta, contract.tau, out_color)
    return result
