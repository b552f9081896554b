"""One measurement in a fresh process: `python -m bokehlite.benchmarks.worker SPEC RESULT`.

A fresh process per backend and thread count makes peak RSS honest (VmHWM is
this process's own high-water mark, not the sum of everything timed before) and
keeps one backend's thread pools and caches from warming another's.

SPEC (JSON) tasks:
  latency: backend, threads, tflite, onnx, track, tiny, checkpoint, adapter (litert-gpu),
           pipeline (portrait track: its sidecar; the result then has the split, portrait.py),
           inputs (.npz: the track's named inputs, N samples each, NHWC for 4-D:
           image N x H x W x 3, and on the render track disparity N x H x W x 1,
           focus N x 1, aperture N x 1), protocol, output (.npy for the first 'bokeh'),
           analyse (PyTorch only: stage timing + FLOP count), stage_runs
  profile: tflite, threads, runs: LiteRT's op profile of one export (op_profile.py)
  ort-int8: onnx, out, calibration, size: ONNX Runtime's static QDQ int8 copy of `onnx` in its
           fast x86 configuration, U8S8 (uint8 activations, int8 per-channel weights),
           calibrated on the photos in `calibration` and checked (ort_int8.py)
  gemm:    threads, n, reps: the fp32 GEMM peak on `threads` threads (peak.py), in a
           process of its own so that numpy's BLAS starts with the thread count
           the parent put in its environment
RESULT (JSON) is written atomically; failures go to stderr with exit code 1.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..files import atomic_write
from ..host import peak_rss_mb as rss_mb


def latency(spec: dict) -> dict:
    import numpy as np

    from .backends import open_backend
    from .timing import Protocol, measure
    with np.load(spec["inputs"]) as data:
        arrays = {name: data[name] for name in data.files}
    adapter = None
    if spec.get("adapter"):
        from ..runtime.gpu_adapter import Adapter
        adapter = Adapter.from_json(spec["adapter"])
    count = len(arrays["image"])
    images = [{name: a[i:i + 1] for name, a in arrays.items()} for i in range(count)]   # one sample each
    baseline = rss_mb()
    timings, runner, first = measure(
        lambda: open_backend(spec["backend"], threads=spec["threads"], tflite=spec["tflite"],
                             onnx=spec["onnx"], track=spec["track"], tiny=spec["tiny"],
                             checkpoint=spec["checkpoint"], adapter=adapter, pipeline=spec.get("pipeline")),
        images, Protocol(**spec["protocol"]))
    result = {"timing": timings, "baseline_rss_mb": baseline, "peak_rss_mb": rss_mb(),
              "input_mb": sum(a.nbytes for a in arrays.values()) / 1e6}
    if runner.parts is not None:
        from .portrait import split
        result["split"] = split(runner.parts, timings["samples_ms"])
    if spec.get("output"):
        np.save(spec["output"], np.asarray(runner.bokeh(first), dtype=np.float32))
    if spec.get("analyse") and runner.model is not None:
        from .flops import count_flops
        from .stages import time_stages
        x = runner.prepare(images[0])
        result["stages"] = time_stages(runner.model, x, spec.get("stage_runs", 3))
        result["flops"] = count_flops(runner.model, x)
    return result


def profile(spec: dict) -> dict:
    from .op_profile import profile_ops
    return profile_ops(spec["tflite"], spec["threads"], runs=spec["runs"])


def ort_int8(spec: dict) -> dict:
    from .ort_int8 import quantize
    return quantize(spec["onnx"], spec["out"], spec["calibration"], tuple(spec["size"]))


def gemm(spec: dict) -> dict:
    from .peak import gemm_peak
    return gemm_peak(spec["threads"], n=spec["n"], reps=spec["reps"])


def main(argv: list[str] | None = None) -> int:
    spec_path, result_path = argv or sys.argv[1:]
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = {"latency": latency, "gemm": gemm, "profile": profile, "ort-int8": ort_int8}[spec["task"]](spec)
    except Exception as exc:   # noqa: BLE001 - reported to the parent as one line
        print(f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500], file=sys.stderr)
        return 1
    atomic_write(result_path, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
