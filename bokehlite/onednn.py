"""Keep torch's oneDNN off its float16 kernels on CPUs with AVX512-FP16.

On a Xeon with `avx512_fp16`, torch 2.13's oneDNN runs a float16 depthwise convolution
(the renderer's blurs in half precision) for minutes: a 21x21 blur of a 7x32x48 tensor
did not finish in 20 s, and took 28 ms with the ISA capped at AVX512_CORE_BF16, which
keeps VNNI and bfloat16. oneDNN reads DNNL_MAX_CPU_ISA when it runs its first primitive,
so this must run before any convolution in the process; `bokehlite.model` calls it on
import. A value the user set is left alone.
"""
from __future__ import annotations

import os

CAP = "AVX512_CORE_BF16"


def has_avx512_fp16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and "avx512_fp16" in line.split() for line in f)
    except OSError:
        return False


def cap_isa_for_float16() -> str | None:
    """Set DNNL_MAX_CPU_ISA where the stall happens and the user set nothing; the value in force."""
    if "DNNL_MAX_CPU_ISA" not in os.environ and has_avx512_fp16():
        os.environ["DNNL_MAX_CPU_ISA"] = CAP
    return os.environ.get("DNNL_MAX_CPU_ISA")
