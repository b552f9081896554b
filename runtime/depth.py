"""Depth maps for the depth-guided (render-track) model: read, clean, normalise, focus.

    disparity, notes = load_disparity("disparity.png", photo.shape[:2])   # 8/16-bit grey or .npy
    focus = focus_at(disparity, x, y)                                      # tap to focus

load_disparity is read_depth (the file's raw values), to_disparity (to [0, 1], larger =
nearer) and fit_disparity (to the photo's size), each usable alone.

Normalisation is min-max over the valid pixels: the nearest valid pixel becomes 1, the
farthest 0, whatever the map's units. A metric depth map is first inverted (1 / depth,
valid where depth > 0). Invalid pixels (NaN, inf; zero or negative depth) are filled
from the nearest valid pixel, so holes at object edges take the neighbouring surface's
value rather than a global one. Every repair is returned as a short note for the caller
to show the user; a map that cannot be used raises DepthError.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np

# The defaults are bokehlite/contract.py's numbers; a renderer passes its model's own, from
# the sidecar's "host" block.
from ..contract import CENTRE_BOX, FOCUS_WINDOW, RATIO_TOLERANCE
from .errors import BadImageError, DepthError
from .header import sniff
from .photo import DEFAULT_MAX_PIXELS, check_size, decode_photo

NPY_MAGIC = b"\x93NUMPY"
CONSTANT_DISPARITY = 0.5  # a constant map is one plane; put it mid-range


def read_depth(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(h, w) float64 values of a depth or disparity map file, NaN and inf kept.

    Accepts a single-channel 8- or 16-bit image (PNG, TIFF, ...; an RGB image whose three
    channels are equal counts as grey) or a NumPy .npy array of shape (h, w) with any
    number of extra size-1 axes. DepthError with a one-line reason otherwise.
    """
    where = f"depth map {path}"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DepthError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise DepthError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise DepthError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if not data:
        raise DepthError(f"{where}: file is empty")
    if data.startswith(NPY_MAGIC):
        values = _from_npy(data, where)
    elif sniff(data) is None:
        raise DepthError(f"{where}: not a .npy array or an image (expected a grey 8- or 16-bit PNG, or .npy)")
    else:
        try:
            pixels = decode_photo(data, max_pixels).pixels
        except BadImageError as exc:
            raise DepthError(f"{where}: {exc}") from None
        values = _grey(pixels, where)
    try:
        check_size(values.shape[0], values.shape[1], max_pixels)
    except BadImageError as exc:
        raise DepthError(f"{where}: {exc}") from None
    return values.astype(np.float64, copy=False)


def to_disparity(raw: np.ndarray, is_depth: bool = False) -> tuple[np.ndarray, list[str]]:
    """Raw map (h, w) -> (disparity (h, w) float32 in [0, 1], larger = nearer; notes).

    is_depth: the map holds distances (larger = farther); it is inverted first.
    Raises DepthError when no pixel is valid.
    """
    values = np.asarray(raw, np.float64)
    valid = np.isfinite(values)
    if is_depth:
        valid &= values > 0
        values = np.divide(1.0, values, out=np.zeros_like(values), where=valid)
    what = "NaN, infinite or not a positive depth" if is_depth else "NaN or infinite"
    bad = int(values.size - np.count_nonzero(valid))
    if bad == values.size:
        raise DepthError(f"no valid values (every pixel is {what})")
    notes = []
    if bad:
        values = _fill_nearest(values, valid)
        notes.append(f"{bad} of {values.size} pixels ({bad / values.size:.1%}) are {what}; "
                     "filled from the nearest valid pixel")
    lo, hi = float(values.min()), float(values.max())
    if not hi - lo > 1e-9 * max(abs(lo), abs(hi)):
        notes.append(f"it is constant, so the whole photo is one plane (disparity {CONSTANT_DISPARITY})")
        return np.full(values.shape, CONSTANT_DISPARITY, np.float32), notes
    return ((values - lo) / (hi - lo)).astype(np.float32), notes


