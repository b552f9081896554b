"""Results -> terminal tables, Markdown report, JSON file and PNG chart.

The tables are built once as Sections (title, header, rows, notes) and rendered
either as aligned text or as Markdown, so both always say the same thing.
Every file is written atomically: a temp file beside the target, then a rename.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write
from .backends import HEADLINE
from .efficiency import find
from .inputs import describe
from .ort_int8 import BACKEND as ORT_INT8, CONFIG as ORT_INT8_CONFIG
from .paper import HARDWARE_NOTE, NO_PAPER_ROW, OUR_PAPER_TEAM, PAPER_TABLES, TABLE9_PYTORCH_GPU_S
from .targets import NOT_STATED, TARGETS, load_verdict
from .web import adapter_name


@dataclass
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _f(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _threads(t: int) -> str:
    return f"{t} thread" + ("s" if t != 1 else "")


def _size(track: dict) -> str:
    return f"{track['size'][0]}x{track['size'][1]}"


def _backend(r: dict) -> str:
    """'litert-xnnpack', or 'litert-xnnpack int8' for a row on an extra precision's export."""
    return r["backend"] + (f" {r['precision']}" if r.get("extra") else "")


def _precision(r: dict, track: dict) -> str:
    """The row's precision; ONNX Runtime's int8 row also names its configuration ('int8 U8S8')."""
    config = (track.get("ort_int8") or {}).get("config")
    if r["backend"] == ORT_INT8 and r.get("extra") and r.get("precision") == "int8" and config:
        return f"int8 {config}"
    return r.get("precision", "-")


def _withheld(results: dict) -> str | None:
    """Why cross-runtime ratios are not stated (targets.judge_load), or None."""
    load = load_verdict(results)
    return load["not_stated"] if load and load["loaded"] else None


def _ratio(x, why: str | None) -> str:
    return NOT_STATED if why else _f(x, 2)


def _withheld_note(results: dict, why: str) -> str:
    limit = load_verdict(results)["limit_per_core"]
    return (f"Cross-runtime ratios {NOT_STATED}: {why}, above {limit:g} per core beside this bench's own "
            "threads. Contention slows runtimes unequally, so a ratio measured under load is not the idle "
            "one; the latencies stay. Rerun on an idle machine.")


def latency_section(results: dict) -> Section:
    header = ["Track", "Backend", "Precision", "Threads", "Init ms", "First ms", "Count", "Min", "Max", "Avg",
              "Std", "Median", "p95", "Peak RSS MB", "PSNR vs PyTorch"]
    rows = []
    for name, track in results["tracks"].items():
        for r in track["results"]:
            st = r["stats"]
            psnr = (r.get("vs_pytorch") or {}).get("psnr", "n/a")
            psnr = "identical" if psnr is None else psnr if isinstance(psnr, str) else f"{psnr:.1f} dB"
            rows.append([f"{name} {_size(track)}", r["backend"], _precision(r, track), str(r["threads"]),
                         _f(r["init_ms"]),
                         _f(r["first_ms"]), str(st["count"]), _f(st["min"]), _f(st["max"]), _f(st["avg"]),
                         _f(st["std"]), _f(st["median"]), _f(st["p95"]), _f(r["peak_rss_mb"], 0), psnr])
    p = results["protocol"]
    source = "images " + ", ".join(p["images"]) if p["input"] == "images" else p["images"][0]
    capped = [f"{name} {_backend(r)} {_threads(r['threads'])}" for name, track in results["tracks"].items()
              for r in track["results"] if r.get("capped")]
    cap = f", each loop stopped after {p['max_secs']:g} s once 1 run was done" if "max_secs" in p else ""
    notes = [f"Latency in ms over the steady-state runs: warm-up >= {p['warmup_runs']} run and >= "
             f"{p['warmup_secs']} s, then >= {p['runs']} runs and >= {p['min_secs']} s{cap}. One image per "
             f"inference: {source}. {p['isolation'].capitalize()}; "
             "peak RSS is that process's high-water mark (VmHWM: interpreter, libraries, model and inputs)."]
    for name, track in results["tracks"].items():
        extra = describe(track.get("inputs") or {})
        if extra:
            notes.append(f"{name} track: every backend also gets {extra}.")
        if track.get("not_timed"):
            notes.append(f"{track['not_timed']}.")
    if capped:
        notes.append(f"Stopped at {p['max_secs']:g} s short of {p['runs']} runs (Count is what ran): "
                     + ", ".join(capped) + ".")
    return Section("Latency per backend", header, rows, notes)


