"""Output comparison for parity gates and benchmarks: one definition of max |err| and PSNR,
and one policy for values that are not numbers.

A value that is NaN or infinite (on either side) counts as off by the full scale, and
the share of such values is reported as `nonfinite`; every gate fails when it is above
zero. So the figures stay finite numbers (strict JSON, which has no NaN), and a phone GPU
that overflows float16 can never pass a gate because `NaN > limit` is False.

PSNR is None for identical outputs (infinite), so every report stays valid JSON: strict
JSON parsers, Kotlin's and JavaScript's among them, reject `Infinity`.
"""
from __future__ import annotations

import math

import numpy as np


def abs_error(reference: np.ndarray, candidate: np.ndarray, peak: float = 1.0) -> tuple[np.ndarray, float]:
    """(|candidate - reference| as float64, with `peak` wherever either is not finite;
    the share of such values)."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch {candidate.shape} vs {reference.shape}")
    ref, got = reference.astype(np.float64), candidate.astype(np.float64)
    bad = ~(np.isfinite(ref) & np.isfinite(got))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(ref - got)
    if bad.any():
        err[bad] = peak
    return err, float(bad.mean()) if err.size else 0.0


def compare(reference: np.ndarray, candidate: np.ndarray, peak: float = 1.0) -> dict:
    """Error of `candidate` against `reference` (same shape, values ~[0, peak]): max_abs,
    psnr (dB against `peak`; None when identical), off_fraction (share of values off by
    more than peak/255) and nonfinite (share of NaN or inf values, counted as full scale)."""
    err, nonfinite = abs_error(reference, candidate, peak)
    mse = float(np.mean(err ** 2)) if err.size else 0.0
    return {"max_abs": float(err.max()) if err.size else 0.0,
            "psnr": None if mse == 0 else float(10 * np.log10(peak ** 2 / mse)),
            "off_fraction": float(np.mean(err > peak / 255)) if err.size else 0.0,
            "nonfinite": nonfinite}


def worst_psnr(values) -> float | None:
    """The lowest PSNR; None (identical) only when every comparison was identical. A value
    that is not a finite number counts as the worst (0 dB), whatever its place."""
    given = [v for v in values if v is not None]
    return min((v if math.isfinite(v) else 0.0 for v in given), default=None)


def _worst(values) -> float:
    """The largest error; not-a-number anywhere makes it infinite, never lost in the order."""
    values = list(values)
    return math.inf if any(not math.isfinite(v) for v in values) else max(values)


def merge(stats: list[dict]) -> dict:
    """Worst case over several comparisons."""
    return {"max_abs": _worst(s["max_abs"] for s in stats), "psnr": worst_psnr(s["psnr"] for s in stats),
            "off_fraction": _worst(s["off_fraction"] for s in stats),
            "nonfinite": _worst(s.get("nonfinite", 0.0) for s in stats)}


def nonfinite_failure(stats: dict) -> str | None:
    """The one-line failure every gate reports for NaN or inf outputs; None when there are none."""
    share = stats.get("nonfinite", 0.0)
    if share == 0:
        return None
    return f"{100 * share:.4f}% of values are NaN or infinite"
