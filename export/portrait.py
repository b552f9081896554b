"""export-tflite --track portrait: the person segmenter plus a render-track model, one sidecar.

The render track is exported as usual (bokeh_render_<H>x<W>.*, Model Metadata and
contract inside); the segmenter is taken from the mediapipe wheel (segmenter.py), signed,
and keeps MediaPipe's Model Metadata; bokeh_portrait_<H>x<W>.json names
both files with their sha256, the segmenter's source and licence, and how the runtime
derives depth from it (runtime/portrait.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .. import contract
from ..files import atomic_write, ensure_writable_dir
from ..runtime import portrait
from .pipeline import export_track
from .segmenter import segmenter_bytes, with_signature, write_segmenter


def export_portrait(size: tuple[int, int] = contract.DEFAULT_SIZE, out_dir: str | Path = "artifacts",
                    segmenter: str | Path | None = None, checkpoint=None, precision: str | None = None,
                    progress: Callable[[str], None] | None = None, require_gpu: bool = False) -> dict:
    """Export the portrait pipeline at model size `size`; return its sidecar.

    Raises SegmenterUnavailable when the segmenter cannot be had (offline and not cached),
    and whatever export_track raises for the render track.
    """
    out_dir = ensure_writable_dir(Path(out_dir).resolve())
    original = segmenter_bytes(segmenter, progress)                   # first: fails fast when offline
    signed = with_signature(original)
    render = export_track("render", size, out_dir, checkpoint, progress=progress, precision=precision,
                          require_gpu=require_gpu)
    seg = write_segmenter(out_dir / contract.SEGMENTER_FILE, signed, original)
    render_file = f"{contract.artifact_stem('render', size, render['precision'])}.tflite"
    spec = {
        "format": contract.PORTRAIT_FORMAT, "version": contract.PORTRAIT_VERSION,
        "input_size": list(size), "segmenter": seg,
        "render": {"file": render_file, "sha256": render["sha256"], "precision": render["precision"]},
        "depth": {"formula": "disparity = p * person + (1 - p) * ground(y)", "person": portrait.PERSON,
                  "ground": f"0 down to {portrait.HORIZON:.0%} of the height, then rising to "
                            f"{portrait.GROUND_NEAR} at the bottom edge",
                  "focus": "median disparity of the pixels with p > 0.5",
                  "no_person": f"fewer than {portrait.MIN_PERSON:.0%} of the pixels with p > 0.5: "
                               "the photo is left unchanged, with a warning"},
    }
    path = out_dir / f"{contract.portrait_stem(size)}.json"
    atomic_write(path, json.dumps(spec, indent=2, allow_nan=False) + "\n")
    if progress:
        progress(f"wrote {path} (segmenter {seg['file']} + {render_file})")
    return spec
