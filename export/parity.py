"""Parity gates: PyTorch vs ONNX Runtime vs TFLite on generated scenes.

float32 must match PyTorch to max |err| <= 1e-4 and PSNR >= 60 dB; float16 to
PSNR >= 45 dB with fewer than 0.1% of values off by more than 1/255.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.synthetic import test_scene


@dataclass(frozen=True)
class Gate:
    max_abs: float | None
    min_psnr: float
    max_off_fraction: float | None   # fraction of values off by more than 1/255

    def failures(self, stats: dict) -> list[str]:
        out = []
        if self.max_abs is not None and stats["max_abs"] > self.max_abs:
            out.append(f"max |err| {stats['max_abs']:.2e} > {self.max_abs:.0e}")
        if stats["psnr"] < self.min_psnr:
            out.append(f"PSNR {stats['psnr']:.1f} dB < {self.min_psnr:.0f} dB")
        if self.max_off_fraction is not None and stats["off_fraction"] >= self.max_off_fraction:
            out.append(f"{100 * stats['off_fraction']:.3f}% of values off by > 1/255 "
                       f"(limit {100 * self.max_off_fraction:.1f}%)")
        return out


GATES = {"float32": Gate(1e-4, 60.0, None), "float16": Gate(None, 45.0, 1e-3)}


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Error statistics of `candidate` against `reference` (same shape, values ~[0, 1])."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch {candidate.shape} vs {reference.shape}")
    err = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    mse = float(np.mean(err ** 2))
    return {"max_abs": float(err.max()), "psnr": float("inf") if mse == 0 else 10 * np.log10(1.0 / mse),
            "off_fraction": float(np.mean(err > 1.0 / 255))}


def merge(stats: list[dict]) -> dict:
    """Worst case over several comparisons."""
    return {"max_abs": max(s["max_abs"] for s in stats), "psnr": min(s["psnr"] for s in stats),
            "off_fraction": max(s["off_fraction"] for s in stats)}


def scenes(height: int, width: int, count: int = 2) -> list[np.ndarray]:
    """NCHW float32 test inputs with edges, textures and saturated highlights."""
    return [test_scene(height, width, seed)[None].transpose(0, 3, 1, 2).copy() for seed in range(count)]


def nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def run_tflite(path, inputs: dict[str, np.ndarray], threads: int | None = None) -> dict[str, np.ndarray]:
    """Run the `serving_default` signature with LiteRT (XNNPACK on, as users run it)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner("serving_default")
    return runner(**inputs)