def ratio_section(results: dict) -> Section:
    header = ["Track", "Threads", "TFLite ms", "XNNPACK off ms", "Persistent ms", "ORT ms", "PyTorch ms",
              "TFLite/ORT", "Persistent/ORT", "TFLite/PyTorch"]
    rows, why = [], _withheld(results)
    for name, track in results["tracks"].items():
        for r in track.get("ratios", []):
            off = find(track, "litert-builtin", r["threads"])
            off = off and off["stats"]["avg"]
            rows.append([f"{name} {_size(track)}", str(r["threads"]), _f(r["tflite_ms"]), _f(off),
                         _f(r.get("persistent_ms")), _f(r["ort_ms"]), _f(r["pytorch_ms"]),
                         _ratio(r["tflite_ort"], why), _ratio(r.get("persistent_ort"), why),
                         _ratio(r["tflite_pytorch"], why)])
    notes = ["TFLite = LiteRT with XNNPACK as bokeh-render runs it, in low memory (transient indirection "
             "buffers); Persistent = XNNPACK's default, which keeps them for the whole run (more memory, "
             "less time). Ratios of avg latencies measured in this run; below 1 means TFLite is faster."]
    if why:
        notes.append(_withheld_note(results, why))
    return Section("Headline: TFLite vs ONNX Runtime and PyTorch", header, rows, notes)


def precision_section(results: dict) -> Section:
    """Each extra precision's rows against the track's own export (int8 vs float32)."""
    header = ["Track", "Backend", "Threads", "Precision", "Median ms", "Own", "Own median ms", "Ratio",
              "Peak RSS MB", "Own peak RSS MB"]
    rows, notes = [], []
    for name, track in results["tracks"].items():
        for r in track.get("precision_ratios", []):
            rows.append([f"{name} {_size(track)}", r["backend"], str(r["threads"]), r["precision"], _f(r["ms"]),
                         r["own_precision"], _f(r["own_ms"]), _f(r["ratio"], 2), _f(r["peak_rss_mb"], 0),
                         _f(r["own_peak_rss_mb"], 0)])
        for precision, art in (track.get("extra_artifacts") or {}).items():
            note = f"{name} {precision}: {art['tflite']}"
            q, photos = art.get("quantization"), art.get("real_photos")
            if q:
                note += f", {q['method']} quantization ({q['weights']} weights, {q['activations']} activations)"
            if photos and photos.get("worst"):
                worst, gate = photos["worst"], photos.get("gate") or {}
                psnr = "identical" if worst["bokeh_psnr"] is None else f"{worst['bokeh_psnr']:.1f} dB"
                weights = photos.get("weights") or "unknown"
                note += (f"; export gate on {photos['count']} held-out real photos vs float32 PyTorch, on "
                         f"{weights} weights: worst bokeh PSNR {psnr}, defocus mean |err| "
                         f"{worst['defocus_mae']:.2g} (limits >= {gate.get('min_bokeh_psnr', '-')} dB, <= "
                         f"{gate.get('max_defocus_mae', '-')})")
                if weights != "trained":
                    note += (" (untrained weights: this says little about int8 on a trained model; "
                             "docs/export.md has trained-weights figures)")
            notes.append(note + ".")
    if rows:
        notes.insert(0, "Ratio = median latency on the precision's export over the median on the track's own "
                        "export, same backend and thread count, this run; below 1 means faster. PyTorch runs "
                        f"float32; ONNX Runtime's int8 row is its static QDQ {ORT_INT8_CONFIG} copy of the int8 "
                        "export's ONNX graph (next section); PSNR vs PyTorch is in the latency table.")
    return Section("Precision: extra exports vs the track's own", header, rows, notes)


