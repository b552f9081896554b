"""The benchmark's targets (issues 5, 12, 13 and 23), each judged met, not met, or not evaluated.

They belong to the benchmark report, never to tests. A target is evaluated only on
what it speaks about: the latency and memory targets need 1024x1536 frames and the
full model; every target needs the track and backends it names to have been run.
The int8 targets need the int8 rows (--precision float32,int8) beside the float32 ones; they
are judged on what ships, LiteRT XNNPACK in low memory, on medians (issue 23's; they replace
issue 13's avg-based int8 targets), and LiteRT int8 / ORT int8 on ONNX Runtime's int8 row.
Where a target is missed, the track's costliest stage is named. The render track has no
targets; the portrait track's (issue 21) are the whole portrait step's median and peak RSS. The
defocus-efficiency targets are not evaluated when something ran faster than the
measured GEMM peak: the peak is then known to be too low, and % of peak overstated.
"""
from __future__ import annotations

from dataclasses import dataclass

from .backends import HEADLINE
from .efficiency import find, peak_contradicted

FULL_SIZE = [1024, 1536]
LARGE_PHOTO_MEGAPIXELS = 48.0      # issue 12: a 48 MP photo under 1.5 GB


@dataclass(frozen=True)
class Target:
    id: str
    track: str
    text: str
    limit: float
    unit: str
    at_most: bool = True          # False: the measured value must be at least the limit
    full_size: bool = False       # only meaningful on 1024x1536 frames and the full model


TARGETS = (
    Target("cpu-latency", "cpu", "CPU track, LiteRT XNNPACK, all cores, avg latency", 350.0, "ms", full_size=True),
    Target("cpu-peak-rss", "cpu", "CPU track, LiteRT XNNPACK, all cores, peak RSS", 1500.0, "MB", full_size=True),
    Target("cpu-int8-speedup", "cpu", "CPU track, int8/float32 LiteRT XNNPACK median (all cores)", 0.4, "x",
           full_size=True),
    Target("cpu-int8-latency", "cpu", "CPU track int8, LiteRT XNNPACK low memory, all cores, median", 200.0,
           "ms", full_size=True),
    Target("cpu-int8-peak-rss", "cpu", "CPU track int8, LiteRT XNNPACK low memory, all cores, peak RSS", 500.0,
           "MB", full_size=True),
    Target("cpu-int8-litert-ort", "cpu", "CPU track, LiteRT int8 (low memory) / ORT int8 median (all cores)",
           0.7, "x"),
    Target("gpu-int8-litert-ort", "gpu", "GPU track, LiteRT int8 (low memory) / ORT int8 median (all cores)",
           0.7, "x"),
    Target("gpu-int8-on-cpu-latency", "gpu", "GPU track int8 on the CPU (LiteRT XNNPACK low memory, all cores), "
           "median", 1000.0, "ms", full_size=True),
    Target("gpu-large-photo-peak-rss", "gpu", "48 MP JPEG through bokeh-render (gpu track, LiteRT), peak RSS",
           1500.0, "MB", full_size=True),
    Target("gpu-on-cpu-latency", "gpu", "GPU-track model run on the CPU (LiteRT XNNPACK, all cores), avg",
           1500.0, "ms", full_size=True),
    Target("cpu-tflite-ort", "cpu", "CPU track, TFLite/ORT (all cores)", 1.0, "x"),
    Target("cpu-tflite-pytorch", "cpu", "CPU track, TFLite/PyTorch (all cores)", 0.5, "x"),
    Target("gpu-tflite-ort", "gpu", "GPU track, TFLite/ORT (all cores)", 1.0, "x"),
    Target("gpu-tflite-pytorch", "gpu", "GPU track, TFLite/PyTorch (all cores)", 0.5, "x"),
    Target("cpu-defocus-efficiency", "cpu", "CPU track, defocus net GFLOP/s as % of GEMM peak", 50.0, "%",
           at_most=False),
    Target("gpu-defocus-efficiency", "gpu", "GPU track, defocus net GFLOP/s as % of GEMM peak", 50.0, "%",
           at_most=False),
    Target("portrait-median-latency", "portrait", "Portrait step (segmenter + portrait model + blend), LiteRT "
           "XNNPACK, all cores, median", 500.0, "ms", full_size=True),
    Target("portrait-peak-rss", "portrait", "Portrait step, LiteRT XNNPACK, all cores, peak RSS", 600.0, "MB",
           full_size=True),
)


