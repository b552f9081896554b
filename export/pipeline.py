"""export_track: PyTorch -> ONNX -> simplified ONNX -> TFLite, gated and reported.

It runs an ExportPlan (plan.py: the options, checked) as a sequence of steps, each a function
that returns its part of the report: _build (the PyTorch model), _fp16_arithmetic, _onnx,
_convert, _tflite_parity, _gpu (with _verify_on_accelerator and _verify_on_webgpu), then
_report and _publish.

Everything is built in a temporary folder inside the output folder and renamed into place
only after every gate has passed, so a failed export leaves nothing.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import contract
from ..compare import merge
from ..files import ensure_writable_dir, fsync_dir, fsync_file, remove_stale_work_dirs, sha256, work_dir
from ..host import tool_versions
from ..model.render import blur_separably
from ..tflite_metadata import MetadataError
from . import accelerator, fp16, gpu_check, metadata, onnx_export, parity, photo_gate, quantization, webgpu_check
from .calibration import STATIC_OPS
from .gpu_rewrite import rewrite_for_gpu
from .plan import ExportPlan
from .tflite_inspect import TfliteModel
from .track_model import TrackModel, build_model
from .tracks import example_inputs, input_shapes

TOOLS = ("bokehlite", "torch", "onnx", "onnxruntime", "onnxslim", "onnx2tf", "tensorflow",
         "ai-edge-litert", "numpy")


class ExportError(RuntimeError):
    """A step of the export failed; the message says which and why."""


class GpuRequiredError(ExportError):
    """`require_gpu` was set and there is no Vulkan adapter for LiteRT's GPU accelerator."""


class _Steps:
    """Numbered progress lines on stderr (or a caller's callback)."""

    def __init__(self, total: int, progress: Callable[[str], None] | None):
        self.total, self.n, self.progress, self.t0 = total, 0, progress, time.perf_counter()

    def __call__(self, text: str) -> None:
        self.n += 1
        if self.progress:
            self.progress(f"[{self.n}/{self.total}] {text} ({time.perf_counter() - self.t0:.0f} s)")

    def note(self, text: str) -> None:
        """A line within the current step, unnumbered."""
        if self.progress:
            self.progress(text)