def int8_section(results: dict) -> Section:
    """LiteRT's int8 beside ONNX Runtime's (ort_int8.py), medians of this run."""
    rows, notes, why, configs = [], [], _withheld(results), set()
    for name, track in results["tracks"].items():
        for r in track.get("int8_ratios", []):
            rows.append([f"{name} {_size(track)}", str(r["threads"]), _f(r["litert_ms"]), _f(r["persistent_ms"]),
                         _f(r["ort_ms"]), _ratio(r["litert_ort"], why), _ratio(r.get("persistent_ort"), why),
                         _f(r["litert_peak_rss_mb"], 0), _f(r["ort_peak_rss_mb"], 0)])
        q = track.get("ort_int8")
        if q and track.get("int8_ratios"):
            configs.add(q.get("config"))
            lite = ((track.get("extra_artifacts") or {}).get("int8") or {}).get("quantization") or {}
            kind = f"{q['format']} {q['config']}" if q.get("config") else q["format"]
            notes.append(f"{name}: ORT int8 = {q['tool']} ({kind}, {', '.join(q['op_types'])} only, "
                         f"activations {q['activations']}, weights {q['weights']}, "
                         f"{q['calibration']}) on the int8 export's ONNX graph, calibrated on {q['photos']} photos "
                         f"({q['source']}) in {q['seconds']:.0f} s; LiteRT int8 = "
                         f"{lite.get('method', 'the int8 export')}.")
    # One configuration across tracks (the usual case) is named in the header too.
    config = configs.pop() if len(configs) == 1 else None
    ort = f"ORT int8 {config} ms" if config else "ORT int8 ms"
    header = ["Track", "Threads", "LiteRT int8 ms", "Persistent int8 ms", ort, "LiteRT/ORT", "Persistent/ORT",
              "LiteRT peak RSS MB", "ORT peak RSS MB"]
    if rows:
        notes.insert(0, "LiteRT int8 = litert-xnnpack on the int8 export, low memory (what bokeh-render ships); "
                        "Persistent = the same with XNNPACK's persistent buffers. Ratios of medians measured in "
                        "this run; below 1 means LiteRT is faster."
                        + (f" ORT int8 is ONNX Runtime at its fastest int8 on x86: QDQ {config}, uint8 "
                           "activations and int8 per-channel weights (ort_int8.py)." if config == ORT_INT8_CONFIG
                           else ""))
        if why:
            notes.append(_withheld_note(results, why))
    return Section("int8: LiteRT vs ONNX Runtime", header, rows, notes)


def portrait_section(results: dict) -> Section:
    """Where a portrait's time goes, and the new step against the full-resolution pipeline it
    replaced (benchmarks/portrait.py), measured in the same run."""
    header = ["Track", "Pipeline", "Threads", "Whole median ms", "Peak RSS MB", "Parts: median ms (% of whole)",
              "Sum of parts ms"]
    rows, notes, by = [], [], {}
    for name, track in results["tracks"].items():
        for r in track["results"]:
            split = r.get("split")
            if not split:
                continue
            whole = r["stats"]["median"]
            parts = {k: v["median"] for k, v in split.items() if isinstance(v, dict)}
            label = "full resolution (before)" if r["backend"].endswith("-fullres") else r["backend"]
            rows.append([f"{name} {_size(track)}", label, str(r["threads"]), _f(whole), _f(r["peak_rss_mb"], 0),
                         ", ".join(f"{k} {_f(ms)} ({_f(100 * ms / whole)}%)" for k, ms in parts.items()),
                         _f(sum(parts.values()))])
            by[(name, r["threads"], r["backend"].endswith("-fullres"))] = r
            if split["no_person_runs"]:
                notes.append(f"{name} {r['backend']} {_threads(r['threads'])}: {split['no_person_runs']} of "
                             f"{r['stats']['count']} runs found no person; bokeh-render would leave such a "
                             "photo unchanged, the benchmark renders it anyway, so the time is a portrait's.")
    for (name, threads, fullres), r in by.items():
        before = by.get((name, threads, True))
        if not fullres and before:
            notes.append(f"{name} {_threads(threads)}: the portrait step takes "
                         f"{r['stats']['median'] / before['stats']['median']:.2f}x the full-resolution "
                         f"pipeline's median time and {r['peak_rss_mb'] / before['peak_rss_mb']:.2f}x its peak RSS.")
    if rows:
        notes.insert(0, "Medians of each part over the same steady-state runs as the whole. Portrait step "
                        "(bokeh-render --portrait): segmenter = both fits and the segmenter; model = the portrait "
                        "model (mask refined, depth, focus, reduced-resolution render); blend = Eq. 9 at the "
                        "photo's resolution. Full resolution (before): segmenter, the host glue (mask sampled "
                        "back, disparity, median focus), the full-resolution render-track model with its fit "
                        "and blend. Peak RSS: each row's own process.")
    return Section("Portrait split: the portrait step vs the full-resolution pipeline", header, rows, notes)


