"""Output comparison for parity gates and benchmarks: one definition of max |err| and PSNR.

PSNR is None for identical outputs (infinite), so every report stays valid JSON: strict
JSON parsers, Kotlin's and JavaScript's among them, reject `Infinity`.
"""
from __future__ import annotations

import numpy as np


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Error of `candidate` against `reference` (same shape, values ~[0, 1]): max_abs,
    psnr (dB, peak 1; None when identical) and off_fraction (share of values off by > 1/255)."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch {candidate.shape} vs {reference.shape}")
    err = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    mse = float(np.mean(err ** 2))
    return {"max_abs": float(err.max()), "psnr": None if mse == 0 else float(10 * np.log10(1.0 / mse)),
            "off_fraction": float(np.mean(err > 1.0 / 255))}


def worst_psnr(values) -> float | None:
    """The lowest PSNR; None (identical) only when every comparison was identical."""
    finite = [v for v in values if v is not None]
    return min(finite) if finite else None


def merge(stats: list[dict]) -> dict:
    """Worst case over several comparisons."""
    return {"max_abs": max(s["max_abs"] for s in stats), "psnr": worst_psnr(s["psnr"] for s in stats),
            "off_fraction": max(s["off_fraction"] for s in stats)}