def _measured(target: Target, track: dict) -> float | None:
    threads = max(r["threads"] for r in track["results"])
    lite = find(track, HEADLINE, threads)
    ratio = next((r for r in track.get("ratios", []) if r["threads"] == threads), None)
    defocus = (track.get("efficiency") or {}).get("defocus_net")
    kind = target.id.split("-", 1)[1]
    if kind == "large-photo-peak-rss":
        photo = track.get("large_photo")
        return photo["peak_rss_mb"] if photo and photo["megapixels"] >= LARGE_PHOTO_MEGAPIXELS else None
    if kind == "int8-speedup":
        r = next((r for r in track.get("precision_ratios", []) if r["precision"] == "int8"
                  and r["backend"] == HEADLINE and r["threads"] == threads), None)
        return r["ratio"] if r else None
    if kind in ("int8-peak-rss", "int8-latency", "int8-on-cpu-latency"):
        r = find(track, HEADLINE, threads, "int8")
        return (r["peak_rss_mb"] if kind == "int8-peak-rss" else r["stats"]["median"]) if r else None
    if kind == "int8-litert-ort":
        r = next((r for r in track.get("int8_ratios", []) if r["threads"] == threads), None)
        return r["litert_ort"] if r else None
    if kind == "median-latency":
        return lite["stats"]["median"] if lite else None
    if kind in ("latency", "on-cpu-latency"):
        return lite["stats"]["avg"] if lite else None
    if kind == "peak-rss":
        return lite["peak_rss_mb"] if lite else None
    if kind == "tflite-ort":
        return ratio["tflite_ort"] if ratio else None
    if kind == "tflite-pytorch":
        return ratio["tflite_pytorch"] if ratio else None
    if kind == "defocus-efficiency":
        return defocus["percent_of_peak"] if defocus else None
    raise ValueError(target.id)


def _unmeasurable(target: Target, track: dict) -> str | None:
    """Why the measured value cannot be judged, or None."""
    if not target.id.endswith("defocus-efficiency"):
        return None
    eff = track.get("efficiency") or {}
    defocus = eff.get("defocus_net")
    if not defocus:
        return None
    faster = peak_contradicted(eff, defocus["threads"])
    if not faster:
        return None
    peak = next(p["gemm_gflops"] for p in eff["peak"] if p["threads"] == defocus["threads"])
    return (f"not evaluated: {', '.join(faster)} ran faster than the measured GEMM peak "
            f"({peak:.1f} GFLOP/s at {defocus['threads']} threads), so the peak is underestimated "
            f"and % of peak is not meaningful")


def costliest_stage(track: dict) -> dict | None:
    stages = track.get("stages")
    if not stages:
        return None
    top = max((s for s in stages["stages"] if not s.get("absent")), key=lambda s: s["ms"])
    return {"name": top["name"], "ms": top["ms"], "percent": top["percent"],
            "backend": stages["backend"], "threads": stages["threads"]}


def evaluate_targets(results: dict) -> list[dict]:
    out = []
    for target in TARGETS:
        row = {"id": target.id, "track": target.track, "target": target.text, "limit": target.limit,
               "unit": target.unit, "comparison": "<=" if target.at_most else ">=",
               "value": None, "met": None, "note": "", "costliest_stage": None}
        track = results["tracks"].get(target.track)
        if results.get("device") != "cpu":
            row["note"] = "not evaluated: CPU targets, device is " + str(results.get("device"))
        elif track is None:
            row["note"] = f"not evaluated: the {target.track} track was not run"
        elif target.full_size and (track["size"] != FULL_SIZE or track["artifact"].get("tiny_backbone")):
            row["note"] = "not evaluated: needs the full model on 1024x1536 frames"
        else:
            row["value"] = _measured(target, track)
            threads, cores = max(r["threads"] for r in track["results"]), results.get("machine", {}).get("cores")
            if cores and threads != cores:
                row["note"] = f"measured at {threads} of {cores} cores (--threads)"
            why = _unmeasurable(target, track)
            if why:
                row["value"], row["note"] = None, why
            elif row["value"] is None and "large-photo" in target.id:
                row["note"] = "not evaluated: needs --large-photo (48 MP or more)"
            elif row["value"] is None and target.id.endswith("litert-ort") and find(track, HEADLINE, threads, "int8"):
                row["note"] = "not evaluated: ONNX Runtime's int8 row was not timed"
            elif row["value"] is None and "int8" in target.id:
                row["note"] = "not evaluated: int8 was not timed (--precision float32,int8)"
            elif row["value"] is None:
                row["note"] = "not evaluated: a backend it needs was not measured"
            else:
                ok = row["value"] <= target.limit if target.at_most else row["value"] >= target.limit
                row["met"] = bool(ok)
                if not ok:
                    row["costliest_stage"] = costliest_stage(track)
        out.append(row)
    return out