def stage_section(results: dict) -> Section:
    header = ["Track", "Stage", "ms", "% of total", "GFLOP"]
    rows, notes = [], []
    for name, track in results["tracks"].items():
        stages = track.get("stages")
        if not stages:
            continue
        flops = (track.get("flops") or {}).get("stages", {})
        for s in stages["stages"]:
            if s.get("absent"):
                rows.append([f"{name} {_size(track)}", s["name"], "absent", "-", "absent"])
                notes.append(f"{name}: {s['name']} {s['why']}.")
                continue
            gflop = flops.get(s["name"])
            rows.append([f"{name} {_size(track)}", s["name"], _f(s["ms"]), _f(s["percent"]),
                         _f(None if gflop is None else gflop / 1e9, 2)])
        rows.append([f"{name} {_size(track)}", "total", _f(stages["total_ms"]), "100.0",
                     _f((track.get("flops") or {}).get("total", 0) / 1e9, 2)])
        notes.append(f"{name}: measured on PyTorch eager, {_threads(stages['threads'])}, mean of "
                     f"{stages['runs']} forward passes with forward hooks; "
                     f"{stages.get('remainder_stage', 'upsample/blend')} = {stages['remainder']}.")
    return Section("Stage breakdown", header, rows, notes)


def profile_section(results: dict) -> Section:
    """--profile: the costliest op types of each LiteRT export, as LiteRT's profiler names them."""
    header = ["Track", "Op type", "Count", "ms", "% of ops"]
    rows, notes = [], []
    for name, track in results["tracks"].items():
        for precision, prof in (track.get("profiles") or {}).items():
            label = f"{name} {_size(track)} {precision}"
            for t in prof["by_type"][:PROFILE_TOP]:
                rows.append([label, t["type"], str(t["count"]), _f(t["ms"]), _f(100 * t["share"])])
            notes.append(f"{label}: sum of ops {prof['sum_of_ops_ms']:.1f} ms, whole model "
                         f"{prof['whole_model_ms']:.1f} ms; {prof['method']}.")
    if rows:
        notes.append("With XNNPACK, ops carry XNNPACK's names after its own rewrites: 1x1 convolutions "
                     "run as Fully Connected GEMMs, and depthwise kernels over 25 taps as grouped IGEMM "
                     "convolutions.")
    return Section("Op profile (LiteRT, costliest op types)", header, rows, notes)


def large_photo_section(results: dict) -> Section:
    """--large-photo: bokeh-render on one large generated JPEG, whole process."""
    header = ["Track", "Photo (HxW)", "MP", "Backend", "Threads", "Seconds", "Peak RSS MB"]
    rows, notes = [], []
    for name, track in results["tracks"].items():
        photo = track.get("large_photo")
        if photo:
            h, w = photo["size"]
            rows.append([name, f"{h}x{w}", _f(photo["megapixels"], 0), photo["backend"], str(photo["threads"]),
                         _f(photo["seconds"], 2), _f(photo["peak_rss_mb"], 0)])
            notes.append(f"{name}: {photo['method']}; the model is {_size(track)}.")
    return Section("Large photo (bokeh-render)", header, rows, notes)


PROFILE_TOP = 10
OVER_PEAK = "> peak"      # a % of peak over 100: the peak is too low, the figure is not meaningful
OVER_TIME = "> measured"  # a lower bound above the measured time, for the same reason


def _percent_of_peak(row: dict) -> str:
    return OVER_PEAK if row["exceeds_peak"] else _f(row["percent_of_peak"])


def _lower_bound(flops: float, peak: float, row: dict) -> str:
    return OVER_TIME if row["exceeds_peak"] else _f(flops / peak / 1e6)


def _peak_source(g: dict) -> str:
    libraries = " and ".join(k for k, v in g["before"]["libraries"].items() if not v.get("absent"))
    return (f"per thread count, the best of {g['reps']} square fp32 {g['n']}^3 GEMMs in {libraries} (the "
            "faster library), the better of the measurements before and after the rows")


