"""Statically calibrated int8 (`--precision int8 --calibration DIR`): int8 activations too.

TFLite's own full-integer quantizer fails on this graph ("'tfl.strided_slice' op quantization
parameters violate the same scale constraint": the renderer slices and concatenates its
layers, and the MLIR quantizer wants one scale across each of them). ai-edge-quantizer takes
a recipe per op type instead, so we quantize the convolutions only (int8 weights per
channel, int8 activations per tensor, ranges from the calibration photos) and leave
everything else float32, with a QUANTIZE / DEQUANTIZE pair at each boundary: the softmax,
the renderer (its disk kernels, slices, division) and the radiance power never see int8.

Calibration photos are read and fitted exactly as bokeh-render reads and fits them; at
least MIN_PHOTOS, none of them one of the gate's held-out photos (photo_gate.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.errors import BadImageError
from ..runtime.fit import Letterbox
from ..runtime.header import EXTENSIONS
from ..runtime.photo import read_photo
from ..runtime.renderer import colour_view

MIN_PHOTOS = 32
METHOD = "static"
# Op types whose inputs, weights and outputs become int8; every other op stays float32.
STATIC_OPS = ("CONV_2D",)


def photo_files(folder: str | Path) -> list[Path]:
    """The image files directly in `folder`, sorted; ValueError unless there are MIN_PHOTOS."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"calibration folder not found: {folder}")
    suffixes = {s for exts in EXTENSIONS.values() for s in exts}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(files) < MIN_PHOTOS:
        raise ValueError(f"calibration needs at least {MIN_PHOTOS} photos, {folder} has {len(files)}")
    return files


def read_rgb(path: Path) -> tuple[np.ndarray, float]:
    """(colour pixels, white level) as bokeh-render reads them; ValueError naming the file."""
    try:
        return colour_view(read_photo(path).pixels)
    except BadImageError as exc:
        raise ValueError(f"calibration photo {path}: {exc}") from None


def check_folder(folder: str | Path) -> list[Path]:
    """Every photo readable, enough of them, none held out for the gate: the files."""
    from .photo_gate import check_held_out
    files = photo_files(folder)
    check_held_out([read_rgb(f)[0] for f in files], files)
    return files


class FittedPhotos:
    """The calibration set as ai-edge-quantizer takes it ({"image": (1, H, W, 3)} per photo),
    fitted one photo at a time as it is read."""

    def __init__(self, files: list[Path], size: tuple[int, int]):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        for f in self.files:
            color, scale = read_rgb(f)
            yield {"image": Letterbox.fit(color.shape[:2], self.size).to_model(color, scale)}


def quantize_static(float_model: bytes, folder: str | Path, size: tuple[int, int], threads: int = 2) -> bytes:
    """The float32 model with STATIC_OPS in int8, calibrated on the photos in `folder`."""
    from ai_edge_quantizer import qtyping, quantizer

    qt = quantizer.Quantizer(bytearray(float_model))
    for op in STATIC_OPS:
        qt.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName[op],
                             activation_num_bits=8, weight_num_bits=8)
    ranges = qt.calibrate({"serving_default": FittedPhotos(photo_files(folder), size)}, num_threads=threads)
    return bytes(qt.quantize(ranges).quantized_model)
