"""The whole benchmark in one run: artifacts, measurements, and what follows from them.

Each (track, backend, precision, thread count) is measured in its own fresh process
(worker.py), one after another, so no two measurements share a CPU or a heap. Everything
derived (ratios, parity, efficiency, targets) is computed here from those same measurements.

A track is timed on its own export; `--precision` adds LiteRT XNNPACK rows on another
precision's export of the same track (int8 on the cpu track), marked `extra`. The
portrait track is a pipeline (segmenter + render track) that LiteRT alone runs.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..compare import compare
from ..contract import DEFAULT_SIZE, PRECISIONS, TRACKS, artifact_stem, portrait_stem, track_contract
from ..export.plan import ExportPlan
from ..export.tracks import INT8_TRACKS, get_track
from ..host import default_threads, source_commit, tool_versions
from ..model.config import BackboneConfig
from .backends import BACKENDS, CPU_BACKENDS, HEADLINE, PERSISTENT
from .efficiency import efficiency, find, over_peak_warning, precision_ratios, ratios
from .fingerprint import code_fingerprint
from .inputs import track_inputs
from .large_photo import measure_large_photo
from .ort_int8 import BACKEND as ORT_INT8, int8_ratios
from .peak import GEMM_REPS, GEMM_SIZE, combine
from .paper import NO_PAPER_ROW, PAPER_JSON_KEYS, paper_json
from .portrait import FULL_RESOLUTION, NOT_TIMED
from .stats import FIELDS
from .targets import LOAD_LIMIT_PER_CORE, evaluate_targets
from .timing import Protocol

FORMAT = "bokehlite-bench"
FULL_SIZE = DEFAULT_SIZE                                   # AIM 2020 / EBB! frames
SWEEP_SIZES = ((256, 384), (512, 768), FULL_SIZE)
VERSIONS = ("bokehlite", "ai-edge-litert", "onnxruntime", "torch", "numpy")
SAME_MODEL_MAX_ABS = 1e-3   # float32 ONNX Runtime vs PyTorch; the export gate is 1e-4
LOAD_WARNING = 1.0          # 1-minute load average above which the machine was not idle
# The exports just made (or any other work) raise the 1-minute load average, which the load
# rule (targets.py) reads before the first row: at the paper's size, where targets are judged,
# a run waits up to this long for it to fall to the rule's limit, so that its own exports do
# not withhold its ratios (measured: 1.38 on 2 cores right after a full run's exports).
SETTLE_MAX_S = 240
# What --precision may add beside a track's own: every other precision export-tflite makes
# of it (int8 for the cpu track only; the portrait pipeline is timed at its own precision).
EXTRA_PRECISIONS = {t: tuple(p for p in PRECISIONS if p != track_contract(t).precision
                             and (p != "int8" or t in INT8_TRACKS)) for t in TRACKS if t != "portrait"}
# XNNPACK both ways (low memory costs int8 more than float32); builtin int8 would add
# minutes at full size and serves no target.
EXTRA_BACKENDS = (HEADLINE, PERSISTENT)


def own_precision(track: str) -> str:
    """The precision a track is exported at by default."""
    return track_contract(track).precision


class BenchError(RuntimeError):
    """A step failed; the message is one line saying which and why."""


@dataclass
class Settings:
    device: str = "cpu"
    tracks: tuple[str, ...] = ("cpu", "gpu")   # the paper's tracks; "render" is opt-in
    size: tuple[int, int] = FULL_SIZE
    artifacts: Path = Path("artifacts")
    checkpoint: str | None = None
    images: Path | None = None
    protocol: Protocol = field(default_factory=Protocol)
    threads: tuple[int, ...] = ()          # () means (1, all cores)
    sweep_sizes: tuple[tuple[int, int], ...] = ()
    tiny: bool = False                     # tiny backbone (tests); needs its own --artifacts
    adapter: object = None                 # device gpu: runtime.gpu_adapter.Adapter, found by the CLI
    gemm_size: int = GEMM_SIZE             # tests only: smaller products do not reach the peak
    precisions: tuple[str, ...] = ()       # --precision: extra exports to time where a track has them
    profile: bool = False                  # --profile: LiteRT's op profile of each export
    large_photo: tuple[int, int] | None = None   # --large-photo: bokeh-render on one photo this size
    calibration: Path | None = None        # --calibration: ONNX Runtime int8's photos (ort_int8.py)
    command: list[str] = field(default_factory=list)

    def thread_counts(self) -> tuple[int, ...]:
        return self.threads or tuple(sorted({1, default_threads()}))

    def backends(self, track: str | None = None) -> tuple[str, ...]:
        """The track's backends; all of them when `track` is None."""
        if self.device == "gpu":
            return ("litert-gpu",)
        return (HEADLINE,) if track == "portrait" else tuple(CPU_BACKENDS)   # portrait.NOT_TIMED says why

    def extra_precisions(self, track: str) -> tuple[str, ...]:
        """The --precision exports timed beside the track's own (never on --device gpu)."""
        if self.device == "gpu":
            return ()
        return tuple(p for p in self.precisions if p in EXTRA_PRECISIONS.get(track, ()))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    versions = tool_versions(VERSIONS)
    return {"cpu_model": cpu_model(), "cores": default_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions}