def efficiency_section(results: dict) -> Section:
    header = ["Track", "GFLOP", "Backend", "Threads", "Avg ms", "GFLOP/s", "GEMM peak GFLOP/s",
              "% of peak", "Lower bound ms"]
    rows, flagged = [], False
    gemm = results.get("gemm_peak", [])
    peaks = {g["threads"]: g["gflops"] for g in gemm}
    for name, track in results["tracks"].items():
        eff = track.get("efficiency")
        if not eff:
            continue
        for b in eff["backends"]:
            t = b["threads"]
            rows.append([f"{name} {_size(track)}", _f(eff["flops"] / 1e9, 2), b["backend"], str(t),
                         _f(b["avg_ms"]), _f(b["gflops"]), _f(peaks[t]), _percent_of_peak(b),
                         _lower_bound(eff["flops"], peaks[t], b)])
            flagged |= b["exceeds_peak"]
        d = eff.get("defocus_net")
        if d:
            t = d["threads"]
            rows.append([f"{name} {_size(track)}", _f(d["flops"] / 1e9, 2), "defocus net (pytorch)",
                         str(t), _f(d["ms"]), _f(d["gflops"]), _f(peaks[t]), _percent_of_peak(d),
                         _lower_bound(d["flops"], peaks[t], d)])
            flagged |= d["exceeds_peak"]
    source = _peak_source(gemm[0]) if gemm and "before" in gemm[0] else "the fp32 GEMM peak of this run"
    notes = ["FLOPs: convolutions and matmuls of the PyTorch graph (2 per MAC, torch FlopCounterMode); "
             f"element-wise ops are not counted. Peak: {source}. Lower bound = FLOPs / peak."]
    if flagged:
        notes.append(f"{OVER_PEAK!r} / {OVER_TIME!r}: the row ran faster than the measured GEMM peak allows, "
                     "so the peak is underestimated (or the FLOPs overcounted): its % of peak would exceed 100 "
                     "and its lower bound the measured time; neither is meaningful.")
    return Section("Efficiency", header, rows, notes)


def sweep_section(results: dict) -> Section | None:
    rows = results.get("sweep") or []
    if not rows:
        return None
    out, first = [], {}
    for r in rows:
        base = first.setdefault(r["track"], r)
        out.append([r["track"], f"{r['size'][0]}x{r['size'][1]}", _f(r["megapixels"], 2), _f(r["avg"]),
                    _f(r["avg"] / r["megapixels"]), _f(r["peak_rss_mb"], 0),
                    _f(r["megapixels"] / base["megapixels"]) + "x", _f(r["avg"] / base["avg"]) + "x",
                    _f(r["peak_rss_mb"] / base["peak_rss_mb"], 2) + "x"])
    header = ["Track", "Size", "MP", "Avg ms", "ms/MP", "Peak RSS MB", "Pixels", "Time", "Memory"]
    notes = [f"{rows[0]['backend']}, {_threads(rows[0]['threads'])}; growth relative to the smallest size."]
    return Section("Scaling with input size", header, out, notes)


def our_rows(results: dict, track_name: str) -> list[list[str]]:
    track = results["tracks"].get(track_name)
    if not track:
        return []
    m = results["machine"]
    weights = track["artifact"].get("weights")
    quality = "n/a (untrained)" if weights != "trained" else "not measured"
    rows = []
    for r in track["results"]:
        if r["backend"] == "litert-gpu" and results.get("gpu_adapter"):
            a = results["gpu_adapter"]
            where = f"LiteRT GPU accelerator on {a['name']}" + (" (software)" if a["software"] else "")
            rows.append([f"ours, {track_name} track, {where}, {_size(track)}", "-",
                         quality, quality, _f(r["stats"]["avg"] / 1e3, 3)])
        if r["backend"] == HEADLINE:
            where = ("LiteRT XNNPACK" + (f" {r['precision']}" if r.get("extra") else "") + " on CPU"
                     + (" (no GPU here)" if track_name == "gpu" else ""))
            rows.append([f"ours, {track_name} track, {where}, {m['cpu_model']}, {_threads(r['threads'])}, "
                         f"{_size(track)}", "-", quality, quality, _f(r["stats"]["avg"] / 1e3, 3)])
    return rows


