"""The int8 gate: held-out real photos through the int8 TFLite and the float32 PyTorch model.

Quantization error depends on what the activations look like, and the synthetic parity
scenes (flat colours, checkerboards, noise) are not photos; so an int8 export is gated on
real ones, fitted into the model input exactly as the runtime fits them (letterbox,
mirrored borders, 8-bit / 255). The photos ship inside scikit-image's wheel, which the
export extra installs: nothing is downloaded. None of them may calibrate a model: dynamic
range needs no calibration data, and `check_held_out` refuses a calibration set that
shares a photo with the gate.
"""
from __future__ import annotations

import hashlib
import importlib.resources
from importlib.metadata import version as _version
from pathlib import Path

import cv2
import numpy as np
import torch

from ..compare import abs_error, compare, worst_psnr
from ..runtime.backends import open_model
from ..runtime.fit import Letterbox

# Real photos from scikit-image's wheel: a portrait, food, a cat, an outdoor scene with sky,
# and a studio shot (Middlebury 2014 Motorcycle). Different colours, textures and highlights.
HELD_OUT = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")


def photo_path(name: str) -> Path:
    """Path of a photo shipped in scikit-image's wheel; FileNotFoundError naming the fix otherwise."""
    try:
        data = importlib.resources.files("skimage") / "data"
    except ModuleNotFoundError:
        raise FileNotFoundError("the int8 gate's real photos ship with scikit-image: "
                                "pip install 'bokehlite[export]'") from None
    path = Path(str(data / name))
    if not path.is_file():
        raise FileNotFoundError(f"real photo {name} is not in {path.parent} (scikit-image 0.26 ships it)")
    return path


def load_photo(path: str | Path) -> np.ndarray:
    """(h, w, 3) uint8 RGB (grey photos become three equal channels)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path} as an image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def fitted(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(1, H, W, 3) float32 in [0, 1]: the photo letterboxed the way bokeh-render does it."""
    return Letterbox.fit(rgb.shape[:2], size).to_model(rgb, 255.0)


def pixel_digest(rgb: np.ndarray) -> str:
    """Identity of a photo's pixels, whatever its file name or format."""
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode()).hexdigest()


def check_held_out(calibration: list[np.ndarray], names: list | None = None) -> None:
    """ValueError if a calibration photo is one of the gate's photos (same pixels), naming
    the user's file (`names`, one per photo) and the gate photo it copies."""
    gate = {pixel_digest(load_photo(photo_path(n))): n for n in HELD_OUT}
    for i, rgb in enumerate(calibration):
        if pixel_digest(rgb) in gate:
            yours = f"calibration photo {names[i]}" if names else "a calibration photo"
            raise ValueError(f"{yours} is the int8 gate's held-out photo {gate[pixel_digest(rgb)]} "
                             "(same pixels); calibrate on other photos")


def evaluate(tflite: str | Path, model, size: tuple[int, int], names=HELD_OUT,
             threads: int | None = None) -> dict:
    """Each photo through `tflite` (LiteRT + XNNPACK) and the float32 PyTorch `model` (a
    TrackModel with outputs bokeh, defocus): bokeh PSNR and max |err|, defocus mean and max
    |err|, per photo and worst. The figures the int8 gate (parity.PhotoGate) judges."""
    outputs = model.track.outputs
    runner = open_model(tflite, "litert", threads)       # the code path users run (parity.run_tflite's)
    photos = []
    for name in names:
        rgb = load_photo(photo_path(name))
        x = fitted(rgb, size)
        with torch.no_grad():
            ref = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        ref = {n: r.numpy().transpose(0, 2, 3, 1) for n, r in zip(outputs, ref)}
        got = runner(image=x)
        bokeh = compare(ref["bokeh"], got["bokeh"])
        defocus_err, defocus_nonfinite = abs_error(ref["defocus"], got["defocus"])
        photos.append({"photo": name, "photo_size": list(rgb.shape[:2]),
                       "bokeh_psnr": bokeh["psnr"], "bokeh_max_abs": bokeh["max_abs"],
                       "defocus_mae": float(defocus_err.mean()), "defocus_max_abs": float(defocus_err.max()),
                       "nonfinite": max(bokeh["nonfinite"], defocus_nonfinite)})
    return {"source": f"scikit-image {_version('scikit-image')} wheel, skimage/data", "held_out": True,
            "fit": "letterbox as bokeh-render (aspect kept, mirrored)",
            "photos": photos,
            "worst": {"bokeh_psnr": worst_psnr(p["bokeh_psnr"] for p in photos),
                      "defocus_mae": max(p["defocus_mae"] for p in photos)}}
