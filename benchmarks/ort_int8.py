"""ONNX Runtime's int8 beside LiteRT's: the comparison a user would make.

ONNX Runtime's fastest int8 on a CPU is static QDQ (its dynamic ConvInteger path was six
times slower here): `quantize_static` with QuantFormat.QDQ, the convolutions only, per-channel
int8 weights and per-tensor int8 activations from MinMax ranges, calibrated on the same
photos as our static int8, read and fitted as bokeh-render fits them (export/calibration.py).
It quantizes the int8 export's own ONNX graph (the one its .tflite was converted from), in
a worker process of its own so that calibration's memory is never a timed row's.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .backends import HEADLINE, PERSISTENT
from .efficiency import find

BACKEND = "onnxruntime"
METHOD = {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "op_types": ["Conv"],
          "per_channel": True, "weights": "int8, per channel", "activations": "int8, per tensor",
          "calibration": "MinMax"}


def quantize(onnx_in: str, onnx_out: str, folder: str, size: tuple[int, int]) -> dict:
    """Write the static QDQ int8 copy of `onnx_in` to `onnx_out` (temp file + rename)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

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
    quantize_static(onnx_in, tmp, Photos(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                    per_channel=True)
    os.replace(tmp, onnx_out)
    return {**METHOD, "photos": len(files), "source": str(Path(folder).resolve()),
            "seconds": time.perf_counter() - t0}


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
        out.append({"threads": t, "statistic": "median", "litert_ms": med(lite), "ort_ms": med(ort),
                    "persistent_ms": med(persistent) if persistent else None,
                    "litert_ort": med(lite) / med(ort),
                    "persistent_ort": med(persistent) / med(ort) if persistent else None,
                    "litert_peak_rss_mb": lite["peak_rss_mb"], "ort_peak_rss_mb": ort["peak_rss_mb"]})
    return out