def ensure_artifacts(track: str, size: tuple[int, int], settings: Settings,
                     progress: Callable[[str], None], precision: str | None = None) -> dict:
    """Paths and sidecar of the track's export at `size` (at `precision`, default its own),
    exporting first if missing."""
    if track == "portrait":
        return ensure_portrait(size, settings, progress)
    precision = precision or own_precision(track)
    extra = precision != own_precision(track)
    base = settings.artifacts / artifact_stem(track, size, precision)
    # ONNX Runtime runs the own export's .onnx, and quantizes the int8 export's (ort_int8.py).
    onnx = not extra or precision == "int8"
    paths = {s: base.with_suffix(f".{s}") for s in (("tflite", "onnx", "json") if onnx else ("tflite", "json"))}
    label = f"{track} track" + (f" {precision}" if extra else "")
    if not all(p.exists() for p in paths.values()):
        from ..export.pipeline import export_track
        progress(f"{label}: no {'/'.join(base.name + '.' + s for s in paths if s != 'json')} in "
                 f"{settings.artifacts}; exporting (takes minutes)")
        try:
            # Absolute: the converter chdirs into its work folder, so a relative one breaks it.
            plan = ExportPlan.build(track, size, precision=precision, checkpoint=settings.checkpoint,
                                    backbone=BackboneConfig.tiny() if settings.tiny else None)
            export_track(plan, settings.artifacts.resolve(), lambda m: progress(f"  export {label}: {m}"))
        except Exception as exc:   # noqa: BLE001 - ExportError, CheckpointError, OSError
            raise BenchError(f"exporting the {label} failed: {exc}".splitlines()[0]) from None
    sidecar = json.loads(paths["json"].read_text())
    if list(sidecar.get("input_size", [])) != list(size):
        raise BenchError(f"{paths['json']} says input size {sidecar.get('input_size')}, expected {list(size)}")
    if sidecar.get("precision") != precision:
        raise BenchError(f"{paths['json']} says precision {sidecar.get('precision')}, expected {precision}")
    out = {"tflite": str(paths["tflite"]), "onnx": str(paths["onnx"]) if "onnx" in paths else None,
           "sidecar": str(paths["json"]), "precision": precision, "weights": sidecar.get("weights"),
           "checkpoint": sidecar.get("checkpoint"), "sha256": sidecar.get("sha256"),
           "size_bytes": sidecar.get("size_bytes"),
           # The render track has no backbone: --tiny leaves it the real model.
           "tiny_backbone": settings.tiny and get_track(track).preset is not None}
    if "quantization" in sidecar:        # int8: how it was quantized, and its gate on real photos
        photos = sidecar.get("parity", {}).get("real_photos") or {}
        out["quantization"] = {k: sidecar["quantization"].get(k)
                               for k in ("method", "weights", "activations", "calibration")}
        out["real_photos"] = {"count": len(photos.get("photos", [])), "worst": photos.get("worst"),
                              "gate": sidecar.get("parity", {}).get("gate"),
                              "weights": photos.get("weights") or sidecar.get("weights")}
    return out