def paper_sections(results: dict) -> list[Section]:
    sections = []
    for track_name, (title, table) in PAPER_TABLES.items():
        rows = [[r.team + (" (the paper)" if r.team == OUR_PAPER_TEAM else ""), _f(r.mos), _f(r.psnr, 2),
                 _f(r.ssim, 4), _f(r.runtime_s, 2)] for r in table]
        rows += our_rows(results, track_name)
        sections.append(Section(f"Paper {title} with this run", ["Team", "MOS", "PSNR", "SSIM", "Runtime s"],
                                rows, [HARDWARE_NOTE]))
    gpu = results["tracks"].get("gpu")
    note = f"Paper Table 9: PyTorch on GPU, inference stage, {TABLE9_PYTORCH_GPU_S} s per image."
    if gpu:
        for r in gpu["results"]:
            if r["backend"] == "pytorch":
                note += (f" Ours, GPU-track model in PyTorch eager on CPU ({results['machine']['cpu_model']}, "
                         f"{_threads(r['threads'])}, {_size(gpu)}): {r['stats']['avg'] / 1e3:.3f} s.")
    sections[-1].notes.append(note)
    for name in results["tracks"]:
        if name in NO_PAPER_ROW:
            sections[-1].notes.append(f"No paper row: {NO_PAPER_ROW[name]}.")
    return sections


def target_section(results: dict) -> Section:
    rows = []
    for t in results["targets"]:
        met = ("met" if t["met"] else "NOT MET") if t["met"] is not None else \
            NOT_STATED if t["note"].startswith(NOT_STATED) else "not evaluated"
        stage = t["costliest_stage"]
        stage = (f"{stage['name']} ({stage['percent']:.0f}%, {stage['backend']}, {_threads(stage['threads'])})"
                 if stage else "-")
        value = "-" if t["value"] is None else f"{t['value']:.2f} {t['unit']}"
        rows.append([t["target"], value, f"{t['comparison']} {t['limit']:g} {t['unit']}", met, stage,
                     t["note"] or "-"])
    m = results["machine"]
    notes = [f"Machine: {m['cpu_model']}, {m['cores']} cores. Targets belong to this benchmark, not to tests."]
    untargeted = [name for name in results["tracks"] if name not in {t.track for t in TARGETS}]
    if untargeted:
        many = len(untargeted) > 1
        notes.append(f"No targets apply to the {' and '.join(untargeted)} track{'s' if many else ''}: "
                     f"{'their' if many else 'its'} timings are informational.")
    return Section("Targets", ["Target", "Measured", "Limit", "Result", "Costliest stage", "Note"], rows, notes)


def _gemm_peak(g: dict) -> str:
    """'161.0 GFLOP/s @ 2 threads (numpy; before 158.2, after 161.0; torch 149.9)'."""
    text = f"{g['gflops']:.1f} GFLOP/s @ {_threads(g['threads'])}"
    if "before" not in g:
        return text
    after = "-" if g["after"] is None else f"{g['after']['gflops']:.1f}"
    losers = [f"{k} {v['gflops']:.1f}" for k, v in g[g["when"]]["libraries"].items()
              if k != g["library"] and not v.get("absent")]
    return (f"{text} ({g['library']}; before {g['before']['gflops']:.1f}, after {after}"
            + "".join(f"; {x}" for x in losers) + ")")


def _load_judgement(load: dict | None) -> str:
    """The machine section's verdict on the load (targets.judge_load)."""
    if load is None:
        return "not judged: no load recorded"
    judged = (f"load {load['load']:.2f} on {load['cores']} cores ({load['per_core']:.2f} per core, limit "
              f"{load['limit_per_core']:g}; the larger of before and after less this bench's own "
              f"{_threads(load['own_threads'])})")
    return f"{NOT_STATED.upper()}: machine loaded, {judged}" if load["loaded"] else f"stated: {judged}"


def _fingerprint(code: dict | None) -> str:
    """'<sha256> (<N> *.py, ... files under ...)': what tests/test_bench_report_fresh.py recomputes."""
    if not code:
        return "unknown (not run from a source tree)"
    return (f"{code['sha256']} (sha256 of the {code['files']} {code['covers']}, as the run read them; "
            "benchmarks/fingerprint.py)")


