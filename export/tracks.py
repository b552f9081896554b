"""The exportable tracks: which model, which inputs and outputs, which precision.

A track wraps a model so that its forward takes and returns fixed, named tensors;
everything downstream (ONNX names, TFLite signature, the sidecar contract the
runtime reads, the parity inputs) comes from this one table.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..model import BackboneConfig, BokehNet, load_checkpoint, stage_config
from ..model.checkpoint import load_state_strict
from ..model.config import STAGE3_KERNELS
from ..model.depth_render import DepthRenderNet
from ..model.synthetic import defocus_ramp, test_scene

DEFAULT_SIZE = (1024, 1536)   # EBB! / AIM 2020 full resolution


@dataclass(frozen=True)
class Track:
    name: str
    preset: str | None        # BokehNet preset; None for the depth-guided renderer
    precision: str            # "float32" or "float16" (weights; I/O stay float32)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    blend_source: str         # output the runtime blends with Eq. 9 at full resolution
    eta: float                # Eq. 9 mask M = sigmoid(eta * (tau - defocus))
    tau: float
    description: str

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (encoder stride, or pyramid pooling)."""
        return stage_config(self.preset).net_multiple if self.preset else 4


# The render track's `defocus` output is radius / the largest kernel radius (34 px);
# its Eq. 9 mask is in focus below ~0.5 px of radius.
_RENDER_MAX_RADIUS = float(STAGE3_KERNELS[-1] // 2)
TRACKS = {
    "cpu": Track("cpu", "cpu-track", "float32", ("image",), ("bokeh", "defocus"), "bokeh", 20.0, 0.125,
                 "stage 1 + residual module, float32, XNNPACK-friendly (AIM 2020 track 1)"),
    "gpu": Track("gpu", "inference", "float16", ("image",), ("bokeh", "blur", "defocus"), "blur", 20.0, 0.125,
                 "stage 3 + Eq. 9, float16 weights, TFLite GPU delegate (AIM 2020 track 2)"),
    "render": Track("render", None, "float16", ("image", "disparity", "focus", "aperture"),
                    ("bokeh", "defocus"), "bokeh", 8 * _RENDER_MAX_RADIUS, 0.5 / _RENDER_MAX_RADIUS,
                    "depth-guided renderer: photo + disparity + focus + aperture (paper Eq. 1-2, 4-8)"),
}


class TrackModel(nn.Module):
    """A BokehNet with the track's inputs and outputs, as tuples in table order."""

    def __init__(self, net: nn.Module, track: Track):
        super().__init__()
        self.net = net.eval()
        self.track = track

    def forward(self, *inputs: torch.Tensor):
        out = self.net(*inputs)
        if self.track.preset is None:
            named = {"bokeh": out["bokeh"], "defocus": out["radius"] / self.net.max_radius}
        else:
            named = {"bokeh": out["bokeh"], "blur": out["blur"], "defocus": out["defocus_map"]}
        return tuple(named[n] for n in self.track.outputs)


def get_track(name: str, precision: str | None = None) -> Track:
    if name not in TRACKS:
        raise ValueError(f"unknown track {name!r}; expected one of {', '.join(TRACKS)}")
    if precision not in (None, "float32", "float16"):
        raise ValueError(f"precision must be float32 or float16, got {precision!r}")
    return replace(TRACKS[name], precision=precision) if precision else TRACKS[name]


def check_size(track: Track, size: tuple[int, int]) -> None:
    """Raise ValueError unless both sides are positive multiples of what the network needs."""
    multiple = track.size_multiple
    if any(s <= 0 or s % multiple for s in size):
        raise ValueError(f"input size {size[0]}x{size[1]} is not accepted by the {track.name} track: "
                         f"height and width must be positive multiples of {multiple}")


def input_shapes(track: Track, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """PyTorch-side (NCHW) shape of each input."""
    h, w = size
    shapes = {"image": (1, 3, h, w), "disparity": (1, 1, h, w), "focus": (1, 1), "aperture": (1, 1)}
    return {name: shapes[name] for name in track.inputs}


def example_inputs(track: Track, size: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Parity inputs: a scene with edges, textures and saturated highlights (and, for the
    render track, a disparity ramp with a mid-range focus and a wide aperture)."""
    h, w = size
    image = test_scene(h, w, seed)[None].transpose(0, 3, 1, 2).copy()
    extra = {"disparity": defocus_ramp(h, w)[None, None].copy(),
             "focus": np.array([[0.3 + 0.2 * seed]], np.float32),
             "aperture": np.array([[24.0]], np.float32)}
    return {name: image if name == "image" else extra[name] for name in track.inputs}


def build_model(track: Track, checkpoint=None, backbone: BackboneConfig | None = None,
                seed: int = 0) -> tuple[TrackModel, bool]:
    """(wrapped model, trained?). Without a checkpoint: seeded untrained weights.

    A checkpoint keeps its architecture (backbone, radiance width); the track sets the
    stage semantics and the pyramid render. Stage-1 weights fit the CPU track with an
    identity residual module; stage-3 weights fit the GPU track; the render track takes
    the radiance module of any checkpoint. `backbone` is only needed for an authors'
    checkpoint of a non-paper width (tests).
    """
    if track.preset is None:
        net = DepthRenderNet()
        if checkpoint is not None:
            loaded = load_checkpoint(checkpoint)
            net.radiance.load_state_dict(loaded.radiance.state_dict())
        return TrackModel(net, track), checkpoint is not None
    if checkpoint is None:
        torch.manual_seed(seed)
        config = stage_config(track.preset, **({"backbone": backbone} if backbone else {}))
        return TrackModel(BokehNet(config), track), False
    loaded = load_checkpoint(checkpoint, stage_config(track.preset, backbone=backbone) if backbone else None)
    config = stage_config(track.preset, backbone=loaded.config.backbone, radiance=loaded.config.radiance,
                          residual_features=loaded.config.residual_features)
    net = BokehNet(config)
    load_state_strict(net, loaded.state_dict(), optional_prefix="residual.")
    return TrackModel(net, track), True
