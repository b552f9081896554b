"""Parity gates: PyTorch vs ONNX Runtime vs TFLite on generated scenes.

float32 must match PyTorch to max |err| <= 1e-4 and PSNR >= 60 dB; float16 to
PSNR >= 45 dB with fewer than 0.1% of values off by more than 1/255, and to 40 dB on
LiteRT's GPU accelerator. int8 is gated on held-out real photos instead (photo_gate.py):
bokeh PSNR >= 30 dB and defocus mean |err| <= 0.02 against the float32 PyTorch model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare import compare, merge, nonfinite_failure  # noqa: F401 - compare, merge re-exported: the gates' statistics
from ..model.synthetic import test_scene
from ..runtime.backends import open_model


@dataclass(frozen=True)
class Gate:
    max_abs: float | None
    min_psnr: float
    max_off_fraction: float | None   # fraction of values off by more than 1/255

    def failures(self, stats: dict) -> list[str]:
        out = [line] if (line := nonfinite_failure(stats)) else []
        if self.max_abs is not None and stats["max_abs"] > self.max_abs:
            out.append(f"max |err| {stats['max_abs']:.2e} > {self.max_abs:.0e}")
        if stats["psnr"] is not None and stats["psnr"] < self.min_psnr:   # None: identical
            out.append(f"PSNR {stats['psnr']:.1f} dB < {self.min_psnr:.0f} dB")
        if self.max_off_fraction is not None and stats["off_fraction"] >= self.max_off_fraction:
            out.append(f"{100 * stats['off_fraction']:.3f}% of values off by > 1/255 "
                       f"(limit {100 * self.max_off_fraction:.1f}%)")
        return out


@dataclass(frozen=True)
class PhotoGate:
    """The int8 gate, on held-out real photos against the float32 PyTorch model
    (photo_gate.evaluate gives the figures): every photo's bokeh at `min_bokeh_psnr` dB or
    more, its defocus map within `max_defocus_mae` mean absolute error."""

    min_bokeh_psnr: float
    max_defocus_mae: float

    def failures(self, stats: dict) -> list[str]:
        out = []
        for p in stats["photos"]:
            if (line := nonfinite_failure(p)):
                out.append(f"{p['photo']}: {line}")
            if p["bokeh_psnr"] is not None and p["bokeh_psnr"] < self.min_bokeh_psnr:   # None: identical
                out.append(f"{p['photo']}: bokeh PSNR {p['bokeh_psnr']:.1f} dB < {self.min_bokeh_psnr:g} dB")
            if p["defocus_mae"] > self.max_defocus_mae:
                out.append(f"{p['photo']}: defocus mean |err| {p['defocus_mae']:.4f} > {self.max_defocus_mae:g}")
        return out


GATES = {"float32": Gate(1e-4, 60.0, None), "float16": Gate(None, 45.0, 1e-3), "int8": PhotoGate(30.0, 0.02)}
# A float16 export on LiteRT's GPU accelerator against PyTorch (export-tflite runs it when an
# adapter exists); `gates["accelerator"]` overrides it. 40 dB leaves room for a real GPU's
# fp16 arithmetic, while a layer the accelerator runs wrong comes out near 6 dB.
ACCELERATOR_GATE = Gate(None, 40.0, None)


def scenes(height: int, width: int, count: int = 2) -> list[np.ndarray]:
    """NCHW float32 test inputs with edges, textures and saturated highlights."""
    return [test_scene(height, width, seed)[None].transpose(0, 3, 1, 2).copy() for seed in range(count)]


def nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def run_tflite(path, inputs: dict[str, np.ndarray], threads: int | None = None) -> dict[str, np.ndarray]:
    """Run the `serving_default` signature with LiteRT and XNNPACK, through the runtime's
    own backend layer: the parity gate checks the code path users run."""
    return open_model(path, "litert", threads)(**inputs)