def _torch_outputs(model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outs = model(*(torch.from_numpy(v) for v in inputs.values()))
    return [o.numpy() for o in outs]


def _gate(label: str, precision: str, stats: dict, gates: dict) -> None:
    failures = gates[precision].failures(stats)
    if failures:
        raise ExportError(f"parity gate failed ({label}, {precision}): " + "; ".join(failures))


@dataclass(frozen=True)
class _Built:
    """The PyTorch side of an export: the model as trained, the copy that is exported, and the
    parity inputs with the untouched model's outputs on them."""

    model: TrackModel                   # the reference: untouched, float32
    trained: bool
    inputs: list[dict[str, np.ndarray]]
    reference: list[list[np.ndarray]]   # `model` on each input, contract order
    exported: TrackModel                # separable blurs, and for the GPU rewritten convolutions
    separable: int                      # renderer layers exported as separable passes
    rewrites: list                      # layers rewritten for the GPU (gpu_rewrite.py)


def export_track(plan: ExportPlan, out_dir: str | Path = "artifacts",
                 progress: Callable[[str], None] | None = None) -> dict:
    """Export `plan` (plan.py) into `out_dir`; return its report (also written as the sidecar JSON).

    A float16 (GPU-track) export is rewritten for LiteRT's GPU accelerator (gpu_rewrite.py)
    and, where a Vulkan adapter exists, compiled GPU-only and run on the parity inputs;
    without one, the report says `"verified": false` (GpuRequiredError with `require_gpu`).
    It is then run on WebGPU in headless Chromium with the browser's default limits
    (webgpu_check.py): the report's `webgpu`; without Chromium, `"ran": false`.
    The .tflite carries TFLite Model Metadata and its contract inside (metadata.py); the
    sidecar records both sha256s. Raises CheckpointError for a bad checkpoint and ExportError
    when a step or a gate fails. Nothing is left in `out_dir` on failure.
    """
    out_dir = _prepare(plan, out_dir, progress)
    step = _Steps(9 if plan.for_gpu else 7, progress)
    built = _build(plan, step)
    fp16_arithmetic = _fp16_arithmetic(plan, built)
    with work_dir(out_dir, plan.stem) as tmp:
        work = Path(tmp)
        slim, ort, ort_outputs = _onnx(plan, built, work, step)
        tflite = _convert(plan, slim, work, out_dir, step)
        tflite_parity, quant, lite = _tflite_parity(plan, built, tflite, ort_outputs, step)
        gpu = _gpu(plan, built, tflite, lite, step)
        step("writing the report")
        report = _report(plan, built, tflite, {"onnxruntime_vs_pytorch": ort, **tflite_parity}, gpu, quant,
                         fp16_arithmetic)
        _publish(plan, report, tflite, work, out_dir)
    if progress:
        vs_torch = report["parity"]["tflite_vs_pytorch"]
        psnr = "identical" if vs_torch["psnr"] is None else f"{vs_torch['psnr']:.1f} dB"
        progress(f"wrote {out_dir / plan.stem}.tflite ({report['size_bytes'] / 1e6:.1f} MB, "
                 f"{plan.track.precision}, TFLite vs PyTorch {psnr})")
    return report


def _prepare(plan: ExportPlan, out_dir: str | Path, progress: Callable[[str], None] | None) -> Path:
    """The output folder, writable and rid of interrupted exports' leftovers; with `require_gpu`,
    the GPU adapter a float16 export needs, found before minutes of work."""
    out_dir = ensure_writable_dir(Path(out_dir).resolve())
    stale, freed = remove_stale_work_dirs(out_dir)
    if stale and progress:
        progress(f"removed {stale} temporary folder(s) of interrupted exports from {out_dir} "
                 f"({freed / 1e6:.0f} MB)")
    if plan.for_gpu and plan.require_gpu:
        adapter, reason = accelerator.adapter_or_reason()
        if adapter is None:
            raise GpuRequiredError(reason)
    return out_dir


def _build(plan: ExportPlan, step: _Steps) -> _Built:
    """Step 1: the model, its parity inputs and outputs, and the copy to export."""
    track = plan.track
    what = track.preset or ("portrait" if track.name == "portrait" else "depth-guided renderer")
    step(f"{track.name} track: building the {what} model")
    model, trained = build_model(track, plan.checkpoint, plan.backbone, size=plan.size)
    inputs = [example_inputs(track, plan.size, seed) for seed in range(plan.parity_images)]
    reference = [_torch_outputs(model, x) for x in inputs]
    # The reference above stays the untouched model; the exported copy blurs in separable
    # passes (model/render.py: faster and far lighter on XNNPACK) and, for the GPU, has its
    # convolutions rewritten.
    exported = copy.deepcopy(model)
    separable = blur_separably(exported.net)
    rewrites = rewrite_for_gpu(exported.net) if plan.for_gpu else []
    return _Built(model, trained, inputs, reference, exported, separable, rewrites)


def _fp16_arithmetic(plan: ExportPlan, built: _Built) -> dict | None:
    """The sidecar's `fp16_arithmetic` (None unless float16). A phone GPU stores every tensor in
    float16: emulated on the graph that is exported (separable, rewritten), against the
    untouched float32 model, before any file is written; ExportError when it fails the gate."""
    if not plan.for_gpu:
        return None
    report = fp16.fp16_arithmetic_report(built.exported, built.inputs, built.reference, bfloat16=False)
    report["graph"] = "exported (separable blurs" + (", GPU rewrites)" if built.rewrites else ")")
    if report["failures"]:
        raise ExportError("float16 arithmetic gate failed: " + "; ".join(report["failures"]))
    return report


def _onnx(plan: ExportPlan, built: _Built, work: Path, step: _Steps) -> tuple[Path, dict, list]:
    """Steps 2 and 3: the ONNX graph, then simplified, each gated as float32 against PyTorch:
    (simplified .onnx, the sidecar's `onnxruntime_vs_pytorch`, its outputs)."""
    raw, slim = work / "raw.onnx", work / f"{plan.stem}.onnx"
    step(f"exporting ONNX at {plan.size[0]}x{plan.size[1]}"
         + (f" ({len(built.rewrites)} layer(s) rewritten for the GPU)" if built.rewrites else ""))
    onnx_export.export_onnx(built.exported, input_shapes(plan.track, plan.size), plan.track.outputs, raw)
    _onnx_parity("ONNX Runtime vs PyTorch", raw, built, plan.gates)

    step("simplifying the ONNX graph (onnxslim)")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        onnx_export.simplify_onnx(raw, slim)
    ort, ort_outputs = _onnx_parity("simplified ONNX vs PyTorch", slim, built, plan.gates)
    return slim, ort, ort_outputs


def _onnx_parity(label: str, path: Path, built: _Built, gates: dict) -> tuple[dict, list[list[np.ndarray]]]:
    """Run the ONNX graph on every input, gate it as float32 against PyTorch: (stats, outputs)."""
    outputs = [onnx_export.run_onnx(path, x) for x in built.inputs]
    stats = merge([parity.compare(r, o) for ref, outs in zip(built.reference, outputs)
                   for r, o in zip(ref, outs)])
    _gate(label, "float32", stats, gates)
    return stats, outputs


def _convert(plan: ExportPlan, onnx_path: Path, work: Path, out_dir: Path, step: _Steps) -> Path:
    """Step 4: the onnx2tf + TFLiteConverter child process; its noise goes to a log file,
    which is kept in `out_dir` if the conversion fails. Returns the .tflite in `work`."""
    calibration = plan.calibration
    keep_log = out_dir / f"{plan.stem}.log"
    step(f"converting with onnx2tf to {plan.track.precision} TFLite"
         + (f" (static, calibrating on {len(calibration.photos)} photos)" if calibration else "")
         + f" (log: {keep_log})")
    tflite = work / f"{plan.stem}.tflite"
    log = work / "convert.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    with open(log, "w") as f:
        result = subprocess.run(
            [sys.executable, "-m", "bokehlite.export.tf_convert", str(onnx_path), str(work),
             str(tflite), plan.track.precision, ",".join(plan.track.outputs),
             *([str(calibration.folder)] if calibration else [])],
            stdout=f, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not tflite.exists():
        shutil.copyfile(log, keep_log)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ExportError(f"onnx2tf/TFLite conversion failed (full log: {keep_log}): {tail[0][:300]}")
    return tflite


def _tflite_parity(plan: ExportPlan, built: _Built, tflite: Path, ort_outputs: list,
                   step: _Steps) -> tuple[dict, dict | None, list[dict]]:
    """Step 5: the TFLite model against PyTorch and ONNX Runtime, gated at its precision (int8:
    on held-out real photos instead). Returns (the sidecar's parity figures, its `quantization`
    or None, the TFLite outputs)."""
    step("checking TFLite parity against PyTorch and ONNX Runtime")
    names = plan.track.outputs
    lite = [parity.run_tflite(tflite, {k: parity.nhwc(v) for k, v in x.items()}) for x in built.inputs]
    vs_torch = merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(built.reference, lite)
                      for r, n in zip(ref, names)])
    vs_ort = merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(ort_outputs, lite)
                    for r, n in zip(ref, names)])
    figures = {"tflite_vs_pytorch": vs_torch, "tflite_vs_onnxruntime": vs_ort, "images": len(built.inputs),
               "gate": plan.gates[plan.track.precision].__dict__}
    if plan.track.precision != "int8":
        _gate("TFLite vs PyTorch", plan.track.precision, vs_torch, plan.gates)
        return figures, None, lite
    int8 = _int8_gate(plan, built, tflite, step)     # gated on held-out real photos, not on the scenes above
    return {**figures, "real_photos": int8["real_photos"]}, int8["quantization"], lite


