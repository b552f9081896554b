"""ONNX Runtime's int8 beside LiteRT's: the comparison a user would make.

ONNX Runtime's fastest int8 on an x86 CPU is static QDQ "U8S8" (its dynamic ConvInteger path
was six times slower here): `quantize_static` with QuantFormat.QDQ, the convolutions only,
per-tensor uint8 activations (QuantType.QUInt8) from MinMax ranges and per-channel int8
weights (QuantType.QInt8), which ONNX Runtime fuses into QLinearConv on its u8s8 kernels.
It is calibrated on the same photos as our static int8, read and fitted as bokeh-render fits
them (export/calibration.py), and quantizes the int8 export's own ONNX graph (the one its
.tflite was converted from), in a worker process of its own so that calibration's memory is
never a timed row's. The written model is checked (`qdq_types`), not trusted.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .backends import HEADLINE, PERSISTENT
from .efficiency import find

BACKEND = "onnxruntime"
# quantize_static's default is signed activations (S8S8): on the cpu track, 2 threads, idle,
# ORT took 287 ms with them and 155 ms with unsigned ones, beside LiteRT int8's 157 ms (issue
# 32), so timing the default compared LiteRT with ORT at half its speed. The signed row is not
# kept beside this one: it shows only a slower way to configure ORT, nothing about our model or
# LiteRT, and would cost one more calibration and timed row per thread count. reduce_range
# (7-bit weights) stays off: it guards against the int16 saturation of u8s8 dot products on
# x86 CPUs without VNNI, which VNNI ones do not have; the latency table's PSNR vs PyTorch
# shows that loss wherever it occurs.
CONFIG = "U8S8"
METHOD = {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "config": CONFIG,
          "op_types": ["Conv"], "per_channel": True, "activation_type": "QUInt8", "weight_type": "QInt8",
          "reduce_range": False, "activations": "uint8 (QUInt8), per tensor",
          "weights": "int8 (QInt8), per channel", "calibration": "MinMax"}
# What qdq_types must find in the written model for CONFIG.
EXPECTED = {"activations": ["uint8"], "weights": ["int8"], "per_channel": True}


def quantize(onnx_in: str, onnx_out: str, folder: str, size: tuple[int, int]) -> dict:
    """Write the static QDQ int8 copy of `onnx_in` to `onnx_out` (temp file + rename)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from ..export.calibration import FittedPhotos, photo_files
    files = photo_files(folder)

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.it = iter(FittedPhotos(files, tuple(size)))

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"image": x["image"].transpose(0, 3, 1, 2).copy()}

    t0 = time.perf_counter()
    tmp = f"{onnx_out}.tmp.onnx"
    # MinMax calibration keeps only each tensor's ReduceMin / ReduceMax per photo: small at any size.
    quantize_static(onnx_in, tmp, Photos(), quant_format=QuantFormat.QDQ, op_types_to_quantize=METHOD["op_types"],
                    per_channel=METHOD["per_channel"], reduce_range=METHOD["reduce_range"],
                    activation_type=QuantType[METHOD["activation_type"]],
                    weight_type=QuantType[METHOD["weight_type"]])
    found = qdq_types(onnx.load(tmp))
    if {k: found[k] for k in EXPECTED} != EXPECTED or not found["quantized_convs"]:
        os.remove(tmp)
        raise RuntimeError(f"ONNX Runtime's quantizer wrote {found}, expected {CONFIG}: {EXPECTED}")
    os.replace(tmp, onnx_out)
    return {**METHOD, "found": found, "photos": len(files), "source": str(Path(folder).resolve()),
            "seconds": time.perf_counter() - t0}


def qdq_types(model) -> dict:
    """What a QDQ ONNX model's quantization is: the element types of its activations (the zero
    points of its QuantizeLinear nodes) and of its Conv weights (the quantized initializers
    behind the DequantizeLinear feeding each Conv's weight input), whether every such weight has
    one scale per output channel, and how many of its convolutions are quantized."""
    from onnx import numpy_helper

    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    array = lambda name: numpy_helper.to_array(consts[name])   # noqa: E731
    convs = [n for n in graph.node if n.op_type == "Conv"]
    weight_inputs = {n.input[1] for n in convs}
    activations, weights, per_channel, quantized = set(), set(), True, 0
    for n in graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in consts:
            activations.add(array(n.input[2]).dtype.name)
        elif n.op_type == "DequantizeLinear" and n.output[0] in weight_inputs and n.input[0] in consts:
            w, scale = array(n.input[0]), array(n.input[1])
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            weights.add(w.dtype.name)
            per_channel &= scale.ndim == 1 and scale.size == w.shape[axis]
            quantized += 1
    return {"activations": sorted(activations), "weights": sorted(weights),
            "per_channel": per_channel and quantized > 0, "quantized_convs": quantized, "convs": len(convs)}


def int8_ratios(track: dict) -> list[dict]:
    """LiteRT int8 (low memory, what ships; and persistent) over ONNX Runtime int8, medians
    of this run at the same thread count."""
    out = []
    for ort in (r for r in track["results"] if r["backend"] == BACKEND and r.get("precision") == "int8"
                and r.get("extra")):
        t = ort["threads"]
        lite, persistent = find(track, HEADLINE, t, "int8"), find(track, PERSISTENT, t, "int8")
        if lite is None:
            continue
        med = lambda r: r["stats"]["median"]   # noqa: E731
        out.append({"threads": t, "statistic": "median", "ort_config": (track.get("ort_int8") or {}).get("config"),
                    "litert_ms": med(lite), "ort_ms": med(ort),
                    "persistent_ms": med(persistent) if persistent else None,
                    "litert_ort": med(lite) / med(ort),
                    "persistent_ort": med(persistent) / med(ort) if persistent else None,
                    "litert_peak_rss_mb": lite["peak_rss_mb"], "ort_peak_rss_mb": ort["peak_rss_mb"]})
    return out
