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

Cross-runtime ratios (LiteRT over ONNX Runtime or PyTorch) and their targets are stated only
on a quiet machine (`judge_load`): contention slows the runtimes unequally (issue 32: LiteRT
int8 / ORT int8 was 1.01 idle and 0.69 loaded, ORT's spinning thread pool losing more), so a
ratio measured under load is not the one a user would see.
"""
from __future__ import annotations

from dataclasses import dataclass

from .backends import HEADLINE
from .efficiency import find, peak_contradicted

FULL_SIZE = [1024, 1536]
LARGE_PHOTO_MEGAPIXELS = 48.0      # issue 12: a 48 MP photo under 1.5 GB
# Above this 1-minute load average per core, from processes other than the bench's own timed
# threads, cross-runtime ratios and targets are not stated. 0.5 on 2 cores is one other busy
# thread on average: enough to turn issue 32's idle LiteRT/ORT int8 ratio of 1.01 into 0.69.
LOAD_LIMIT_PER_CORE = 0.5
NOT_STATED = "not stated"


@dataclass(frozen=True)
class Target:
    id: str
    track: str
    text: str
    limit: float
    unit: str
    at_most: bool = True          # False: the measured value must be at least the limit
    full_size: bool = False       # only meaningful on 1024x1536 frames and the full model
    cross_runtime: bool = False   # a ratio between runtimes: not stated on a loaded machine


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
           0.7, "x", cross_runtime=True),
    Target("gpu-int8-litert-ort", "gpu", "GPU track, LiteRT int8 (low memory) / ORT int8 median (all cores)",
           0.7, "x", cross_runtime=True),
    Target("gpu-int8-on-cpu-latency", "gpu", "GPU track int8 on the CPU (LiteRT XNNPACK low memory, all cores), "
           "median", 1000.0, "ms", full_size=True),
    Target("gpu-large-photo-peak-rss", "gpu", "48 MP JPEG through bokeh-render (gpu track, LiteRT), peak RSS",
           1500.0, "MB", full_size=True),
    Target("gpu-on-cpu-latency", "gpu", "GPU-track model run on the CPU (LiteRT XNNPACK, all cores), avg",
           1500.0, "ms", full_size=True),
    Target("cpu-tflite-ort", "cpu", "CPU track, TFLite/ORT (all cores)", 1.0, "x", cross_runtime=True),
    Target("cpu-tflite-pytorch", "cpu", "CPU track, TFLite/PyTorch (all cores)", 0.5, "x", cross_runtime=True),
    Target("gpu-tflite-ort", "gpu", "GPU track, TFLite/ORT (all cores)", 1.0, "x", cross_runtime=True),
    Target("gpu-tflite-pytorch", "gpu", "GPU track, TFLite/PyTorch (all cores)", 0.5, "x", cross_runtime=True),
    Target("cpu-defocus-efficiency", "cpu", "CPU track, defocus net GFLOP/s as % of GEMM peak", 50.0, "%",
           at_most=False),
    Target("gpu-defocus-efficiency", "gpu", "GPU track, defocus net GFLOP/s as % of GEMM peak", 50.0, "%",
           at_most=False),
    Target("portrait-median-latency", "portrait", "Portrait step (segmenter + portrait model + blend), LiteRT "
           "XNNPACK, all cores, median", 500.0, "ms", full_size=True),
    Target("portrait-peak-rss", "portrait", "Portrait step, LiteRT XNNPACK, all cores, peak RSS", 600.0, "MB",
           full_size=True),
)


def judge_load(before: float, after: float, cores: int, own_threads: int,
               limit: float = LOAD_LIMIT_PER_CORE) -> dict:
    """Was the machine loaded by others while the rows were timed?

    `before` and `after` are the 1-minute load averages just before the first timed row and
    after the last; `after` counts this bench's own timed threads (up to `own_threads`, the
    most it ran), so they are taken off it. The load judged is the larger of the two, and the
    machine is loaded when it exceeds `limit` per core; `not_stated` then says why, else None.
    """
    if cores < 1 or own_threads < 0:
        raise ValueError(f"expected cores >= 1 and own_threads >= 0, got {cores} and {own_threads}")
    others = max(before, after - own_threads, 0.0)
    loaded = others / cores > limit
    return {"load_avg_before": before, "load_avg_after": after, "cores": cores, "own_threads": own_threads,
            "load": others, "per_core": others / cores, "limit_per_core": limit, "loaded": loaded,
            "not_stated": f"machine loaded (load {others:.2f} on {cores} cores)" if loaded else None}


def load_verdict(results: dict) -> dict | None:
    """judge_load on what the suite recorded (results["load"] once the CLI has stored it);
    None where no load was recorded (hand-made results), which is then not judged."""
    if results.get("load"):
        return results["load"]
    m = results.get("machine") or {}
    if m.get("load_avg_before") is None or m.get("load_avg_after") is None or not m.get("cores"):
        return None
    threads = (results.get("protocol") or {}).get("threads") or [m["cores"]]
    return judge_load(m["load_avg_before"], m["load_avg_after"], m["cores"], max(threads))


# The cross-runtime fields of each track's ratio entries (efficiency.ratios, ort_int8.int8_ratios).
CROSS_RUNTIME_FIELDS = {"ratios": ("tflite_ort", "persistent_ort", "tflite_pytorch"),
                        "int8_ratios": ("litert_ort", "persistent_ort")}


def withhold_ratios(results: dict) -> dict:
    """Store the load verdict as results["load"] and, on a loaded machine, blank every
    cross-runtime ratio (None, with `not_stated` saying why) so that no report states it;
    the rows' own latencies stay. Returns `results`."""
    load = results["load"] = load_verdict(results)
    if load and load["loaded"]:
        for track in results["tracks"].values():
            for key, fields in CROSS_RUNTIME_FIELDS.items():
                for r in track.get(key) or []:
                    r.update(dict.fromkeys(fields), not_stated=load["not_stated"])
        web = results.get("web")
        if web:             # the page against bokeh-render (--web), and its target with it
            for r in web["rows"]:
                if "vs_bokeh_render" in r:
                    r.update(vs_bokeh_render=None, not_stated=load["not_stated"])
            web["target"] = None
    return results


def _withheld(target: Target, track: dict, threads: int) -> bool:
    """Whether withhold_ratios blanked the ratio this target reads."""
    key = "int8_ratios" if target.id.endswith("litert-ort") else "ratios"
    return any(r.get("not_stated") and r["threads"] == threads for r in track.get(key) or [])


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
    load = load_verdict(results)
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
            elif target.cross_runtime and load and load["loaded"] and (
                    row["value"] is not None or _withheld(target, track, threads)):
                row["value"], row["note"] = None, f"{NOT_STATED}: {load['not_stated']}"
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
