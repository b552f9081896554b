"""`python -m bokehlite.export.int8_layers_tool FLOAT.tflite CALIBRATION_DIR`: the per-layer
int8 report (int8_layers.py) of a float32 export, statically quantized on the photos in
CALIBRATION_DIR with every convolution int8 and compared on the int8 gate's held-out photos.

A developer's tool, not a command users install: it found calibration.FLOAT_DEPTH
(docs/export.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .calibration import photo_files, quantize_static
from .int8_layers import format_rows, layer_report
from .photo_gate import HELD_OUT, fitted, load_photo, photo_path
from .tflite_inspect import ModelFileError, TfliteModel

USAGE = "usage: python -m bokehlite.export.int8_layers_tool FLOAT.tflite CALIBRATION_DIR"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    float_path, folder = argv
    try:
        model = TfliteModel(float_path)
        photo_files(folder)
    except (OSError, ValueError, ModelFileError) as exc:
        print(f"int8_layers_tool: error: {exc}", file=sys.stderr)
        return 2
    data = Path(float_path).read_bytes()
    size = tuple(model.shape(int(model.graph.inputs[0]))[1:3])
    quantized = quantize_static(data, folder, size, depth=None)
    photos = [fitted(load_photo(photo_path(n)), size) for n in HELD_OUT]
    print(format_rows(layer_report(data, quantized, photos)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