def _int8_gate(plan: ExportPlan, built: _Built, tflite: Path, step: _Steps) -> dict:
    """Check in the flatbuffer that only what should be int8 is, then gate the model on held-out
    real photos against float32 PyTorch: {"quantization": ..., "real_photos": ...}."""
    calibration = plan.calibration
    if calibration is None:          # dynamic range
        quant = quantization.summary(TfliteModel(tflite))
    else:
        quant = quantization.summary(TfliteModel(tflite), "static", STATIC_OPS)
        quant["calibration"] = {"source": str(calibration.folder), "count": len(calibration.photos),
                                "fit": "letterbox as bokeh-render (aspect kept, mirrored)"}
    if quant["problems"]:
        raise ExportError("int8 check failed: " + "; ".join(quant["problems"]))
    try:
        photos = photo_gate.evaluate(tflite, built.model, plan.size)
    except (FileNotFoundError, ValueError) as exc:
        raise ExportError(f"int8 gate: {exc}") from None
    # On untrained weights the figure says little about int8 on a trained model: it says so
    # wherever it is shown (the sidecar, the progress line, the bench report).
    photos["weights"] = "trained" if built.trained else "untrained"
    worst = photos["worst"]
    psnr = "identical" if worst["bokeh_psnr"] is None else f"{worst['bokeh_psnr']:.1f} dB"
    step.note(f"int8 vs float32 PyTorch on {len(photos['photos'])} real photos ({photos['weights']} weights): "
              f"worst bokeh {psnr}, worst defocus mean |err| {worst['defocus_mae']:.2g}")
    _gate("TFLite int8 vs float32 PyTorch on real photos", "int8", photos, plan.gates)
    return {"quantization": quant, "real_photos": photos}


