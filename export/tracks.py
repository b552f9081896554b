"""The exportable tracks: the contract each one keeps, the model preset behind it, and the
sizes and parity inputs it takes. No torch here, so the command lines can check their
arguments before loading it; building the PyTorch model is track_model.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..contract import BOKEH_ONLY, PRECISIONS, SEGMENTER_SIZE, TrackContract, track_contract
from ..model.config import STAGE3_KERNELS, pyramid_factor, stage_config
from ..model.synthetic import defocus_ramp, test_scene

# Each track's model: a BokehNet preset, or None for the depth-guided renderer.
PRESETS = {"cpu": "cpu-track", "gpu": "inference", "render": None, "portrait": None}
# int8 (gated on real photos) is for XNNPACK on the CPU: the cpu track, and the gpu track's model
# for a phone whose GPU is refused or missing (the GPU delegate itself runs float16). The render
# track has no learned weights to quantize.
INT8_TRACKS = ("cpu", "gpu")
# The depth-guided renderer renders with the stage-3 kernels (model/depth_render.py).
RENDER_KERNELS = STAGE3_KERNELS


@dataclass(frozen=True)
class Track:
    contract: TrackContract
    preset: str | None        # BokehNet preset; None for the depth-guided renderer
    precision: str            # "float32", "float16" or "int8" (weights; I/O stay float32)
    render_scale: int = 1     # render track: 2 renders the large layers on coarser grids (portrait: always)

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.contract.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.contract.outputs

    @property
    def bokeh_only(self) -> bool:
        """The one-output variant (export-tflite --outputs bokeh)."""
        return self.outputs == BOKEH_ONLY

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: the encoder's stride at the network's
        scale, or for the renderer its coarsest pyramid grid (so the grids stay aligned)."""
        if self.preset is not None:
            return stage_config(self.preset).net_multiple
        # render_scale 2 composites on grids up to 4x coarser: the same multiple.
        return max(pyramid_factor(k) for k in RENDER_KERNELS)


@dataclass(frozen=True)
class TrackChoice:
    """One value of `export-tflite --track`: the tracks it exports, each through its own
    ExportPlan (plan.py), which checks its size, precision and render scale. "portrait" and
    "all" are rows like the others, so that no flag can miss them."""

    exports: tuple[str, ...]      # in order; "portrait" is a pipeline: a segmenter + the portrait model
    help: str


CHOICES = {
    "cpu": TrackChoice(("cpu",), "stage 1 + residual, float32"),
    "gpu": TrackChoice(("gpu",), "stage 3 + Eq. 9, float16 weights"),
    "render": TrackChoice(("render",), "depth-guided renderer (photo + disparity + focus + aperture), float16"),
    "portrait": TrackChoice(("portrait",), "MediaPipe's person segmenter + the portrait model (mask refined, "
                                           "depth, focus, reduced-resolution render), float16 (bokeh-render "
                                           "--portrait)"),
    "all": TrackChoice(("cpu", "gpu"), "cpu and gpu"),
}


def get_track(name: str, precision: str | None = None, outputs: tuple[str, ...] | None = None) -> Track:
    """The track `name` at `precision` (default: the track's), with all its outputs or, with
    `outputs` == ("bokeh",), the bokeh alone (the model then ends at that output). The portrait
    track renders at half resolution; the render track's half-resolution variant is chosen by
    ExportPlan.build (plan.py), which checks the render scale."""
    contract = track_contract(name)
    if precision not in (None, *PRECISIONS):
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and name not in INT8_TRACKS:
        raise ValueError(f"precision int8 is only built for the {' and '.join(INT8_TRACKS)} tracks, "
                         f"not the {name} track")
    if outputs is not None and tuple(outputs) != contract.outputs:
        if tuple(outputs) != BOKEH_ONLY:
            raise ValueError(f"outputs must be all of the {name} track's or only bokeh, got {list(outputs)}")
        if precision == "int8":
            raise ValueError("--outputs bokeh is not built with --precision int8: the int8 gate on "
                             "real photos checks the defocus output too")
        contract = replace(contract, outputs=BOKEH_ONLY, blend_source="bokeh")
    return Track(contract, PRESETS[name], precision or contract.precision, 2 if name == "portrait" else 1)


def check_size(track: Track, size: tuple[int, int]) -> None:
    """Raise ValueError unless both sides are positive multiples of what the network needs."""
    multiple = track.size_multiple
    if any(s <= 0 or s % multiple for s in size):
        raise ValueError(f"input size {size[0]}x{size[1]} is not accepted by the {track.name} track: "
                         f"height and width must be positive multiples of {multiple}")


def input_shapes(track: Track, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """PyTorch-side (NCHW) shape of each input."""
    h, w = size
    shapes = {"image": (1, 3, h, w), "disparity": (1, 1, h, w), "focus": (1, 1), "aperture": (1, 1),
              "person": (1, 1, *SEGMENTER_SIZE)}
    return {name: shapes[name] for name in track.inputs}


def example_inputs(track: Track, size: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Parity inputs (NCHW): a scene with edges, textures and saturated highlights (and, for
    the render track, a disparity ramp with a mid-range focus and a wide aperture)."""
    h, w = size
    image = test_scene(h, w, seed)[None].transpose(0, 3, 1, 2).copy()
    extra = {"disparity": defocus_ramp(h, w)[None, None].copy(),
             "focus": np.array([[0.3 + 0.2 * seed]], np.float32),
             "aperture": np.array([[24.0]], np.float32),
             "person": _person_blob(seed)}
    return {name: image if name == "image" else extra[name] for name in track.inputs}


def _person_blob(seed: int) -> np.ndarray:
    """(1, 1, S, S) a soft head-and-shoulders shape in the segmenter's frame, for parity runs."""
    s = SEGMENTER_SIZE[0]
    y, x = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    cx = 0.45 + 0.1 * seed
    head = ((x - cx) / 0.12) ** 2 + ((y - 0.35) / 0.16) ** 2
    body = np.where(y > 0.55, ((x - cx) / 0.3) ** 2 + ((y - 1.0) / 0.45) ** 2, 9.0)
    inside = np.minimum(head, body)
    return (1.0 / (1.0 + np.exp(np.minimum(12.0 * (inside - 1.0), 50.0))))[None, None].astype(np.float32)
