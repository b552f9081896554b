"""This machine's fp32 GEMM peak, measured in the same run as the models.

A square float32 torch.mm (MKL/oneDNN on x86) is about the best-case dense
workload; its best GFLOP/s is the "peak" that model throughput is compared to.
"""
from __future__ import annotations

import time

GEMM_SIZE = 2048


def gemm_peak(threads: int, n: int = GEMM_SIZE, min_secs: float = 0.5, min_reps: int = 3) -> dict:
    """Best and median GFLOP/s of an n x n x n fp32 matmul on `threads` threads."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)    # warm-up: thread pool and packing buffers
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_secs:
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n ** 3
    times.sort()
    return {"threads": threads, "n": n, "reps": len(times), "library": "torch.mm float32",
            "gflops": flops / times[0] / 1e9, "median_gflops": flops / times[len(times) // 2] / 1e9}
