"""The backends we time side by side, each opened the way its users open it.

Every backend gets all of the track's inputs (the image; on the render track also
disparity, focus and aperture) in its own native layout, prepared outside the timed
window: LiteRT takes NHWC (the contract), ONNX Runtime and PyTorch take NCHW (the
ONNX graph is PyTorch's). Every backend computes all of the track's outputs.
Heavy imports happen inside the openers, so a LiteRT child never loads torch.
`litert-gpu` is the runtime's backend of the same name: LiteRT's GPU accelerator, GPU-only,
on the Vulkan adapter runtime/gpu_adapter.py finds (a GPU driver, or SwiftShader).
The portrait track is a pipeline of two .tflite models, opened as bokeh-render opens
it (portrait.py); LiteRT alone runs it.
"""
from __future__ import annotations

import numpy as np

from .runner import Runner

CPU_BACKENDS = {
    "litert-xnnpack": "TFLite via LiteRT, XNNPACK on",
    "litert-xnnpack-persistent": "TFLite via LiteRT, XNNPACK on, its indirection buffers kept for the whole "
                                 "run (XNNPACK's default; bokeh-render's low_memory off)",
    "litert-builtin": "TFLite via LiteRT, XNNPACK off (builtin kernels)",
    "onnxruntime": "ONNX Runtime, CPU execution provider",
    "pytorch": "PyTorch eager (torch.inference_mode)",
}
GPU_BACKENDS = {"litert-gpu": "TFLite via LiteRT's GPU accelerator (CompiledModel, GPU-only, Vulkan)"}
BACKENDS = {**CPU_BACKENDS, **GPU_BACKENDS}
HEADLINE = "litert-xnnpack"   # "TFLite" in the ratio columns
PERSISTENT = "litert-xnnpack-persistent"

GPU_ADVICE = "on a phone, time the .tflite with TFLite's benchmark_model --use_gpu=true"


class GpuUnavailable(RuntimeError):
    pass


def nchw(x: np.ndarray) -> np.ndarray:
    """NHWC -> NCHW for 4-D arrays (focus and aperture are (1, 1) either way), contiguous float32."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x, dtype=np.float32)


def find_gpu_adapter():
    """The Vulkan adapter LiteRT's GPU accelerator runs on here (a runtime.gpu_adapter.Adapter,
    found once by the parent so that no worker probes inside its timed init); GpuUnavailable
    with one line otherwise."""
    from ..runtime.errors import BackendError
    from ..runtime.gpu_adapter import find_adapter
    try:
        return find_adapter()
    except BackendError as exc:
        raise GpuUnavailable(f"{exc}; {GPU_ADVICE}") from None


def open_litert(tflite: str, threads: int, mode: str, adapter=None) -> Runner:
    """mode: 'xnnpack' (LiteRT's CPU path as bokeh-render runs it: XNNPACK in low memory),
    'xnnpack-persistent' (XNNPACK's own default: indirection buffers kept), 'builtin' (no
    XNNPACK) or 'gpu' (LiteRT's GPU accelerator, GPU-only).

    Opened through the runtime's backend layer, so the timed call is the one `bokeh-render`
    makes: `ModelRunner(**inputs)`.
    """
    from ..runtime.backends import open_model
    if mode == "gpu":
        runner = open_model(tflite, "litert-gpu", threads, adapter=adapter)
    else:
        runner = open_model(tflite, "litert", threads, xnnpack=mode != "builtin",
                            low_memory=mode != "xnnpack-persistent")
    return Runner(prepare=lambda x: {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in x.items()},
                  run=lambda x: runner(**x), bokeh=lambda out: out["bokeh"])


def open_onnxruntime(onnx: str, threads: int) -> Runner:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    index = names.index("bokeh")
    return Runner(prepare=lambda x: {k: nchw(v) for k, v in x.items()},
                  run=lambda x: session.run(None, x),
                  bokeh=lambda out: out[index].transpose(0, 2, 3, 1))


def open_pytorch(track: str, threads: int, tiny: bool, checkpoint: str | None) -> Runner:
    import torch

    from ..export.track_model import build_model
    from ..export.tracks import get_track
    from ..model import BackboneConfig
    torch.set_num_threads(threads)
    spec = get_track(track)
    # Seed 0 and the same builder as the exporter: untrained weights match the export.
    model, _ = build_model(spec, checkpoint, BackboneConfig.tiny() if tiny else None)
    model.eval()
    index = spec.outputs.index("bokeh")

    def run(x):
        with torch.inference_mode():
            return model(*x)

    return Runner(prepare=lambda x: tuple(torch.from_numpy(nchw(x[name])) for name in spec.inputs),
                  run=run, bokeh=lambda out: out[index].numpy().transpose(0, 2, 3, 1), model=model)


def open_backend(backend: str, *, threads: int, tflite: str, onnx: str | None, track: str, tiny: bool = False,
                 checkpoint: str | None = None, adapter=None, pipeline: str | None = None) -> Runner:
    """`pipeline`: the portrait track's sidecar (segmenter + render model, LiteRT only)."""
    if track == "portrait":
        from .portrait import BACKENDS as PORTRAIT, NOT_TIMED, open_portrait
        if backend not in PORTRAIT:
            raise ValueError(NOT_TIMED)
        return open_portrait(pipeline, threads, backend.removeprefix("litert-"))
    if backend in BACKENDS and backend.startswith("litert-"):   # -xnnpack, -xnnpack-persistent, -builtin, -gpu
        return open_litert(tflite, threads, backend.removeprefix("litert-"), adapter)
    if backend == "onnxruntime":
        return open_onnxruntime(onnx, threads)
    if backend == "pytorch":
        return open_pytorch(track, threads, tiny, checkpoint)
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
