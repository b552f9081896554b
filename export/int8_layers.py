"""Where static int8 loses the defocus map: a per-layer error report of a static export.

TensorFlow's QuantizationDebugger needs TFLite's own full-integer quantizer, which fails on
this graph (calibration.py says why), so the report is built on ai-edge-quantizer's model
validator, the same library that quantizes: the float32 model and its static int8 copy run
side by side on the gate's held-out photos with every tensor kept, and each convolution's
output is compared with its float32 twin (mean squared error, and the signal-to-noise ratio in
dB: the float tensor's mean square over the error's, averaged over the photos).
Quantization noise is carried forward, so the figure of a layer is what the network has lost
up to it; where it drops between a layer's input and its output is where int8 hurts.

Each convolution is also named by where it sits (tflite_inspect.conv_places): `k before
softmax` counts convolutions back from the softmax whose six weights make the defocus map,
`after softmax` is the renderer and the residual module.
`python -m bokehlite.export.int8_layers_tool FLOAT.tflite CALIBRATION_DIR` prints the table
(docs/export.md).
"""
from __future__ import annotations

import numpy as np

from .tflite_inspect import TfliteModel, conv_places


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
        name = model.tensor_name(op.outputs[0])
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