def machine_section(results: dict) -> Section:
    m, p = results["machine"], results["protocol"]
    rows = [["Measured", f"{results.get('created', '?')} (UTC)"], ["Commit", results.get("commit", "unknown")],
            ["Code fingerprint", _fingerprint(results.get("code"))],
            ["Command", " ".join(results.get("command", []))],
            ["CPU", f"{m['cpu_model']} ({m['cores']} cores)"], ["Platform", m["platform"]],
            ["Load average (1 min)", f"{m['load_avg_before']:.2f} before, {m['load_avg_after']:.2f} after the "
             f"timed rows, on {m['cores']} cores"],
            ["Cross-runtime ratios", _load_judgement(load_verdict(results))],
            ["Device", results["device"]], ["Input size", f"{p['size'][0]}x{p['size'][1]}"],
            ["Threads", ", ".join(map(str, p["threads"]))],
            ["Versions", ", ".join(f"{k} {v}" for k, v in m["versions"].items())],
            ["GEMM peak", "; ".join(_gemm_peak(g) for g in results.get("gemm_peak", [])) or "-"]]
    if results.get("gpu_adapter"):
        a = results["gpu_adapter"]
        rows.insert(4, ["GPU adapter", f"{a['name']} ({a['backend']}, {a['type']})"
                        + (": software, on this CPU" if a["software"] else "")])
    if p.get("tiny_backbone"):
        rows.append(["Model", "TINY test backbone (not the real model)"])
    return Section("Machine and protocol", ["", ""], rows, results.get("warnings", []))


def native_section(results: dict) -> Section | None:
    """--native: bokeh-native beside bokeh-render, end to end, with the host steps' share."""
    native = results.get("native")
    if not native:
        return None
    header = ["Photo (HxW)", "Runtime", "Threads", "End to end ms", "Fit ms", "Model ms", "Blend ms", "Host share"]
    rows = [[r["photo"], r["runtime"], str(r["threads"]), _f(r["wall_ms"], 0), _f(r["fit_ms"], 1),
             _f(r["model_ms"], 0), _f(r["blend_ms"], 1), f"{100 * r['host_share']:.1f}%"] for r in native["rows"]]
    notes = ["Whole commands on a generated JPEG (median of runs); host = the contract's fit and blend."]
    if native.get("target"):
        t = native["target"]
        notes.append(f"Target: host steps <= {100 * t['target']:.0f}% of bokeh-native's whole at 12 MP on 2 "
                     f"threads: {100 * t['host_share']:.1f}% ({'met' if t['met'] else 'NOT MET'}).")
    return Section("bokeh-native beside bokeh-render", header, rows, notes)


def web_section(results: dict) -> Section | None:
    """--web: the page in headless Chromium beside bokeh-render, on one model and photo."""
    web = results.get("web")
    if not web:
        return None
    header = ["Model", "Photo (HxW)", "Runtime", "Ran on", "Threads", "Renders", "Median ms", "First ms", "Model ms",
              "x bokeh-render"]
    rows, notes = [], ["The page's whole render (fit, segmenter, model, blend) and bokeh-render's "
                       "renderer in one process, on one generated JPEG of the model's size; the median of the "
                       "renders after the first. A software WebGPU adapter (SwiftShader) computes on the CPU: "
                       "its times are not a phone GPU's."]
    for r in web["rows"]:
        name = Path(r["model"]).name
        if "error" in r:
            rows.append([name, r["photo"], r["runtime"], r["error"], "", "", "", "", "", ""])
            continue
        ratio = r.get("vs_bokeh_render")
        rows.append([name, r["photo"], r["runtime"], r["ran_on"], str(r["threads"]), str(r["runs"]),
                     _f(r["total_ms"], 0), _f(r["first_ms"], 0), _f(r["model_ms"], 0),
                     "1" if r["runtime"] == "bokeh-render" else (r.get("not_stated") or "-") if ratio is None
                     else f"{ratio:.2f}"])
        if r.get("fallback"):
            notes.append(f"{r['runtime']} fell back: {r['fallback']}")
        if r.get("ran_on") == "webgpu" and r.get("adapter"):
            notes.append(f"WebGPU adapter: {adapter_name(r['adapter'])}.")
    if web.get("target"):
        t = web["target"]
        notes.append(f"Target: the page on wasm within {t['target']:g}x of bokeh-render at 1024x1536 "
                     f"({t['threads']} threads): {t['ratio']:.2f}x ({'met' if t['met'] else 'NOT MET'}).")
    return Section("The web page beside bokeh-render", header, rows, notes)