def ensure_portrait(size: tuple[int, int], settings: Settings, progress: Callable[[str], None]) -> dict:
    """The portrait pipeline at `size` (the portrait model, its sidecar and the segmenter), and
    the full-resolution render-track model it is timed beside, exported first if missing. The
    segmenter comes from the local cache (export/segmenter.py)."""
    path = settings.artifacts / f"{portrait_stem(size)}.json"
    spec = json.loads(path.read_text()) if path.exists() else None
    if spec is not None and spec.get("track") != "portrait":
        spec = None                                 # an older pipeline's sidecar: exported again
    files = [path.with_suffix(".tflite"), path.parent / spec["segmenter"]["file"]] if spec else []
    if spec is None or not all(f.exists() for f in files):
        from ..export.portrait import export_portrait
        progress(f"portrait track: no complete {path.name} pipeline in {settings.artifacts}; "
                 "exporting (takes minutes)")
        try:
            spec = export_portrait(ExportPlan.build("portrait", size, checkpoint=settings.checkpoint),
                                   settings.artifacts.resolve(),
                                   progress=lambda m: progress(f"  export portrait: {m}"))
        except Exception as exc:   # noqa: BLE001 - SegmenterUnavailable, ExportError, OSError
            raise BenchError(f"exporting the portrait track failed: {exc}".splitlines()[0]) from None
    if list(spec.get("input_size", [])) != list(size):
        raise BenchError(f"{path} says input size {spec.get('input_size')}, expected {list(size)}")
    full = ensure_artifacts("render", size, settings, progress)
    return {"pipeline": str(path), "segmenter": str(path.parent / spec["segmenter"]["file"]),
            "tflite": str(path.with_suffix(".tflite")), "onnx": None, "sidecar": str(path),
            "precision": spec["precision"], "weights": spec.get("weights"),
            "checkpoint": spec.get("checkpoint"), "render_scale": spec.get("render_scale"),
            "sha256": {"segmenter": spec["segmenter"]["sha256"], "portrait": spec["sha256"]},
            "segmenter_input": spec["segmenter"]["input"]["shape"][1:3],
            "segmenter_source": spec["segmenter"].get("source"), "tiny_backbone": False,
            "full_resolution": {"tflite": full["tflite"], "sha256": full["sha256"]}}


