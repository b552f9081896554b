"""Where static int8 loses the defocus map: a per-layer error report of a static export.

TensorFlow's QuantizationDebugger needs TFLite's own full-integer quantizer, which fails on
this graph (calibration.py says why), so the report is built on ai-edge-quantizer's model
validator, the same library that quantizes: the float32 model and its static int8 copy run
side by side on the gate's held-out photos with every tensor kept, and each convolution's
output is compared with its float32 twin (mean squared error, and the signal-to-noise ratio in
dB: the float tensor's mean square over the error's, averaged over the photos).
Quantization noise is carried forward, so the figure of a layer is what the network has lost
up to it; where it drops between a layer's input and its output is where int8 hurts.

Each convolution is also named by where it sits: `k before softmax` counts convolutions back
from the softmax whose six weights make the defocus map, `after softmax` is the renderer and
the residual module. `python -m bokehlite.export.int8_layers FLOAT.tflite CALIBRATION_DIR`
prints the table (docs/export.md).
"""
from __future__ import annotations

import sys
from collections import deque

import numpy as np

from .tflite_inspect import TfliteModel


def _name(model: TfliteModel, t: int) -> str:
    n = model.tensor(t).name
    return n.decode() if isinstance(n, bytes) else n


def conv_places(model: TfliteModel) -> dict[int, str]:
    """CONV_2D op index -> where it sits relative to the SOFTMAX (see the module docstring)."""
    consumers: dict[int, list] = {}
    for op in model.ops:
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(t, []).append(op)
    softmax = [op for op in model.ops if op.name == "SOFTMAX"]
    after, queue = set(), deque(t for op in softmax for t in op.outputs)
    while queue:
        for op in consumers.get(queue.popleft(), []):
            if op.index not in after:
                after.add(op.index)
                queue.extend(op.outputs)
    # Breadth-first back from the softmax: how many convolutions lie on the shortest way.
    before: dict[int, int] = {}
    queue = deque((t, 0) for op in softmax for t in op.inputs if t >= 0)
    seen = set()
    while queue:
        t, depth = queue.popleft()
        op = model.producers.get(t)
        if op is None or op.index in seen:
            continue
        seen.add(op.index)
        if op.name == "CONV_2D":
            depth += 1
            before[op.index] = depth
        queue.extend((i, depth) for i in op.inputs if i >= 0 and not model.is_constant(i))
    out = {}
    for op in model.ops:
        if op.name == "CONV_2D":
            out[op.index] = ("after softmax" if op.index in after
                             else f"{before[op.index]} before softmax" if op.index in before else "-")
    return out


def layer_report(float_model: bytes, quantized_model: bytes, photos: list[np.ndarray],
                 threads: int = 2) -> list[dict]:
    """One row per CONV_2D of the float model, in graph order: its place, weight shape,
    output tensor, and the SNR (dB) and MSE of the int8 model's output against float32's
    over `photos` ((1, H, W, 3) float32 model inputs)."""
    import tempfile
    from pathlib import Path

    from ai_edge_quantizer import model_validator
    from ai_edge_quantizer.utils import validation_utils as vu
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "float.tflite"
        path.write_bytes(float_model)
        model = TfliteModel(path)
    places = conv_places(model)
    result = model_validator.compare_model(
        float_model, quantized_model, {"serving_default": [{"image": x} for x in photos]},
        [vu.ValidationErrorMetric.MSE, vu.ValidationErrorMetric.SNR], num_threads=threads)
    tensors = result.get_all_tensor_results()
    rows = []
    for op in model.ops:
        if op.name != "CONV_2D":
            continue
        name = _name(model, op.outputs[0])
        figures = tensors.get(name, {})
        snr = figures.get("snr")
        rows.append({"op": op.index, "place": places[op.index], "weights": list(model.shape(op.inputs[1])),
                     "tensor": name, "snr_db": None if snr is None else 10 * float(np.log10(max(snr, 1e-12))),
                     "mse": figures.get("mse")})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'op':>4}  {'place':<17} {'weights (OHWI)':<18} {'SNR dB':>7}  tensor"]
    for r in rows:
        snr = "-" if r["snr_db"] is None else f"{r['snr_db']:.1f}"
        lines.append(f"{r['op']:>4}  {r['place']:<17} {str(r['weights']):<18} {snr:>7}  {r['tensor'][:70]}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from .calibration import photo_files, quantize_static
    from .photo_gate import HELD_OUT, fitted, load_photo, photo_path
    if len(argv) != 2:
        print("usage: python -m bokehlite.export.int8_layers FLOAT.tflite CALIBRATION_DIR", file=sys.stderr)
        return 2
    from .tflite_inspect import ModelFileError
    float_path, folder = argv
    try:
        model = TfliteModel(float_path)
        photo_files(folder)
    except (OSError, ValueError, ModelFileError) as exc:
        print(f"int8_layers: error: {exc}", file=sys.stderr)
        return 2
    data = open(float_path, "rb").read()
    size = tuple(model.shape(int(model.graph.inputs[0]))[1:3])
    quantized = quantize_static(data, folder, size, depth=None)
    photos = [fitted(load_photo(photo_path(n)), size) for n in HELD_OUT]
    print(format_rows(layer_report(data, quantized, photos)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
