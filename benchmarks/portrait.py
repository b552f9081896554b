"""The portrait step as `bokeh-render --portrait` runs it, timed whole and part by part,
beside the full-resolution pipeline it replaced (issue 21).

One timed call is one portrait: the segmenter (both fits: the photo into the model, the
model image into the segmenter's 256x256; and the model), the portrait model (mask
refined, depth, focus, the reduced-resolution render), then the contract's Eq. 9 blend at the
photo's resolution. Each part is timed inside the call, so the split comes from the very
runs the whole is timed on, and the parts add up to the whole less a few clock reads.

FULL_RESOLUTION, measured in the same run, is the path before it: the segmenter, the host
glue (the mask sampled back to the photo, disparity and a median focus in numpy), and the
full-resolution render-track model with its fit and blend (bokeh_render_<H>x<W>.tflite,
exported beside the pipeline if missing). Its parts are segmenter, glue and render.

bokeh-render leaves a photo without a person unchanged; here it is rendered anyway, so
every timed run costs a portrait (a generated scene may have no person). The results count
such runs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .runner import Runner
from .stats import summarize

PARTS = ("segmenter", "model", "blend")
FULL_RESOLUTION_PARTS = ("segmenter", "glue", "render")
FULL_RESOLUTION = "litert-xnnpack-fullres"      # the full-resolution pipeline, on LiteRT XNNPACK
# The segmenter exists as .tflite only, and its custom op Convolution2DTransposeBias is
# XNNPACK's (and the GPU's): LiteRT with XNNPACK off cannot run it.
BACKENDS = ("litert-xnnpack", "litert-gpu", FULL_RESOLUTION)
NOT_TIMED = ("ONNX Runtime and PyTorch are not timed on the portrait track: the segmenter ships as "
             ".tflite only (MediaPipe), with no ONNX or PyTorch model; nor is litert-builtin: the "
             "segmenter's custom op Convolution2DTransposeBias needs XNNPACK. The render model alone "
             "is the render track (--track render)")
# The host glue of the full-resolution pipeline (before issue 21), as runtime/portrait.py had it.
GROUND_NEAR, HORIZON, PERSON = 0.5, 0.5, 1.0


def full_resolution_model(pipeline: str | Path) -> Path:
    """The full-resolution render-track model beside the pipeline's sidecar."""
    from ..contract import artifact_stem
    import json
    size = tuple(json.loads(Path(pipeline).read_text())["input_size"])
    return Path(pipeline).parent / f"{artifact_stem('render', size)}.tflite"


def open_portrait(pipeline: str, threads: int, mode: str) -> Runner:
    """The pipeline in sidecar `pipeline`, opened as bokeh-render opens it; mode as in
    backends.open_litert, or "xnnpack-fullres" for the full-resolution pipeline. Its `parts`
    collects each call's split in ms."""
    from ..runtime.host_steps import blend_photo
    from ..runtime.portrait import PortraitRenderer
    fullres = mode == "xnnpack-fullres"
    pr = PortraitRenderer(pipeline, threads=threads, backend="litert-gpu" if mode == "gpu" else "litert",
                          xnnpack=mode != "builtin")
    parts: list[dict] = []
    clock = time.perf_counter
    if fullres:
        return _full_resolution(pr, pipeline, threads, parts)

    def run(image: np.ndarray) -> np.ndarray:
        t0 = clock()
        x, seg_input, aperture, box = pr.prepare(image)
        person = pr.segmenter(image=seg_input)["person"]
        t1 = clock()
        out = pr.renderer.run_model(x, person=person, aperture=aperture)
        t2 = clock()
        c = pr.renderer.contract
        result = blend_photo(image, out[c.blend_source][0], out[c.defocus][0, :, :, 0], box, c)
        t3 = clock()
        parts.append({"segmenter": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "blend": (t3 - t2) * 1e3,
                      "person": float(out["person_share"].reshape(-1)[0]) >= c.host.min_person})
        return result

    return Runner(prepare=lambda x: np.ascontiguousarray(x["image"][0], dtype=np.float32), run=run,
                  bokeh=lambda out: out[None], parts=parts)


def _full_resolution(pr, pipeline: str, threads: int, parts: list[dict]) -> Runner:
    from ..runtime.fit import Letterbox
    from ..runtime.host_steps import colour_view
    from ..runtime.renderer import BokehRenderer
    render = BokehRenderer(full_resolution_model(pipeline), threads=threads, backend="litert")
    clock = time.perf_counter

    def run(image: np.ndarray) -> np.ndarray:
        t0 = clock()
        color, white = colour_view(image)
        box = Letterbox.fit(image.shape[:2], pr.segmenter_size)
        mask = np.ascontiguousarray(pr.segmenter(image=box.to_model(color, white))["person"][0, :, :, 0])
        t1 = clock()
        h, w = image.shape[:2]
        person = np.empty((h, w), np.float32)
        for rows, cols in box.tiles():
            person[rows, cols] = box.sample(mask, rows, cols)
        person = np.clip(person, 0.0, 1.0)
        y = (np.arange(h, dtype=np.float32) + 0.5) / h
        ground = GROUND_NEAR * np.clip((y - HORIZON) / (1.0 - HORIZON), 0.0, 1.0)
        disparity = (person * PERSON + (1.0 - person) * ground[:, None]).astype(np.float32)
        found = person > 0.5
        focus = float(np.median(disparity[found])) if found.mean() >= 0.01 else PERSON
        t2 = clock()
        pixels = render.render(image, disparity, focus=focus)
        t3 = clock()
        parts.append({"segmenter": (t1 - t0) * 1e3, "glue": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3,
                      "person": bool(found.mean() >= 0.01)})
        return pixels

    return Runner(prepare=lambda x: np.ascontiguousarray(x["image"][0], dtype=np.float32), run=run,
                  bokeh=lambda out: out[None], parts=parts)


def split(parts: list[dict], steady_ms: list[float]) -> dict:
    """Statistics of each part over the steady-state runs (the last len(steady_ms) calls),
    and how many of those runs found no person."""
    runs = parts[-len(steady_ms):]
    names = [k for k in runs[0] if k != "person"]
    out = {name: summarize([p[name] for p in runs]) for name in names}
    out["no_person_runs"] = sum(not p["person"] for p in runs)
    return out