def _gpu(plan: ExportPlan, built: _Built, tflite: Path, lite: list[dict], step: _Steps) -> dict:
    """Steps 6 (and 7 and 8, float16): the TFLite GPU delegate's rules, LiteRT's GPU
    accelerator and WebGPU: the sidecar's `gpu_check`, `gpu_accelerator` and `webgpu`."""
    step("checking TFLite GPU delegate compatibility")
    gpu = gpu_check.check_gpu_compatibility(tflite)
    if plan.for_gpu and not gpu["compatible"]:
        raise ExportError("GPU delegate check failed:\n" + gpu_check.format_problems(gpu))
    if plan.for_gpu:
        step("running it on LiteRT's GPU accelerator, GPU-only")
        on_gpu = _verify_on_accelerator(plan, built, tflite, lite)
        step("running it on WebGPU in headless Chromium (SwiftShader, the browser's default limits)")
        on_webgpu = _verify_on_webgpu(tflite, step)
    else:
        on_gpu = {"verified": False, "reason": f"{plan.track.precision} export: made for the CPU, not run "
                                               "on the GPU accelerator"}
        on_webgpu = {"ran": False, "ok": False, "psnr": None,
                     "reason": f"{plan.track.precision} export: made for the CPU, not run on WebGPU"}
    return {"gpu_check": gpu, "gpu_accelerator": on_gpu, "webgpu": on_webgpu}


def _verify_on_accelerator(plan: ExportPlan, built: _Built, tflite: Path, lite: list[dict]) -> dict:
    """The sidecar's `gpu_accelerator`; ExportError when the accelerator says no."""
    gate = plan.gates.get("accelerator", parity.ACCELERATOR_GATE)
    names = plan.track.outputs
    try:
        return accelerator.verify_export(
            tflite, [{k: parity.nhwc(v) for k, v in x.items()} for x in built.inputs],
            [{n: parity.nhwc(r) for n, r in zip(names, ref)} for ref in built.reference], gate,
            plan.require_gpu, cpu=[{n: out[n] for n in names} for out in lite])
    except accelerator.NoAdapterError as exc:
        raise GpuRequiredError(str(exc)) from None
    except accelerator.AcceleratorError as exc:
        raise ExportError(f"LiteRT's GPU accelerator check failed: {exc}") from None