def run_child(spec: dict, work: Path, threads: int) -> dict:
    """Run worker.py on `spec` in a fresh interpreter; its result, or BenchError."""
    fd, spec_path = tempfile.mkstemp(dir=work, suffix=".spec.json")
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    result_path = Path(spec_path.replace(".spec.json", ".result.json"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-m", "bokehlite.benchmarks.worker", spec_path, str(result_path)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not result_path.exists():
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or [f"exit code {proc.returncode}"]
        what = spec.get("backend", spec["task"])
        raise BenchError(f"{what} ({threads} threads) failed: {lines[-1][:400]}")
    return json.loads(result_path.read_text())


class Suite:
    def __init__(self, settings: Settings, progress: Callable[[str], None]):
        self.s, self.progress, self.t0 = settings, progress, time.perf_counter()
        self.step, self.steps = 0, 0
        self.warnings: list[str] = []
        self.gemm: list[dict] = []

    def say(self, text: str) -> None:
        self.progress(f"{text} ({time.perf_counter() - self.t0:.0f} s)")

    def tick(self, text: str) -> None:
        self.step += 1
        self.say(f"[{self.step}/{self.steps}] {text}")

    def run(self) -> dict:
        s = self.s
        code = code_fingerprint()       # the code as this run imports it, before any row
        threads = s.thread_counts()
        extra_sizes = [size for size in s.sweep_sizes if tuple(size) != tuple(s.size)]
        self.steps = sum((len(s.backends(t)) + (t == "portrait" and s.device == "cpu")
                          + len(s.extra_precisions(t)) * len(EXTRA_BACKENDS) + self.ort_int8_wanted(t)) * len(threads)
                         + self.ort_int8_wanted(t) + len(extra_sizes) for t in s.tracks) + 2 * len(threads)
        if s.profile:
            self.steps += sum(1 + len(s.extra_precisions(t)) for t in s.tracks if t != "portrait")
        self.steps += s.large_photo is not None

        def gemm_peaks(when: str, work: Path) -> list[dict]:
            # Before the first row and after the last, a fresh process per thread count:
            # the better of the two is the peak, so a busy moment cannot lower it.
            out = []
            for t in threads:
                g = run_child({"task": "gemm", "threads": t, "n": s.gemm_size, "reps": GEMM_REPS}, work, t)
                others = "".join(f", {k} {v['gflops']:.1f}" for k, v in g["libraries"].items()
                                 if k != g["library"] and not v.get("absent"))
                self.tick(f"fp32 GEMM peak {when}, {t} thread{'s' if t > 1 else ''}: {g['gflops']:.1f} GFLOP/s "
                          f"({g['library']}{others})")
                out.append(g)
            return out

        with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
            work = Path(tmp)
            artifacts = {t: ensure_artifacts(t, s.size, s, self.progress) for t in s.tracks}
            extras = {t: {p: ensure_artifacts(t, s.size, s, self.progress, p) for p in s.extra_precisions(t)}
                      for t in s.tracks}
            if s.adapter is not None:
                self.say(f"GPU: LiteRT's GPU accelerator on {s.adapter.name} ({s.adapter.backend}, "
                         f"{s.adapter.type})")
                if s.adapter.software:
                    self.warnings.append(
                        f"{s.adapter.name} is a software Vulkan device running on this machine's CPU: "
                        "these are a software device's times, not a phone GPU's")
            inputs = {t: self.write_inputs(work, t, s.size) for t in s.tracks}
            names = inputs[s.tracks[0]][1]
            load_before = self.settle() if tuple(s.size) == tuple(DEFAULT_SIZE) else os.getloadavg()[0]
            if load_before > LOAD_WARNING:
                self.warnings.append(
                    f"the 1-minute load average was {load_before:.1f} when measuring began (an export by this "
                    "run counts too): if other processes were using the CPU, latencies are inflated; "
                    "rerun on an idle machine")
            before = gemm_peaks("before the rows", work)
            tracks = {t: self.measure_track(t, artifacts[t], extras[t], inputs[t], work, threads)
                      for t in s.tracks}
            sweep_rows = self.sweep(tracks, work, max(threads)) if s.sweep_sizes else []
            if s.profile:
                for name, track in tracks.items():
                    self.profile(name, track, work, max(threads))
            if s.large_photo is not None:
                self.large_photo(tracks["gpu"], work, max(threads))
            self.gemm = combine(before, gemm_peaks("after the rows", work))
        for track in tracks.values():
            track["efficiency"] = efficiency(track, self.gemm)
        over_peak = over_peak_warning(tracks)
        if over_peak:
            self.warnings.append(over_peak)
        capped = [f"{name} {r['backend']}{' ' + r['precision'] if r.get('extra') else ''} {r['threads']}t "
                  f"({r['stats']['count']} runs)"
                  for name, track in tracks.items() for r in track["results"] if r.get("capped")]
        capped += [f"sweep {r['track']} {r['size'][0]}x{r['size'][1]} ({r['count']} runs)"
                   for r in sweep_rows if r.get("capped")]
        if code is not None and code_fingerprint() != code:
            self.warnings.append("the code changed while this run measured it (its fingerprint at the start is "
                                 "the one recorded): rows may time different code; rerun")
        if capped:
            self.warnings.append(f"stopped at --max-secs {s.protocol.max_secs:g} s short of --runs "
                                 f"{s.protocol.runs}: " + ", ".join(capped))
        results = {
            "format": FORMAT, "version": 1,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": s.command, "commit": source_commit(), "code": code, "device": s.device,
            "gpu_adapter": s.adapter.to_dict() if s.adapter is not None else None,
            "machine": {**machine(), "load_avg_before": load_before, "load_avg_after": os.getloadavg()[0]},
            "protocol": {**s.protocol.to_dict(), "statistic": "avg", "size": list(s.size),
                         "threads": list(threads), "input": "images" if s.images else "generated",
                         "images": names,
                         "backends": {b: BACKENDS[b] for t in s.tracks for b in s.backends(t)},
                         "precisions": {t: [artifacts[t]["precision"], *extras[t]] for t in s.tracks},
                         "isolation": "one fresh process per track, backend and thread count",
                         "tiny_backbone": any(a["tiny_backbone"] for a in artifacts.values())},
            "gemm_peak": self.gemm, "tracks": tracks, "sweep": sweep_rows, "paper": paper_json(),
            "warnings": self.warnings,
        }
        results["targets"] = evaluate_targets(results)
        return results

    def settle(self, poll_s: float = 5.0) -> float:
        """Wait, at most SETTLE_MAX_S, until the 1-minute load average is within the load rule's
        limit (this run's own exports raise it); return it as it is then."""
        limit = LOAD_LIMIT_PER_CORE * default_threads()
        load, waited = os.getloadavg()[0], 0.0
        if load > limit:
            self.say(f"waiting up to {SETTLE_MAX_S} s for the 1-minute load average ({load:.2f}) to fall to "
                     f"{limit:g} before timing")
        while load > limit and waited < SETTLE_MAX_S:
            time.sleep(poll_s)
            waited += poll_s
            load = os.getloadavg()[0]
        return load

    def write_inputs(self, work: Path, track: str, size: tuple[int, int]) -> tuple[str, list[str], dict]:
        """(.npz of the track's named inputs, image names, what the inputs are)."""
        try:
            arrays, names, about = track_inputs(track, size, self.s.images)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
        path = work / f"inputs_{track}_{size[0]}x{size[1]}.npz"
        np.savez(path, **arrays)
        return str(path), names, about

    def spec(self, track: str, artifact: dict, backend: str, threads: int, inputs: str) -> dict:
        s = self.s
        return {"task": "latency", "backend": backend, "threads": threads, "track": track,
                "tflite": artifact["tflite"], "onnx": artifact["onnx"], "pipeline": artifact.get("pipeline"),
                "tiny": s.tiny,
                "checkpoint": s.checkpoint, "inputs": inputs,
                "adapter": s.adapter.to_json() if backend == "litert-gpu" else None,
                "protocol": s.protocol.to_dict(), "output": None, "analyse": False}

    def measure_track(self, track: str, artifact: dict, extras: dict[str, dict],
                      prepared: tuple[str, list[str], dict], work: Path, threads: tuple[int, ...]) -> dict:
        """Every backend on the track's own export, then each extra precision's export on
        EXTRA_BACKENDS; `extras` maps precision -> artifact."""
        s = self.s
        inputs, _, about = prepared
        out = {"size": list(s.size), "artifact": artifact, "precision": artifact["precision"],
               "extra_artifacts": extras, "inputs": about, "paper_table": PAPER_JSON_KEYS.get(track),
               "results": []}
        if track in NO_PAPER_ROW:
            out["paper_note"] = NO_PAPER_ROW[track]
        if track == "portrait" and s.device == "cpu":
            out["not_timed"] = NOT_TIMED
        runs = [(backend, artifact, None) for backend in s.backends(track)]
        if track == "portrait" and s.device == "cpu":       # the path it replaced, in the same run
            runs.append((FULL_RESOLUTION, artifact, None))
        runs += [(backend, extras[p], p) for p in extras for backend in EXTRA_BACKENDS]
        if "int8" in extras and self.ort_int8_wanted(track):     # ONNX Runtime's int8 beside LiteRT's
            out["ort_int8"] = self.quantize_for_ort(track, extras["int8"], work)
            runs.append((ORT_INT8, {**extras["int8"], "onnx": out["ort_int8"]["onnx"]}, "int8"))
        outputs = {}
        for backend, art, extra in runs:
            precision = extra or (art["precision"] if backend.startswith("litert") else "float32")
            for t in threads:
                spec = self.spec(track, art, backend, t, inputs)
                spec["output"] = str(work / f"{track}_{backend}_{precision}_{t}.npy")
                if backend == "pytorch" and t == max(threads):
                    spec.update(analyse=True, stage_runs=max(1, min(s.protocol.runs, 5)))
                raw = run_child(spec, work, t)
                entry = {"backend": backend, "precision": precision, **({"extra": True} if extra else {}),
                         "threads": t, "init_ms": raw["timing"]["init_ms"],
                         "first_ms": raw["timing"]["first_ms"], "warmup": raw["timing"]["warmup"],
                         "stats": raw["timing"]["steady"], "steady_secs": raw["timing"]["steady_secs"],
                         "capped": raw["timing"]["capped"],
                         "samples_ms": raw["timing"]["samples_ms"], "peak_rss_mb": raw["peak_rss_mb"],
                         "baseline_rss_mb": raw["baseline_rss_mb"], "input_mb": raw["input_mb"]}
                if "split" in raw:
                    entry["split"] = raw["split"]
                out["results"].append(entry)
                outputs[(backend, t, extra)] = spec["output"]
                if "stages" in raw:
                    out["stages"] = {"backend": "pytorch", "threads": t, **raw["stages"]}
                    out["flops"] = raw["flops"]
                st = entry["stats"]
                self.tick(f"{track} {s.size[0]}x{s.size[1]} {backend:<14}{' ' + extra if extra else ''} "
                          f"{t} thread{'s' if t > 1 else ''}: avg {st['avg']:.1f} ms, median {st['median']:.1f} ms "
                          f"({st['count']} runs), peak RSS {entry['peak_rss_mb']:.0f} MB")
        self.check_parity(track, out, outputs)
        out["ratios"] = ratios(out, threads)
        out["precision_ratios"] = precision_ratios(out)
        out["int8_ratios"] = int8_ratios(out)
        out["efficiency"] = None    # set by run(), once the GEMM peak after the last row is known
        return out

    def ort_int8_wanted(self, track: str) -> bool:
        """ONNX Runtime's int8 row goes wherever LiteRT's int8 rows do."""
        return "int8" in self.s.extra_precisions(track)

    def calibration_folder(self, artifact: dict, work: Path) -> Path:
        """The photos ONNX Runtime's int8 calibrates on: --calibration; else those the int8
        export was calibrated on, if it is static; else the built-in set (calibration.py)."""
        if self.s.calibration is not None:
            return self.s.calibration
        recorded = ((artifact.get("quantization") or {}).get("calibration") or {}).get("source")
        if recorded and Path(recorded).is_dir():
            return Path(recorded)
        folder = work / "calibration"
        if not folder.is_dir():
            from ..export.calibration import write_builtin_set
            write_builtin_set(folder)
        return folder

    def quantize_for_ort(self, track: str, artifact: dict, work: Path) -> dict:
        """The int8 export's ONNX graph as ONNX Runtime's static QDQ int8, in a fresh process."""
        folder = self.calibration_folder(artifact, work)
        spec = {"task": "ort-int8", "onnx": artifact["onnx"], "out": str(work / f"{track}_ort_int8.onnx"),
                "calibration": str(folder), "size": list(self.s.size)}
        out = run_child(spec, work, max(self.s.thread_counts()))
        out["onnx"] = spec["out"]
        if self.s.calibration is None and folder.parent == work:
            out["source"] = "built-in: crops of real photos from the scikit-image and matplotlib wheels " \
                            "(export/calibration.py BUILTIN_SOURCES)"
        self.tick(f"{track} ONNX Runtime static QDQ int8: calibrated on {out['photos']} photos in "
                  f"{out['seconds']:.0f} s")
        return out

    def profile(self, name: str, track: dict, work: Path, threads: int) -> None:
        """LiteRT's op profile of the track's export and of each extra precision's, at all
        cores with XNNPACK, in a fresh process: track["profiles"] maps precision -> profile.
        The portrait track has two models and is not profiled (profile each one by hand)."""
        if name == "portrait":
            return
        track["profiles"] = {}
        runs = max(1, min(self.s.protocol.runs, 3))
        for precision, art in ((track["precision"], track["artifact"]), *track["extra_artifacts"].items()):
            prof = run_child({"task": "profile", "tflite": art["tflite"], "threads": threads, "runs": runs},
                             work, threads)
            track["profiles"][precision] = prof
            top = prof["by_type"][0] if prof["by_type"] else {"type": "-", "share": 0.0}
            self.tick(f"{name} {precision} op profile: {prof['whole_model_ms']:.1f} ms, costliest "
                      f"{top['type']} ({100 * top['share']:.0f}%)")

    def large_photo(self, track: dict, work: Path, threads: int) -> None:
        """track["large_photo"]: bokeh-render's time and peak RSS on one generated photo."""
        h, w = self.s.large_photo
        self.say(f"large photo: bokeh-render on a generated {h}x{w} (HxW) JPEG ({h * w / 1e6:.0f} MP)")
        try:
            out = measure_large_photo(Path(track["artifact"]["tflite"]), work, threads, (h, w))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            raise BenchError(str(exc).splitlines()[0]) from None
        track["large_photo"] = out
        self.tick(f"large photo {h}x{w}: {out['seconds']:.1f} s, peak RSS {out['peak_rss_mb']:.0f} MB")

    def check_parity(self, track: str, out: dict, outputs: dict) -> None:
        """Every backend's first output vs PyTorch's: the same model, or a warning.
        `outputs` maps (backend, threads, extra precision or None) to a saved .npy."""
        ref_key = next((k for k in outputs if k[0] == "pytorch"), None)
        if ref_key is None:
            return
        reference = np.load(outputs[ref_key])
        for entry in out["results"]:
            key = (entry["backend"], entry["threads"], entry["precision"] if entry.get("extra") else None)
            entry["vs_pytorch"] = compare(reference, np.load(outputs[key]))
        ort = next((e for e in out["results"] if e["backend"] == "onnxruntime"), None)
        if ort and ort["vs_pytorch"]["max_abs"] > SAME_MODEL_MAX_ABS:
            self.warnings.append(
                f"{track} track: PyTorch output differs from the exported ONNX (max |err| "
                f"{ort['vs_pytorch']['max_abs']:.2e}); the PyTorch model is not the exported one: pass the "
                "--checkpoint (and --tiny) the artifacts were exported with; TFLite/PyTorch compares "
                "different models.")

    def sweep(self, tracks: dict, work: Path, threads: int) -> list[dict]:
        """LiteRT XNNPACK at all cores over input sizes: how time and memory grow."""
        rows = []
        for track in self.s.tracks:
            for size in self.s.sweep_sizes:
                size = tuple(size)
                if size == tuple(self.s.size) and track in tracks:
                    r = find(tracks[track], HEADLINE, threads)
                    stats, rss, capped = r["stats"], r["peak_rss_mb"], r.get("capped", False)
                else:
                    artifact = ensure_artifacts(track, size, self.s, self.progress)
                    inputs, _, _ = self.write_inputs(work, track, size)
                    raw = run_child(self.spec(track, artifact, HEADLINE, threads, inputs), work, threads)
                    stats, rss, capped = raw["timing"]["steady"], raw["peak_rss_mb"], raw["timing"]["capped"]
                    self.tick(f"sweep {track} {size[0]}x{size[1]}: avg {stats['avg']:.1f} ms, "
                              f"peak RSS {rss:.0f} MB")
                rows.append({"track": track, "size": list(size), "megapixels": size[0] * size[1] / 1e6,
                             "backend": HEADLINE, "threads": threads,
                             **{k: stats[k] for k in FIELDS if k != "count"}, "count": stats["count"],
                             "peak_rss_mb": rss, "capped": capped})
        return rows
