"""export-tflite --track portrait: MediaPipe's person segmenter and the portrait model.

The segmenter is taken from the mediapipe wheel (segmenter.py), signed, and keeps
MediaPipe's Model Metadata. The portrait model (model/portrait_net.py) is exported like
every float16 track, through export_track: parity gates, float16 arithmetic, the GPU
delegate check, LiteRT's GPU accelerator, Model Metadata with the contract inside. Its
sidecar, bokeh_portrait_<H>x<W>.json, also names the segmenter (key "segmenter": file,
sha256, input, output, source, licence), so the two files are one pipeline.

This module only orchestrates: the portrait model itself is built in track_model.py
(`portrait_net`, for one model size), the export is pipeline.py's.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from .. import contract
from ..files import ensure_writable_dir
from ..model.depth_render import LAYER_GRIDS
from ..model.portrait_net import GROUND_NEAR, GUIDE_EPS, HORIZON, PERSON
from .pipeline import export_track
from .plan import ExportPlan
from .segmenter import segmenter_bytes, with_signature, write_segmenter
from .track_model import guide_grid


def rules(size: tuple[int, int]) -> dict:
    """The sidecar's "portrait": what the graph computes between the segmenter and the blend."""
    factor, radius = guide_grid(size)
    return {
        "person": "the segmenter's mask sampled back through the fixed letterbox (model -> "
                  f"{contract.SEGMENTER_SIZE[0]}x{contract.SEGMENTER_SIZE[1]}), refined by a fast guided "
                  f"filter with the grey photo as guide (a, b on a 1/{factor} grid, box radius {radius}, "
                  f"eps {GUIDE_EPS:g})",
        "depth": {"formula": "disparity = q * person + (1 - q) * ground(y)", "person": PERSON,
                  "ground": f"0 down to {HORIZON:.0%} of the model's height, then rising to {GROUND_NEAR} "
                            "at its bottom edge"},
        "focus": "mean disparity weighted by (2q - 1)^2 where q > 0.5",
        "render": "multi-grid: each layer blurred on the coarsest grid its radius allows ("
                  + ", ".join(f"radius >= {r} px at 1/{g}" if g > 1 else "the rest at the model size"
                              for r, g in LAYER_GRIDS)
                  + "), composited coarsest first; Eq. 9 at the model size",
        "no_person": f"person_share < {contract.MIN_PERSON}: the host leaves the photo unchanged, with a "
                     "warning",
    }


def export_portrait(plan: ExportPlan, out_dir: str | Path = "artifacts", segmenter: str | Path | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Export the segmenter and the portrait model of `plan` (ExportPlan.build("portrait", size,
    ...)); return its sidecar. `segmenter`: MediaPipe's selfie_segmentation.tflite (None: from
    the cache, or the mediapipe wheel).

    Raises SegmenterUnavailable when the segmenter cannot be had (offline and not cached),
    and whatever export_track raises for the portrait model (then no segmenter is left
    that was not there before).
    """
    if plan.track.name != "portrait":
        raise ValueError(f"export_portrait exports the portrait track, not the {plan.track.name} track")
    out_dir = ensure_writable_dir(Path(out_dir).resolve())
    original = segmenter_bytes(segmenter, progress)                   # first: fails fast when offline
    signed = with_signature(original)
    seg_path = out_dir / contract.SEGMENTER_FILE
    existed = seg_path.exists()
    seg = write_segmenter(seg_path, signed, original)
    seg["licence"] = seg["source"]["licence"]
    try:
        return export_track(replace(plan, sidecar_extra={"segmenter": seg, "portrait": rules(plan.size)}),
                            out_dir, progress)
    except BaseException:
        if not existed:
            seg_path.unlink(missing_ok=True)
        raise
