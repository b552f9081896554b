"""export-tflite --track portrait: MediaPipe's person segmenter and the portrait model.

The segmenter is taken from the mediapipe wheel (segmenter.py), signed, and keeps
MediaPipe's Model Metadata. The portrait model (model/portrait_net.py) is exported like
every float16 track, through export_track: parity gates, float16 arithmetic, the GPU
delegate check, LiteRT's GPU accelerator, Model Metadata with the contract inside. Its
sidecar, bokeh_portrait_<H>x<W>.json, also names the segmenter (key "segmenter": file,
sha256, input, output, source, licence), so the two files are one pipeline.

The letterbox that fits the model image into the segmenter's 256x256 input is fixed by
the model size, so the graph inverts it with constants: the box, from the runtime's own
Letterbox (runtime/fit.py).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from .. import contract
from ..files import ensure_writable_dir
from ..model.depth_render import LAYER_GRIDS
from ..model.portrait_net import (GROUND_NEAR, GUIDE_EPS, GUIDE_RADIUS_SEGMENTER_PX, HORIZON, PERSON,
                                  PortraitNet)
from ..runtime.fit import Letterbox
from .segmenter import segmenter_bytes, with_signature, write_segmenter


def guide_grid(size: tuple[int, int]) -> tuple[int, int]:
    """(factor, box radius) of the fast guided filter at model size `size`: the coarse grid is
    about the segmenter's own resolution (a power of two, at most 4), the radius
    GUIDE_RADIUS_SEGMENTER_PX segmenter pixels in cells of that grid."""
    box = Letterbox.fit(size, contract.SEGMENTER_SIZE)
    factor = 1
    while factor < 4 and 2 * factor <= max(size) / max(contract.SEGMENTER_SIZE) \
            and all(s % (2 * factor) == 0 for s in size):
        factor *= 2
    return factor, max(1, math.ceil(GUIDE_RADIUS_SEGMENTER_PX / (box.scale * factor)))


def portrait_net(size: tuple[int, int], **render) -> PortraitNet:
    """The portrait model for model size `size` (H, W); `render`: DepthRenderNet's radiance."""
    box = Letterbox.fit(size, contract.SEGMENTER_SIZE)
    factor, radius = guide_grid(size)
    return PortraitNet(size, contract.SEGMENTER_SIZE[0], (box.top, box.left, box.height, box.width),
                       factor, radius, **render)


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


def export_portrait(size: tuple[int, int] = contract.DEFAULT_SIZE, out_dir: str | Path = "artifacts",
                    segmenter: str | Path | None = None, checkpoint=None, precision: str | None = None,
                    progress: Callable[[str], None] | None = None, require_gpu: bool = False) -> dict:
    """Export the segmenter and the portrait model at model size `size`; return its sidecar.

    Raises SegmenterUnavailable when the segmenter cannot be had (offline and not cached),
    and whatever export_track raises for the portrait model (then no segmenter is left
    that was not there before).
    """
    from .pipeline import export_track
    out_dir = ensure_writable_dir(Path(out_dir).resolve())
    original = segmenter_bytes(segmenter, progress)                   # first: fails fast when offline
    signed = with_signature(original)
    seg_path = out_dir / contract.SEGMENTER_FILE
    existed = seg_path.exists()
    seg = write_segmenter(seg_path, signed, original)
    seg["licence"] = seg["source"]["licence"]
    try:
        return export_track("portrait", size, out_dir, checkpoint, progress=progress, precision=precision,
                            require_gpu=require_gpu, extra={"segmenter": seg, "portrait": rules(size)})
    except BaseException:
        if not existed:
            seg_path.unlink(missing_ok=True)
        raise
