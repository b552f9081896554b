"""Latency statistics in TFLite benchmark_model's vocabulary, plus median and p95.

`std` is the population standard deviation, as benchmark_model's Stat reports it.
Percentiles interpolate linearly between closest ranks (NumPy's default method):
the q-th percentile sits at fractional index q/100 * (n - 1) of the sorted samples.
"""
from __future__ import annotations

import math
from typing import Sequence

FIELDS = ("count", "min", "max", "avg", "std", "median", "p95")


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `samples`, linear interpolation."""
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(samples)
    pos = q / 100 * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples_ms: Sequence[float]) -> dict:
    """count, min, max, avg, std (population), median and p95 of timings in ms."""
    if not samples_ms:
        raise ValueError("no timing samples")
    n = len(samples_ms)
    avg = math.fsum(samples_ms) / n
    var = math.fsum((s - avg) ** 2 for s in samples_ms) / n
    return {"count": n, "min": min(samples_ms), "max": max(samples_ms), "avg": avg,
            "std": math.sqrt(var), "median": percentile(samples_ms, 50), "p95": percentile(samples_ms, 95)}