def fit_disparity(disparity: np.ndarray, photo_size: tuple[int, int],
                  ratio_tolerance: float = RATIO_TOLERANCE) -> tuple[np.ndarray, list[str]]:
    """Resize a disparity map to the photo's (H, W); notes say when its aspect ratio differs
    by more than `ratio_tolerance` (it is stretched to fit all the same)."""
    (hd, wd), (h0, w0) = disparity.shape[:2], photo_size
    notes = []
    off = (wd / hd) / (w0 / h0) - 1.0
    if abs(off) > ratio_tolerance:
        note = (f"its aspect ratio ({wd}x{hd}, {wd / hd:.3f}) differs from the photo's "
                f"({w0}x{h0}, {w0 / h0:.3f}); stretched to fit")
        if abs((hd / wd) / (w0 / h0) - 1.0) <= ratio_tolerance:
            note += " (is it rotated?)"
        notes.append(note)
    if (hd, wd) == (h0, w0):
        return disparity.astype(np.float32, copy=False), notes
    shrinking = h0 <= hd and w0 <= wd
    resized = cv2.resize(np.ascontiguousarray(disparity, np.float32), (w0, h0),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0), notes


def read_disparity(path: str | os.PathLike, is_depth: bool = False,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """read_depth + to_disparity: a file -> (disparity at the map's own size, notes)."""
    raw = read_depth(path, max_pixels)
    try:
        return to_disparity(raw, is_depth)
    except DepthError as exc:
        raise DepthError(f"depth map {path}: {exc}") from None


def load_disparity(path: str | os.PathLike, photo_size: tuple[int, int], is_depth: bool = False,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """read_disparity + fit_disparity: a file -> (disparity at the photo's size, notes)."""
    disparity, notes = read_disparity(path, is_depth, max_pixels)
    fitted, more = fit_disparity(disparity, photo_size)
    return fitted, notes + more


def focus_at(disparity: np.ndarray, x: int, y: int, window: int = FOCUS_WINDOW) -> float:
    """Tap to focus: the median disparity in a window x window box around column x, row y.
    The median ignores the few pixels of another surface when the tap is near an edge."""
    h, w = disparity.shape[:2]
    if not (0 <= x < w and 0 <= y < h):
        raise DepthError(f"focus point {x},{y} is outside the {w}x{h} photo "
                         f"(X is a column from 0 to {w - 1}, Y a row from 0 to {h - 1})")
    r = window // 2
    return float(np.median(disparity[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]))


def centre_focus(disparity: np.ndarray, fraction: float = CENTRE_BOX) -> float:
    """Default focus: the median disparity over the centred box `fraction` of each side."""
    h, w = disparity.shape[:2]
    bh, bw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - bh) // 2, (w - bw) // 2
    return float(np.median(disparity[top:top + bh, left:left + bw]))


def _from_npy(data: bytes, where: str) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:            # numpy raises ValueError, OSError, EOFError ...
        raise DepthError(f"{where}: not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise DepthError(f"{where}: expected a numeric .npy array, got {kind}")
    core = [s for s in array.shape if s != 1]      # (1, H, W, 1) and the like are (H, W)
    if len(core) != 2:
        raise DepthError(f"{where}: expected a 2-D array (H, W) of at least 2x2, got shape {array.shape}")
    return array.reshape(core)


def _grey(pixels: np.ndarray, where: str) -> np.ndarray:
    if pixels.ndim == 2:
        return pixels
    rgb = pixels[:, :, :3]
    if not (np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])):
        raise DepthError(f"{where}: is a colour image (its R, G and B differ); expected one channel "
                         "of depth: a grey 8- or 16-bit image, or .npy")
    return rgb[:, :, 0]


def _fill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each invalid pixel takes the value of its nearest valid pixel (Euclidean, 5x5 mask)."""
    _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(labels.max()) + 1, np.float64)
    lut[labels[valid]] = values[valid]
    return lut[labels]
