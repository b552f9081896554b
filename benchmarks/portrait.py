"""The portrait step as `bokeh-render --portrait` runs it, timed whole and part by part.

One timed call is one portrait: the segmenter (the photo letterboxed to its 256x256
input, the model, its mask sampled back to the photo), the depth (person mask ->
disparity and focus, runtime/portrait.py), then the render track (its fit, the model,
the full-resolution Eq. 9 blend). Each part is timed inside the call, so the split
comes from the very runs the whole is timed on, and the parts add up to the whole
less a few clock reads.

bokeh-render leaves a photo without a person unchanged; here it is rendered anyway,
focused on the person plane, so every timed run costs a portrait (a generated scene or
a landscape may have no person). The results count such runs.
"""
from __future__ import annotations

import time

import numpy as np

from .runner import Runner
from .stats import summarize

PARTS = ("segmenter", "depth", "render")
# The segmenter exists as .tflite only, and its custom op Convolution2DTransposeBias is
# XNNPACK's (and the GPU's): LiteRT with XNNPACK off cannot run it.
BACKENDS = ("litert-xnnpack", "litert-gpu")
NOT_TIMED = ("ONNX Runtime and PyTorch are not timed on the portrait track: the segmenter ships as "
             ".tflite only (MediaPipe), with no ONNX or PyTorch model; nor is litert-builtin: the "
             "segmenter's custom op Convolution2DTransposeBias needs XNNPACK. The render model alone "
             "is the render track (--track render)")


def open_portrait(pipeline: str, threads: int, mode: str) -> Runner:
    """The pipeline in sidecar `pipeline`, opened as bokeh-render opens it; mode as in
    backends.open_litert. Its `parts` collects each call's split in ms."""
    from ..runtime.portrait import PERSON, PortraitRenderer
    pr = PortraitRenderer(pipeline, threads=threads, backend="litert-gpu" if mode == "gpu" else "litert",
                          xnnpack=mode == "xnnpack")
    parts: list[dict] = []
    clock = time.perf_counter

    def run(image: np.ndarray) -> np.ndarray:
        t0 = clock()
        person = pr.person(image)
        t1 = clock()
        disparity, focus, _ = pr.depth(person)
        found = focus is not None
        t2 = clock()
        pixels = pr.renderer.render(image, disparity, focus=focus if found else PERSON)
        t3 = clock()
        parts.append({"segmenter": (t1 - t0) * 1e3, "depth": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3,
                      "person": found})
        return pixels

    return Runner(prepare=lambda x: np.ascontiguousarray(x["image"][0], dtype=np.float32), run=run,
                  bokeh=lambda out: out[None], parts=parts)


def split(parts: list[dict], steady_ms: list[float]) -> dict:
    """Statistics of each part over the steady-state runs (the last len(steady_ms) calls),
    and how many of those runs found no person."""
    runs = parts[-len(steady_ms):]
    out = {name: summarize([p[name] for p in runs]) for name in PARTS}
    out["no_person_runs"] = sum(not p["person"] for p in runs)
    return out
