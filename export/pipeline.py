"""export_track: PyTorch -> ONNX -> simplified ONNX -> TFLite, gated and reported.

Everything is built in a temporary folder inside the output folder and renamed
into place only after every gate has passed, so a failed export leaves nothing.
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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import contract
from ..compare import merge
from ..files import ensure_writable_dir, fsync_dir, fsync_file, remove_stale_work_dirs, sha256, work_dir
from ..host import tool_versions
from ..model import BackboneConfig
from ..model.render import blur_separably
from ..tflite_metadata import MetadataError
from . import accelerator, fp16, gpu_check, metadata, onnx_export, parity, photo_gate, quantization
from .calibration import STATIC_OPS, check_folder
from .gpu_rewrite import rewrite_for_gpu
from .tflite_inspect import TfliteModel
from .track_model import TrackModel, build_model
from .tracks import Track, check_size, example_inputs, get_track, input_shapes

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


def _torch_outputs(model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outs = model(*(torch.from_numpy(v) for v in inputs.values()))
    return [o.numpy() for o in outs]


def _gate(label: str, precision: str, stats: dict, gates: dict) -> None:
    failures = gates[precision].failures(stats)
    if failures:
        raise ExportError(f"parity gate failed ({label}, {precision}): " + "; ".join(failures))


def _int8_gate(tflite: Path, model: TrackModel, size, gates: dict, progress, calib, trained: bool) -> dict:
    """Check in the flatbuffer that only what should be int8 is, then gate the model on held-out
    real photos against float32 PyTorch: {"quantization": ..., "real_photos": ...}.
    `calib`: (folder, photos) of a static export, None for dynamic range."""
    if calib is None:
        quant = quantization.summary(TfliteModel(tflite))
    else:
        quant = quantization.summary(TfliteModel(tflite), "static", STATIC_OPS)
        quant["calibration"] = {"source": str(calib[0]), "count": len(calib[1]),
                                "fit": "letterbox as bokeh-render (aspect kept, mirrored)"}
    if quant["problems"]:
        raise ExportError("int8 check failed: " + "; ".join(quant["problems"]))
    try:
        photos = photo_gate.evaluate(tflite, model, size)
    except (FileNotFoundError, ValueError) as exc:
        raise ExportError(f"int8 gate: {exc}") from None
    # On untrained weights the figure says little about int8 on a trained model: it says so
    # wherever it is shown (the sidecar, the progress line, the bench report).
    photos["weights"] = "trained" if trained else "untrained"
    if progress:
        worst = photos["worst"]
        psnr = "identical" if worst["bokeh_psnr"] is None else f"{worst['bokeh_psnr']:.1f} dB"
        progress(f"int8 vs float32 PyTorch on {len(photos['photos'])} real photos ({photos['weights']} weights): "
                 f"worst bokeh {psnr}, worst defocus mean |err| {worst['defocus_mae']:.2g}")
    _gate("TFLite int8 vs float32 PyTorch on real photos", "int8", photos, gates)
    return {"quantization": quant, "real_photos": photos}


def _onnx_parity(label: str, path: Path, inputs: list[dict], reference: list[list[np.ndarray]],
                 gates: dict) -> tuple[dict, list[list[np.ndarray]]]:
    """Run the ONNX graph on every input, gate it as float32 against PyTorch: (stats, outputs)."""
    outputs = [onnx_export.run_onnx(path, x) for x in inputs]
    stats = merge([parity.compare(r, o) for ref, outs in zip(reference, outputs)
                   for r, o in zip(ref, outs)])
    _gate(label, "float32", stats, gates)
    return stats, outputs


def _convert(onnx_path: Path, workdir: Path, tflite_path: Path, track: Track, keep_log: Path,
             calibration: Path | None = None) -> None:
    """Run the onnx2tf + TFLiteConverter child process; its noise goes to a log file,
    which is kept at `keep_log` if the conversion fails."""
    log = workdir / "convert.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    with open(log, "w") as f:
        result = subprocess.run(
            [sys.executable, "-m", "bokehlite.export.tf_convert", str(onnx_path), str(workdir),
             str(tflite_path), track.precision, ",".join(track.outputs),
             *([str(calibration)] if calibration else [])],
            stdout=f, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not tflite_path.exists():
        shutil.copyfile(log, keep_log)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ExportError(f"onnx2tf/TFLite conversion failed (full log: {keep_log}): {tail[0][:300]}")


def export_track(track_name: str, size: tuple[int, int] = contract.DEFAULT_SIZE,
                 out_dir: str | Path = "artifacts", checkpoint: str | Path | None = None, backbone: BackboneConfig | None = None,
                 progress: Callable[[str], None] | None = None, gates: dict | None = None,
                 parity_images: int = 2, precision: str | None = None, require_gpu: bool = False,
                 calibration: str | Path | None = None, outputs: tuple[str, ...] | None = None,
                 render_scale: int = 1, extra: dict | None = None) -> dict:
    """Export one track; return its report (also written as the sidecar JSON).

    A float16 (GPU-track) export is rewritten for LiteRT's GPU accelerator (gpu_rewrite.py)
    and, where a Vulkan adapter exists, compiled GPU-only and run on the parity inputs;
    without one, the report says `"verified": false` (GpuRequiredError with `require_gpu`).
    `outputs`: None for all of the track's outputs, ("bokeh",) for the one-output variant
    (bokeh_<track>_<H>x<W>[_<precision>]_bokeh.*). The .tflite carries TFLite Model Metadata
    and its contract inside (metadata.py); the sidecar records both sha256s.
    Raises ValueError for bad arguments, CheckpointError for a bad checkpoint and
    ExportError when a step or a gate fails. Nothing is left in `out_dir` on failure.
    """
    track = get_track(track_name, precision, outputs, render_scale)
    size = (int(size[0]), int(size[1]))
    check_size(track, size)
    calib = None        # static int8 (calibration.py): (folder, photos), checked before minutes of work
    if calibration is not None:
        if track.precision != "int8":
            raise ValueError("--calibration is only for --precision int8")
        calib = (Path(calibration).resolve(), check_folder(calibration))
    out_dir = ensure_writable_dir(Path(out_dir).resolve())
    gates = gates or parity.GATES
    stem = contract.artifact_stem(track.name, size, track.precision, track.outputs,
                                  render_scale if track.name == "render" else 1)
    stale, freed = remove_stale_work_dirs(out_dir)
    if stale and progress:
        progress(f"removed {stale} temporary folder(s) of interrupted exports from {out_dir} "
                 f"({freed / 1e6:.0f} MB)")
    for_gpu = track.precision == "float16"
    if for_gpu and require_gpu:
        adapter, reason = accelerator.adapter_or_reason()       # before minutes of work
        if adapter is None:
            raise GpuRequiredError(reason)
    step = _Steps(8 if for_gpu else 7, progress)

    what = track.preset or ("portrait" if track.name == "portrait" else "depth-guided renderer")
    step(f"{track.name} track: building the {what} model")
    model, trained = build_model(track, checkpoint, backbone, size=size)
    inputs = [example_inputs(track, size, seed) for seed in range(parity_images)]
    reference = [_torch_outputs(model, x) for x in inputs]
    # The reference above stays the untouched model; the exported copy blurs in separable
    # passes (model/render.py: faster and far lighter on XNNPACK) and, for the GPU, has its
    # convolutions rewritten.
    exported = copy.deepcopy(model)
    separable = blur_separably(exported.net)
    rewrites = rewrite_for_gpu(exported.net) if for_gpu else []
    fp16_arithmetic = None
    if for_gpu:         # a phone GPU stores every tensor in float16: emulated on the graph that is
        # exported (separable, rewritten), against the untouched float32 model, before any file
        fp16_arithmetic = fp16.fp16_arithmetic_report(exported, inputs, reference, bfloat16=False)
        fp16_arithmetic["graph"] = "exported (separable blurs" + (", GPU rewrites)" if rewrites else ")")
        if fp16_arithmetic["failures"]:
            raise ExportError("float16 arithmetic gate failed: " + "; ".join(fp16_arithmetic["failures"]))

    with work_dir(out_dir, stem) as tmp:
        work = Path(tmp)
        raw, slim = work / "raw.onnx", work / f"{stem}.onnx"
        step(f"exporting ONNX at {size[0]}x{size[1]}"
             + (f" ({len(rewrites)} layer(s) rewritten for the GPU)" if rewrites else ""))
        onnx_export.export_onnx(exported, input_shapes(track, size), track.outputs, raw)
        _onnx_parity("ONNX Runtime vs PyTorch", raw, inputs, reference, gates)

        step("simplifying the ONNX graph (onnxslim)")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            onnx_export.simplify_onnx(raw, slim)
        ort, ort_outputs = _onnx_parity("simplified ONNX vs PyTorch", slim, inputs, reference, gates)

        step(f"converting with onnx2tf to {track.precision} TFLite"
             + (f" (static, calibrating on {len(calib[1])} photos)" if calib else "")
             + f" (log: {out_dir / stem}.log)")
        tflite = work / f"{stem}.tflite"
        _convert(slim, work, tflite, track, keep_log=out_dir / f"{stem}.log",
                 calibration=calib[0] if calib else None)

        step("checking TFLite parity against PyTorch and ONNX Runtime")
        lite = [parity.run_tflite(tflite, {k: parity.nhwc(v) for k, v in x.items()}) for x in inputs]
        names = track.outputs
        vs_torch = merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(reference, lite)
                          for r, n in zip(ref, names)])
        vs_ort = merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(ort_outputs, lite)
                        for r, n in zip(ref, names)])
        int8 = None
        if track.precision == "int8":       # gated on held-out real photos, not on the scenes above
            int8 = _int8_gate(tflite, model, size, gates, progress, calib, trained)
        else:
            _gate("TFLite vs PyTorch", track.precision, vs_torch, gates)

        step("checking TFLite GPU delegate compatibility")
        gpu = gpu_check.check_gpu_compatibility(tflite)
        if track.precision == "float16" and not gpu["compatible"]:
            raise ExportError("GPU delegate check failed:\n" + gpu_check.format_problems(gpu))

        if for_gpu:
            step("running it on LiteRT's GPU accelerator, GPU-only")
            on_gpu = _verify_on_accelerator(tflite, inputs, reference, names, gates, require_gpu, lite)
        else:
            on_gpu = {"verified": False, "reason": f"{track.precision} export: made for the CPU, not run "
                                                   "on the GPU accelerator"}

        step("writing the report")
        report = _report(track, size, tflite, trained, checkpoint, model, reference[0],
                         {"onnxruntime_vs_pytorch": ort, "tflite_vs_pytorch": vs_torch,
                          "tflite_vs_onnxruntime": vs_ort, "images": len(inputs),
                          "gate": gates[track.precision].__dict__}, gpu, on_gpu, rewrites)
        if int8:
            report["quantization"] = int8["quantization"]
            report["parity"]["real_photos"] = int8["real_photos"]
        report["separable_blurs"] = separable          # renderer layers exported as separable passes
        if track.preset is None:                       # the depth-guided renderer's layers: 1 full, 2 half size
            report["render_scale"] = track.render_scale
        report.update(extra or {})                     # export_portrait: the segmenter it goes with
        report["fp16_arithmetic_psnr"] = fp16_arithmetic["psnr"] if fp16_arithmetic else None
        report["fp16_arithmetic"] = fp16_arithmetic
        try:        # the standard metadata and the contract go inside; then the sha256 is the final file's
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
    if progress:
        psnr = "identical" if vs_torch["psnr"] is None else f"{vs_torch['psnr']:.1f} dB"
        progress(f"wrote {out_dir / stem}.tflite ({report['size_bytes'] / 1e6:.1f} MB, "
                 f"{track.precision}, TFLite vs PyTorch {psnr})")
    return report


def _verify_on_accelerator(tflite: Path, inputs: list[dict], reference: list[list[np.ndarray]],
                           names: tuple[str, ...], gates: dict, require: bool, lite: list[dict]) -> dict:
    """The sidecar's `gpu_accelerator`; ExportError when the accelerator says no."""
    gate = gates.get("accelerator", parity.ACCELERATOR_GATE)
    try:
        return accelerator.verify_export(
            tflite, [{k: parity.nhwc(v) for k, v in x.items()} for x in inputs],
            [{n: parity.nhwc(r) for n, r in zip(names, ref)} for ref in reference], gate, require,
            cpu=[{n: out[n] for n in names} for out in lite])
    except accelerator.NoAdapterError as exc:
        raise GpuRequiredError(str(exc)) from None
    except accelerator.AcceleratorError as exc:
        raise ExportError(f"LiteRT's GPU accelerator check failed: {exc}") from None


