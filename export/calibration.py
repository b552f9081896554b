"""Statically calibrated int8 (`--precision int8 --calibration DIR`): int8 activations too.

TFLite's own full-integer quantizer fails on this graph ("'tfl.strided_slice' op quantization
parameters violate the same scale constraint": the renderer slices and concatenates its
layers, and the MLIR quantizer wants one scale across each of them). ai-edge-quantizer takes
a recipe per op instead, so we quantize the convolutions only (int8 weights per channel, int8
activations per tensor, ranges from the calibration photos) and leave everything else
float32, with a QUANTIZE / DEQUANTIZE pair at each boundary: the softmax, the renderer (its
disk kernels, slices, division) and the radiance power never see int8. The convolutions
near the softmax and after it keep float32 activations with dynamic-range weights
(FLOAT_DEPTH below; int8_layers.py is the per-layer report that found it).

Calibration photos are read and fitted exactly as bokeh-render reads and fits them; at
least MIN_PHOTOS, none of them one of the gate's held-out photos (photo_gate.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.errors import BadImageError
from ..runtime.fit import Letterbox
from ..runtime.header import EXTENSIONS, sniff
from ..runtime.photo import read_photo
from ..runtime.host_steps import colour_view
from .tflite_inspect import TfliteModel, conv_places

MIN_PHOTOS = 32
METHOD = "static"
# Op types whose inputs, weights and outputs become int8; every other op stays float32.
STATIC_OPS = ("CONV_2D",)
# The convolutions the static recipe keeps with float32 activations, by their place in the
# graph (tflite_inspect.conv_places): everything after the softmax (the renderer and the residual
# module), and every convolution within FLOAT_DEPTH of the softmax on the way back from it (the
# head, the fusion blocks, the adapters); they get dynamic-range weights instead (recipe()).
# On trained weights no single layer breaks the defocus map: the noise of every int8 activation
# adds up. Five deep still failed the gate on a trained tiny model (astronaut 0.023 with
# write_builtin_set's photos), six passed it with room (0.008); docs/export.md has the figures.
FLOAT_DEPTH = 6
DYNAMIC_MIN_WEIGHTS = 1024      # TFLiteConverter's threshold for dynamic-range weights


def photo_files(folder: str | Path) -> list[Path]:
    """The image files directly in `folder`, sorted; ValueError unless there are MIN_PHOTOS."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"calibration folder not found: {folder}")
    suffixes = {s for exts in EXTENSIONS.values() for s in exts}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and _is_image(p))
    if len(files) < MIN_PHOTOS:
        raise ValueError(f"calibration needs at least {MIN_PHOTOS} photos, {folder} has {len(files)}")
    return files


def _is_image(path: Path) -> bool:
    """An image by its first bytes, not by its name: a text file called .jpg is no photo."""
    try:
        with open(path, "rb") as f:
            return sniff(f.read(64)) is not None
    except OSError:
        return False


def read_rgb(path: Path) -> tuple[np.ndarray, float]:
    """(colour pixels, white level) as bokeh-render reads them; ValueError naming the file."""
    try:
        return colour_view(read_photo(path).pixels)
    except BadImageError as exc:
        raise ValueError(f"calibration photo {path}: {exc}") from None


def check_folder(folder: str | Path) -> list[Path]:
    """Every photo readable, enough of them, none held out for the gate: the files."""
    files = photo_files(folder)
    from .photo_gate import check_held_out      # torch: loaded only for a folder of enough photos
    check_held_out([read_rgb(f)[0] for f in files], files)
    return files


# Real photos in the wheels the export extra installs, none of them the gate's (nor the
# other view of its Motorcycle pair): grey ones are read as three equal channels.
BUILTIN_SOURCES = (("skimage", "data/retina.jpg"), ("skimage", "data/hubble_deep_field.jpg"),
                   ("skimage", "data/ihc.png"), ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
                   ("skimage", "data/camera.png"), ("skimage", "data/coins.png"),
                   ("skimage", "data/grass.png"), ("skimage", "data/brick.png"))


def write_builtin_set(folder: str | Path, count: int = MIN_PHOTOS) -> list[Path]:
    """`count` seeded crops (50-90% of each side) of BUILTIN_SOURCES as PNGs in `folder`: a
    calibration set for when the user gives none (bench-runtime's ONNX Runtime int8)."""
    import importlib.resources

    import cv2
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        package, name = BUILTIN_SOURCES[i % len(BUILTIN_SOURCES)]
        bgr = cv2.imread(str(importlib.resources.files(package) / name), cv2.IMREAD_COLOR)
        h, w = bgr.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 0.9)), int(w * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        out.append(folder / f"builtin_{i:02d}.png")
        if not cv2.imwrite(str(out[-1]), bgr[y:y + ch, x:x + cw]):
            raise OSError(f"cannot write {out[-1]}")
    return out


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


def recipe(qt, float_model: bytes, depth: int | None = FLOAT_DEPTH) -> dict[str, list[str]]:
    """Put the static recipe on the ai-edge-quantizer `qt`: STATIC_OPS in int8, except every
    convolution after the softmax and within `depth` before it (None: none), which get
    dynamic-range int8 weights with float32 activations, as the default export gives them
    (a convolution of under DYNAMIC_MIN_WEIGHTS weights stays float32, as there). Returns the
    output tensor names of those convolutions: {"dynamic": [...], "float": [...]}."""
    import re
    import tempfile

    from ai_edge_quantizer import algorithm_manager, qtyping

    for op in STATIC_OPS:
        qt.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName[op],
                             activation_num_bits=8, weight_num_bits=8)
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(float_model)
        f.flush()
        model = TfliteModel(f.name)
    out = {"dynamic": [], "float": []}
    for i, place in conv_places(model).items():
        if depth is None or not (place == "after softmax" or (place.endswith(" before softmax")
                                                              and int(place.split()[0]) <= depth)):
            continue
        op = model.ops[i]
        name = model.tensor_name(op.outputs[0])
        regex = f"^{re.escape(name)};$"        # an op's scope: its output names, ';' after each
        if int(np.prod(model.shape(op.inputs[1]))) >= DYNAMIC_MIN_WEIGHTS:
            out["dynamic"].append(name)
            qt.add_dynamic_config(regex=regex, operation_name=qtyping.TFLOperationName.CONV_2D, num_bits=8)
        else:
            out["float"].append(name)
            qt.update_quantization_recipe(regex=regex, operation_name=qtyping.TFLOperationName.CONV_2D,
                                          algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return out


def quantize_static(float_model: bytes, folder: str | Path, size: tuple[int, int], threads: int = 2,
                    depth: int | None = FLOAT_DEPTH, ranges=None) -> bytes:
    """The float32 model with STATIC_OPS in int8 but for what `recipe` keeps float, calibrated
    on the photos in `folder` (or on earlier `ranges` of the same float model)."""
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(bytearray(float_model))
    recipe(qt, float_model, depth)
    if ranges is None:
        ranges = qt.calibrate({"serving_default": FittedPhotos(photo_files(folder), size)}, num_threads=threads)
    return bytes(qt.quantize(ranges).quantized_model)