def _verify_on_webgpu(tflite: Path, step: _Steps) -> dict:
    """The sidecar's `webgpu` (webgpu_check.verify_export); ExportError when the model ran there
    and ran wrong: LiteRT's native accelerator does not apply WebGPU's limits."""
    try:
        return webgpu_check.verify_export(tflite, step.note)
    except webgpu_check.WebGpuError as exc:
        raise ExportError(f"WebGPU check failed (headless Chromium, default limits): {exc}") from None


def _report(plan: ExportPlan, built: _Built, tflite: Path, parity_stats: dict, gpu: dict,
            quant: dict | None, fp16_arithmetic: dict | None) -> dict:
    """The sidecar: the contract's tensors and Eq. 9 settings, as this very model was exported,
    with the figures of every step (`_publish` adds the metadata and the final sha256)."""
    track, size, model = plan.track, plan.size, built.model
    h, w = size
    config = model.net.config if track.preset is not None else None
    lite = TfliteModel(tflite)
    report = {
        "format": contract.SIDECAR_FORMAT, "version": contract.SIDECAR_VERSION,
        "track": track.name, "description": track.contract.description, "preset": track.preset,
        "precision": track.precision, "input_size": [h, w],
        "inputs": list(contract.input_specs(track.inputs, size).values()),
        "outputs": [contract.output_spec(name, parity.nhwc(arr).shape, track.name, track.outputs)
                    for name, arr in zip(track.outputs, built.reference[0])],
        "signature": lite.signatures(),
        "preprocess": {"resize_to": [h, w], "fit": "letterbox: aspect kept, borders mirrored",
                       "interpolation": "area (downscale) / bilinear (upscale)",
                       "color": "RGB", "scale": "divide by 255 (8-bit) or 65535 (16-bit)",
                       "rules": contract.track_rules(track.name, track.bokeh_only)},
        "host": contract.host_parameters(),
        "postprocess": (contract.upsample_postprocess() if track.bokeh_only
                        else contract.postprocess(track.contract.blend_source, *model.eq9)),
        "weights": "trained" if built.trained else ("analytic" if track.preset is None else "untrained"),
        "checkpoint": str(plan.checkpoint) if plan.checkpoint else None,
        "model_config": config.to_dict() if config is not None else None,
        "op_histogram": lite.op_histogram(),
        "parity": parity_stats,
        **gpu,
        "gpu_rewrites": built.rewrites,
        "versions": tool_versions(TOOLS),
        "sha256": sha256(tflite), "size_bytes": tflite.stat().st_size,
    }
    if quant:
        report["quantization"] = quant
    report["separable_blurs"] = built.separable
    if track.preset is None:                       # the depth-guided renderer's layers: 1 full, 2 half size
        report["render_scale"] = track.render_scale
    report.update(plan.sidecar_extra)              # export_portrait: the segmenter it goes with
    report["fp16_arithmetic_psnr"] = fp16_arithmetic["psnr"] if fp16_arithmetic else None
    report["fp16_arithmetic"] = fp16_arithmetic
    return report


def _publish(plan: ExportPlan, report: dict, tflite: Path, work: Path, out_dir: Path) -> None:
    """Put the metadata and the contract inside the .tflite (then the sha256 is the final
    file's), write the sidecar, and move the four files into `out_dir`, on the disk first."""
    stem = plan.stem
    try:
        report["metadata"] = metadata.write_metadata(tflite, report)
    except (ValueError, MetadataError) as exc:
        raise ExportError(f"writing the TFLite Model Metadata failed: {exc}") from None
    report["sha256"], report["size_bytes"] = sha256(tflite), tflite.stat().st_size
    (work / f"{stem}.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    shutil.copyfile(work / "convert.log", work / f"{stem}.log")
    for suffix in (".onnx", ".tflite", ".json", ".log"):
        fsync_file(work / f"{stem}{suffix}")         # on the disk before the rename makes it visible
        os.replace(work / f"{stem}{suffix}", out_dir / f"{stem}{suffix}")
    fsync_dir(out_dir)