def sections(results: dict) -> list[Section]:
    out = [machine_section(results), latency_section(results), ratio_section(results),
           precision_section(results), int8_section(results), portrait_section(results), stage_section(results),
           profile_section(results), large_photo_section(results),
           efficiency_section(results), sweep_section(results), native_section(results), web_section(results)]
    out += paper_sections(results)
    out.append(target_section(results))
    return [s for s in out if s is not None and s.rows]


def to_text(secs: list[Section]) -> str:
    lines = []
    for s in secs:
        widths = [max(len(str(c)) for c in col) for col in zip(s.header, *s.rows)]
        fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()   # noqa: E731
        lines += [s.title, "=" * len(s.title)]
        if any(s.header):
            lines += [fmt(s.header), fmt(["-" * w for w in widths])]
        lines += [fmt(r) for r in s.rows] + [f"* {n}" for n in s.notes] + [""]
    return "\n".join(lines)


def to_markdown(secs: list[Section], title: str = "bench-runtime report") -> str:
    esc = lambda c: str(c).replace("|", "\\|")   # noqa: E731
    lines = [f"# {title}", ""]
    for s in secs:
        lines += [f"## {s.title}", "", "| " + " | ".join(esc(h) or " " for h in s.header) + " |",
                  "|" + "|".join("---" for _ in s.header) + "|"]
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in s.rows]
        lines += [""] + [f"- {n}" for n in s.notes] + ([""] if s.notes else [])
    return "\n".join(lines)


def _finite(x):
    """JSON has no inf/nan: they become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_json(path, results: dict) -> None:
    atomic_write(path, (json.dumps(_finite(results), indent=2, allow_nan=False) + "\n").encode())


def write_markdown(path, results: dict) -> None:
    atomic_write(path, (to_markdown(sections(results)) + "\n").encode())


def write_plot(path, results: dict) -> None:
    """Latency per backend and track (all thread counts), and the stage breakdown."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tracks = results["tracks"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    labels, bars = [], {}
    for name, track in tracks.items():
        labels.append(f"{name} {_size(track)}")
        for r in track["results"]:
            bars.setdefault((_backend(r), r["threads"]), {})[labels[-1]] = r["stats"]["avg"]
    width = 0.8 / max(1, len(bars))
    for i, ((backend, threads), values) in enumerate(bars.items()):
        xs = [j + i * width for j in range(len(labels))]
        ax1.bar(xs, [values.get(lab, 0) for lab in labels], width, label=f"{backend}, {_threads(threads)}")
    ax1.set_xticks([j + width * (len(bars) - 1) / 2 for j in range(len(labels))], labels)
    values = [v for per in bars.values() for v in per.values() if v > 0]
    if values and max(values) / min(values) > 20:   # a linear axis would flatten the fast backends
        ax1.set_yscale("log")
    ax1.set_ylabel("avg latency per image (ms)")
    ax1.set_title("Latency per backend")
    # Beside the axes, not over them: inside, the legend hid the tallest bars.
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2, frameon=False)
    staged = [(f"{n} {_size(t)}", t["stages"]) for n, t in tracks.items() if t.get("stages")]
    colours: dict[str, str] = {}    # one colour and one legend entry per stage name, across tracks
    for j, (label, stages) in enumerate(staged):
        left = 0.0
        for s in stages["stages"]:
            if s.get("absent"):    # not drawn: a zero-width bar would read as "0 ms"
                continue
            new = s["name"] not in colours
            colour = colours.setdefault(s["name"], f"C{len(colours)}")
            ax2.barh(j, s["ms"], left=left, color=colour, label=s["name"] if new else None)
            left += s["ms"]
    ax2.set_yticks(range(len(staged)), [lab for lab, _ in staged])
    ax2.set_xlabel("ms per image")
    backend = ", ".join(sorted({f"{s['backend']}, {_threads(s['threads'])}" for _, s in staged}))
    ax2.set_title(f"Stage breakdown ({backend})" if staged else "Stage breakdown (not measured)")
    if staged:
        ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=3, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")     # the legends below the axes too
    plt.close(fig)
    atomic_write(path, buf.getvalue())
