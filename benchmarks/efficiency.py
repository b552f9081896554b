"""What the measurements add up to: TFLite/ORT and TFLite/PyTorch ratios, each extra
precision against the track's own (int8/float32), and achieved GFLOP/s against this
machine's measured GEMM peak.

Rows timed on an extra precision's export (`--precision`, marked `extra`) take part in
the precision ratios only: every other figure speaks about the track's own export.
"""
from __future__ import annotations

from .backends import HEADLINE, PERSISTENT


def find(track_result: dict, backend: str, threads: int, precision: str | None = None) -> dict | None:
    """The row of `backend` at `threads`: of the track's own export, or of the extra `precision`."""
    for r in track_result["results"]:
        if r["backend"] == backend and r["threads"] == threads and \
                (r.get("precision") == precision if precision else not r.get("extra")):
            return r
    return None


def precision_ratios(track_result: dict) -> list[dict]:
    """Each extra-precision row's median over the own export's, same backend and thread count."""
    out = []
    for r in track_result["results"]:
        own = find(track_result, r["backend"], r["threads"]) if r.get("extra") else None
        if own:
            out.append({"precision": r["precision"], "own_precision": own.get("precision"),
                        "backend": r["backend"], "threads": r["threads"], "statistic": "median",
                        "ms": r["stats"]["median"], "own_ms": own["stats"]["median"],
                        "ratio": r["stats"]["median"] / own["stats"]["median"],
                        "peak_rss_mb": r["peak_rss_mb"], "own_peak_rss_mb": own["peak_rss_mb"]})
    return out


def ratios(track_result: dict, threads: tuple[int, ...]) -> list[dict]:
    """TFLite/ORT and TFLite/PyTorch from the avg latencies of this very run."""
    out = []
    for t in threads:
        lite, builtin = find(track_result, HEADLINE, t), find(track_result, "litert-builtin", t)
        persistent = find(track_result, PERSISTENT, t)
        ort, torch_ = find(track_result, "onnxruntime", t), find(track_result, "pytorch", t)
        if not (lite and ort and torch_):
            continue
        avg = lambda r: r["stats"]["avg"]   # noqa: E731
        out.append({"threads": t, "statistic": "avg", "tflite_ms": avg(lite), "ort_ms": avg(ort),
                    "pytorch_ms": avg(torch_), "tflite_ort": avg(lite) / avg(ort),
                    "tflite_pytorch": avg(lite) / avg(torch_),
                    "xnnpack_speedup": avg(builtin) / avg(lite) if builtin else None,
                    # What low memory costs: XNNPACK with its default, persistent indirection buffers.
                    "persistent_ms": avg(persistent) if persistent else None,
                    "persistent_ort": avg(persistent) / avg(ort) if persistent else None})
    return out


def achieved_gflops(flops: float, avg_ms: float) -> float:
    return flops / (avg_ms / 1e3) / 1e9


def efficiency(track_result: dict, gemm: list[dict]) -> dict | None:
    """Achieved GFLOP/s per backend vs the measured GEMM peak at the same thread count.

    A row that ran faster than the peak is flagged `exceeds_peak`: the peak is then
    known to be too low (or the FLOPs too high), so its % of peak (over 100) and the
    lower bound at that thread count (above a measured time) mean nothing; the peak
    entry lists those rows under `faster_than_bound`.
    """
    flops, stages = track_result.get("flops"), track_result.get("stages")
    if not flops or not gemm:
        return None
    peak = {g["threads"]: g["gflops"] for g in gemm}
    backends = []
    for r in track_result["results"]:
        t = r["threads"]
        if t in peak and not r.get("extra"):   # int8 arithmetic is not measured against an fp32 peak
            gflops = achieved_gflops(flops["total"], r["stats"]["avg"])
            backends.append({"backend": r["backend"], "threads": t, "avg_ms": r["stats"]["avg"],
                             "gflops": gflops, "percent_of_peak": 100 * gflops / peak[t],
                             "exceeds_peak": gflops > peak[t]})
    result = {"flops": flops["total"], "stage_flops": flops["stages"],
              "counted": "convolutions and matmuls (2 FLOPs per MAC), torch FlopCounterMode",
              "peak": [{"threads": t, "gemm_gflops": p, "lower_bound_ms": flops["total"] / p / 1e6,
                        "faster_than_bound": [b["backend"] for b in backends if b["threads"] == t
                                              and b["exceeds_peak"]]}
                       for t, p in sorted(peak.items())],
              "backends": backends}
    defocus = next((s for s in (stages or {}).get("stages", []) if s["name"] == "defocus net"), None)
    if defocus and not defocus.get("absent") and stages["threads"] in peak:
        ms, t = defocus["ms"], stages["threads"]
        gflops = achieved_gflops(flops["stages"]["defocus net"], ms)
        result["defocus_net"] = {"backend": stages["backend"], "threads": t,
                                 "flops": flops["stages"]["defocus net"], "ms": ms, "gflops": gflops,
                                 "percent_of_peak": 100 * gflops / peak[t], "exceeds_peak": gflops > peak[t]}
    return result


def peak_contradicted(eff: dict | None, threads: int) -> list[str]:
    """What ran faster than the GEMM peak at `threads` (backends, and the defocus net)."""
    if not eff:
        return []
    out = [b["backend"] for b in eff["backends"] if b["threads"] == threads and b["exceeds_peak"]]
    d = eff.get("defocus_net")
    if d and d["threads"] == threads and d["exceeds_peak"]:
        out.append(f"defocus net ({d['backend']})")
    return out


def over_peak_warning(tracks: dict) -> str | None:
    """One line naming every row that ran faster than the measured GEMM peak, or None."""
    over = []
    for name, track in tracks.items():
        eff = track.get("efficiency")
        if not eff:
            continue
        peak = {p["threads"]: p["gemm_gflops"] for p in eff["peak"]}
        rows = [(b["backend"], b) for b in eff["backends"]]
        if eff.get("defocus_net"):
            rows.append((f"defocus net ({eff['defocus_net']['backend']})", eff["defocus_net"]))
        over += [f"{name} {label} {r['threads']}t {r['gflops']:.1f} > {peak[r['threads']]:.1f}"
                 for label, r in rows if r["exceeds_peak"]]
    if not over:
        return None
    return ("achieved GFLOP/s above the measured fp32 GEMM peak (" + "; ".join(over) + "): the peak is "
            "underestimated (or the FLOP count too high), so those % of peak and lower bounds are flagged, "
            "not meaningful, and the defocus-efficiency targets are not evaluated")
