"""export_track: PyTorch -> ONNX -> simplified ONNX -> TFLite, gated and reported.

Everything is built in a temporary folder inside the output folder and renamed
into place only after every gate has passed, so a failed export leaves nothing.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..files import sha256
from ..model import BackboneConfig
from . import gpu_check, onnx_export, parity
from .tflite_inspect import TfliteModel
from .tracks import DEFAULT_SIZE, Track, build_model, check_size, example_inputs, get_track, input_shapes

TOOLS = ("bokehlite", "torch", "onnx", "onnxruntime", "onnxslim", "onnx2tf", "tensorflow",
         "ai-edge-litert", "numpy")
OUTPUT_MEANING = {
    "bokeh": "final bokeh image at the input size (Eq. 9 applied at the model resolution)",
    "blur": "rendered bokeh at the render resolution, before the Eq. 9 blend",
    "defocus": "defocus map D in [0, 1] (render track: blur radius / 34 px); "
               "Eq. 9 mask M = sigmoid(eta * (tau - D))",
}


INPUT_MEANING = {
    "image": "the photo, RGB, resized to the model size",
    "disparity": "disparity normalised to [0, 1], larger = nearer",
    "focus": "focal-plane disparity in [0, 1]",
    "aperture": "blur radius in pixels per unit of |disparity - focus| (radius capped at 34 px)",
}
INPUT_RANGE = {"image": {"color": "RGB", "range": [0.0, 1.0]}, "disparity": {"range": [0.0, 1.0]},
               "focus": {"range": [0.0, 1.0]}, "aperture": {"range": [0.0, 100.0]}}


class ExportError(RuntimeError):
    """A step of the export failed; the message says which and why."""


def artifact_stem(track: str, size: tuple[int, int]) -> str:
    return f"bokeh_{track}_{size[0]}x{size[1]}"


def tool_versions(names=TOOLS) -> dict[str, str]:
    """Installed version of each distribution in `names` ("not installed" if absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


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


def _onnx_parity(label: str, path: Path, inputs: list[dict], reference: list[list[np.ndarray]],
                 gates: dict) -> tuple[dict, list[list[np.ndarray]]]:
    """Run the ONNX graph on every input, gate it as float32 against PyTorch: (stats, outputs)."""
    outputs = [onnx_export.run_onnx(path, x) for x in inputs]
    stats = parity.merge([parity.compare(r, o) for ref, outs in zip(reference, outputs)
                          for r, o in zip(ref, outs)])
    _gate(label, "float32", stats, gates)
    return stats, outputs


def _convert(onnx_path: Path, workdir: Path, tflite_path: Path, track: Track, keep_log: Path) -> None:
    """Run the onnx2tf + TFLiteConverter child process; its noise goes to a log file,
    which is kept at `keep_log` if the conversion fails."""
    log = workdir / "convert.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    with open(log, "w") as f:
        result = subprocess.run(
            [sys.executable, "-m", "bokehlite.export.tf_convert", str(onnx_path), str(workdir),
             str(tflite_path), track.precision, ",".join(track.outputs)],
            stdout=f, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not tflite_path.exists():
        shutil.copyfile(log, keep_log)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ExportError(f"onnx2tf/TFLite conversion failed (full log: {keep_log}): {tail[0][:300]}")


def export_track(track_name: str, size: tuple[int, int] = DEFAULT_SIZE, out_dir: str | Path = "artifacts",
                 checkpoint: str | Path | None = None, backbone: BackboneConfig | None = None,
                 progress: Callable[[str], None] | None = None, gates: dict | None = None,
                 parity_images: int = 2, precision: str | None = None) -> dict:
    """Export one track; return its report (also written as the sidecar JSON).

    Raises ValueError for bad arguments, CheckpointError for a bad checkpoint and
    ExportError when a step or a gate fails. Nothing is left in `out_dir` on failure.
    """
    track = get_track(track_name, precision)
    size = (int(size[0]), int(size[1]))
    check_size(track, size)
    out_dir = Path(out_dir).resolve()
    check_writable(out_dir)
    gates = gates or parity.GATES
    stem = artifact_stem(track.name, size)
    step = _Steps(7, progress)

    step(f"{track.name} track: building the {track.preset or 'depth-guided renderer'} model")
    model, trained = build_model(track, checkpoint, backbone)
    inputs = [example_inputs(track, size, seed) for seed in range(parity_images)]
    reference = [_torch_outputs(model, x) for x in inputs]

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{stem}.") as tmp:
        work = Path(tmp)
        raw, slim = work / "raw.onnx", work / f"{stem}.onnx"
        step(f"exporting ONNX at {size[0]}x{size[1]}")
        onnx_export.export_onnx(model, input_shapes(track, size), track.outputs, raw)
        _onnx_parity("ONNX Runtime vs PyTorch", raw, inputs, reference, gates)

        step("simplifying the ONNX graph (onnxslim)")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            onnx_export.simplify_onnx(raw, slim)
        ort, ort_outputs = _onnx_parity("simplified ONNX vs PyTorch", slim, inputs, reference, gates)

        step(f"converting with onnx2tf to {track.precision} TFLite (log: convert.log)")
        tflite = work / f"{stem}.tflite"
        _convert(slim, work, tflite, track, keep_log=out_dir / f"{stem}.log")

        step("checking TFLite parity against PyTorch and ONNX Runtime")
        lite = [parity.run_tflite(tflite, {k: parity.nhwc(v) for k, v in x.items()}) for x in inputs]
        names = track.outputs
        vs_torch = parity.merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(reference, lite)
                                 for r, n in zip(ref, names)])
        vs_ort = parity.merge([parity.compare(parity.nhwc(r), out[n]) for ref, out in zip(ort_outputs, lite)
                               for r, n in zip(ref, names)])
        _gate("TFLite vs PyTorch", track.precision, vs_torch, gates)

        step("checking TFLite GPU delegate compatibility")
        gpu = gpu_check.check_gpu_compatibility(tflite)
        if track.precision == "float16" and not gpu["compatible"]:
            raise ExportError("GPU delegate check failed:\n" + gpu_check.format_problems(gpu))

        step("writing the report")
        report = _report(track, size, tflite, trained, checkpoint, model, reference[0],
                         {"onnxruntime_vs_pytorch": ort, "tflite_vs_pytorch": vs_torch,
                          "tflite_vs_onnxruntime": vs_ort, "images": len(inputs),
                          "gate": gates[track.precision].__dict__}, gpu)
        (work / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        for suffix in (".onnx", ".tflite", ".json"):
            os.replace(work / f"{stem}{suffix}", out_dir / f"{stem}{suffix}")
        shutil.copyfile(work / "convert.log", out_dir / f"{stem}.log")
    if progress:
        progress(f"wrote {out_dir / stem}.tflite ({report['size_bytes'] / 1e6:.1f} MB, "
                 f"{track.precision}, TFLite vs PyTorch {vs_torch['psnr']:.1f} dB)")
    return report


def _report(track: Track, size, tflite: Path, trained: bool, checkpoint, model, outputs: list[np.ndarray],
            parity_stats: dict, gpu: dict) -> dict:
    h, w = size
    in_specs = []
    for name, shape in input_shapes(track, size).items():
        nhwc_shape = [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)
        spec = {"name": name, "shape": nhwc_shape, "dtype": "float32",
                "layout": "NHWC" if len(shape) == 4 else "N1", "meaning": INPUT_MEANING[name]}
        in_specs.append({**spec, **INPUT_RANGE.get(name, {})})
    out_specs = []
    for name, arr in zip(track.outputs, outputs):
        shape = list(parity.nhwc(arr).shape)
        out_specs.append({"name": name, "shape": shape, "dtype": "float32", "layout": "NHWC",
                          "range": [0.0, 1.0], "meaning": OUTPUT_MEANING[name]})
    config = getattr(model.net, "config", None)
    lite = TfliteModel(tflite)
    return {
        "format": "bokehlite-tflite", "version": 1,
        "track": track.name, "description": track.description, "preset": track.preset,
        "precision": track.precision, "input_size": [h, w],
        "inputs": in_specs,
        "outputs": out_specs,
        "signature": lite.signatures(),
        "preprocess": {"resize_to": [h, w], "interpolation": "area (downscale) / bilinear (upscale)",
                       "color": "RGB", "scale": "divide by 255 (8-bit) or 65535 (16-bit)"},
        "postprocess": {"blend": "eq9", "source": track.blend_source, "defocus": "defocus",
                        "eta": track.eta, "tau": track.tau, "at": "the original photo's resolution",
                        "formula": "M = sigmoid(eta*(tau - D)); out = M*I + (1-M)*B"},
        "weights": "trained" if trained else ("analytic" if track.preset is None else "untrained"),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "model_config": config.to_dict() if config is not None else None,
        "op_histogram": lite.op_histogram(),
        "parity": parity_stats,
        "gpu_check": gpu,
        "versions": tool_versions(),
        "sha256": sha256(tflite), "size_bytes": tflite.stat().st_size,
    }
