"""This machine's fp32 GEMM peak: the dense-math rate model throughput is compared to.

A square float32 GEMM is about the best-case dense workload, so its best GFLOP/s
stands in for "what these cores can do". Measured too small, too few times or in
one library only, it comes out below what a real model then achieves (issue 12: a
2048^3 torch.mm gave 102.6 GFLOP/s on 2 threads, ONNX Runtime ran the CPU model at
160.7). So: n >= 4096, best of >= 5, in every BLAS library present (torch: MKL or
oneDNN; numpy: OpenBLAS or MKL), and the fastest library is the peak. The suite
measures it in a fresh process per thread count before the first row and after
the last, and keeps the better of the two (`combine`).

numpy's BLAS reads its thread count from the environment when it loads, so the
caller sets OPENBLAS_NUM_THREADS / MKL_NUM_THREADS / OMP_NUM_THREADS (the suite's
run_child does); torch is set here as well.
"""
from __future__ import annotations

import time
from typing import Callable

GEMM_SIZE = 4096
GEMM_REPS = 5
LIBRARIES = ("torch", "numpy")
WARMUP_SIZE = 512     # starts the thread pool and loads the kernels; a 4096 warm-up would cost seconds


def _torch_gemm(n: int, threads: int) -> tuple[Callable[[], object], str]:
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b, c = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g), torch.empty(n, n)
    blas = "MKL" if torch.backends.mkl.is_available() else "built-in BLAS"
    return (lambda: torch.mm(a, b, out=c)), f"torch {torch.__version__} torch.mm ({blas})"


def _numpy_gemm(n: int, threads: int) -> tuple[Callable[[], object], str]:
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:   # noqa: BLE001 - older numpy, or a build without the record
        blas = "BLAS"
    return (lambda: np.matmul(a, b, out=c)), f"numpy {np.__version__} matmul ({blas})"


_GEMMS = {"torch": _torch_gemm, "numpy": _numpy_gemm}


def time_gemm(make: Callable[[int, int], tuple[Callable[[], object], str]], threads: int, n: int, reps: int,
              clock: Callable[[], float] = time.perf_counter) -> dict:
    """Best and median GFLOP/s of `reps` n x n x n fp32 products (after a small warm-up)."""
    make(WARMUP_SIZE, threads)[0]()
    gemm, what = make(n, threads)
    times = []
    for _ in range(reps):
        t0 = clock()
        gemm()
        times.append(clock() - t0)
    flops = 2.0 * n ** 3
    ordered = sorted(times)
    return {"what": what, "reps": reps, "gflops": flops / ordered[0] / 1e9,
            "median_gflops": flops / ordered[len(ordered) // 2] / 1e9, "secs": times}


def gemm_peak(threads: int, n: int = GEMM_SIZE, reps: int = GEMM_REPS,
              libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """The fp32 GEMM peak on `threads` threads: each library's best of `reps`, and the winner.

    A library that is not installed is listed as absent; at least one must be there.
    `n` below GEMM_SIZE is for tests only: small products do not reach the peak.
    """
    if reps < 1 or n < 1:
        raise ValueError(f"need n >= 1 and reps >= 1, got n={n}, reps={reps}")
    per_library: dict[str, dict] = {}
    for name in libraries:
        try:
            per_library[name] = time_gemm(_GEMMS[name], threads, n, reps)
        except ImportError:
            per_library[name] = {"absent": True}
    measured = {k: v for k, v in per_library.items() if not v.get("absent")}
    if not measured:
        raise RuntimeError(f"no BLAS library to measure the GEMM peak with (tried {', '.join(libraries)})")
    best = max(measured, key=lambda k: measured[k]["gflops"])
    return {"threads": threads, "n": n, "reps": reps, "gflops": measured[best]["gflops"], "library": best,
            "libraries": per_library}


def combine(before: list[dict], after: list[dict]) -> list[dict]:
    """Per thread count, the better of the measurements before and after the rows.

    Each entry keeps `threads`, `gflops` (the peak used for efficiency), `library` and
    `when` (which measurement won), and both measurements in full.
    """
    later = {g["threads"]: g for g in after}
    out = []
    for b in before:
        a = later.get(b["threads"])
        best, when = (a, "after") if a and a["gflops"] > b["gflops"] else (b, "before")
        out.append({"threads": b["threads"], "gflops": best["gflops"], "library": best["library"], "when": when,
                    "n": best["n"], "reps": best["reps"], "before": b, "after": a})
    return out