def _report(track: Track, size, tflite: Path, trained: bool, checkpoint, model: TrackModel,
            outputs: list[np.ndarray], parity_stats: dict, gpu: dict, on_gpu: dict, rewrites: list) -> dict:
    """The sidecar: the contract's tensors and Eq. 9 settings, as this very model was exported."""
    h, w = size
    config = model.net.config if track.preset is not None else None
    lite = TfliteModel(tflite)
    return {
        "format": contract.SIDECAR_FORMAT, "version": contract.SIDECAR_VERSION,
        "track": track.name, "description": track.contract.description, "preset": track.preset,
        "precision": track.precision, "input_size": [h, w],
        "inputs": list(contract.input_specs(track.inputs, size).values()),
        "outputs": [contract.output_spec(name, parity.nhwc(arr).shape, track.name, track.outputs)
                    for name, arr in zip(track.outputs, outputs)],
        "signature": lite.signatures(),
        "preprocess": {"resize_to": [h, w], "fit": "letterbox: aspect kept, borders mirrored",
                       "interpolation": "area (downscale) / bilinear (upscale)",
                       "color": "RGB", "scale": "divide by 255 (8-bit) or 65535 (16-bit)",
                       "rules": contract.track_rules(track.name, track.bokeh_only)},
        "host": contract.host_parameters(),
        "postprocess": (contract.upsample_postprocess() if track.bokeh_only
                        else contract.postprocess(track.contract.blend_source, *model.eq9)),
        "weights": "trained" if trained else ("analytic" if track.preset is None else "untrained"),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "model_config": config.to_dict() if config is not None else None,
        "op_histogram": lite.op_histogram(),
        "parity": parity_stats,
        "gpu_check": gpu,
        "gpu_accelerator": on_gpu,
        "gpu_rewrites": rewrites,
        "versions": tool_versions(TOOLS),
        "sha256": sha256(tflite), "size_bytes": tflite.stat().st_size,
    }
