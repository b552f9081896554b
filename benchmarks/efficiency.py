"""What the measurements add up to: TFLite/ORT and TFLite/PyTorch ratios, and achieved
GFLOP/s against this machine's measured GEMM peak."""
from __future__ import annotations

from .backends import HEADLINE


def find(track_result: dict, backend: str, threads: int) -> dict | None:
    for r in track_result["results"]:
        if r["backend"] == backend and r["threads"] == threads:
            return r
    return None


def ratios(track_result: dict, threads: tuple[int, ...]) -> list[dict]:
    """TFLite/ORT and TFLite/PyTorch from the avg latencies of this very run."""
    out = []
    for t in threads:
        lite, builtin = find(track_result, HEADLINE, t), find(track_result, "litert-builtin", t)
        ort, torch_ = find(track_result, "onnxruntime", t), find(track_result, "pytorch", t)
        if not (lite and ort and torch_):
            continue
        avg = lambda r: r["stats"]["avg"]   # noqa: E731
        out.append({"threads": t, "statistic": "avg", "tflite_ms": avg(lite), "ort_ms": avg(ort),
                    "pytorch_ms": avg(torch_), "tflite_ort": avg(lite) / avg(ort),
                    "tflite_pytorch": avg(lite) / avg(torch_),
                    "xnnpack_speedup": avg(builtin) / avg(lite) if builtin else None})
    return out


def efficiency(track_result: dict, gemm: list[dict]) -> dict | None:
    """Achieved GFLOP/s per backend vs the measured GEMM peak at the same thread count."""
    flops, stages = track_result.get("flops"), track_result.get("stages")
    if not flops or not gemm:
        return None
    peak = {g["threads"]: g["gflops"] for g in gemm}
    backends = []
    for r in track_result["results"]:
        if r["threads"] in peak:
            gflops = flops["total"] / (r["stats"]["avg"] / 1e3) / 1e9
            backends.append({"backend": r["backend"], "threads": r["threads"], "avg_ms": r["stats"]["avg"],
                             "gflops": gflops, "percent_of_peak": 100 * gflops / peak[r["threads"]]})
    result = {"flops": flops["total"], "stage_flops": flops["stages"],
              "counted": "convolutions and matmuls (2 FLOPs per MAC), torch FlopCounterMode",
              "peak": [{"threads": t, "gemm_gflops": p, "lower_bound_ms": flops["total"] / p / 1e6}
                       for t, p in sorted(peak.items())],
              "backends": backends}
    defocus = next((s for s in (stages or {}).get("stages", []) if s["name"] == "defocus net"), None)
    if defocus and not defocus.get("absent") and stages["threads"] in peak:
        ms = defocus["ms"]
        gflops = flops["stages"]["defocus net"] / (ms / 1e3) / 1e9
        result["defocus_net"] = {"backend": stages["backend"], "threads": stages["threads"],
                                 "flops": flops["stages"]["defocus net"], "ms": ms, "gflops": gflops,
                                 "percent_of_peak": 100 * gflops / peak[stages["threads"]]}
    return result
