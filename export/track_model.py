"""The PyTorch model behind a track, wrapped to take and return the track's named tensors.

ONNX names, the TFLite signature, the sidecar and the parity inputs all follow the
track's contract; the network says which of its results are those outputs
(`export_outputs`) and which Eq. 9 mask they are meant for (`eq9`).

The portrait model is built for one model size: the letterbox that fits its image into the
segmenter's 256x256 input is fixed by that size, so the graph inverts it with constants, the
box from the runtime's own Letterbox (runtime/fit.py).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import contract
from ..model import BackboneConfig, BokehNet, load_checkpoint, load_radiance, stage_config
from ..model.checkpoint import load_state_strict
from ..model.depth_render import DepthRenderNet
from ..model.portrait_net import GUIDE_RADIUS_SEGMENTER_PX, PortraitNet
from ..runtime.fit import Letterbox
from .tracks import Track


class TrackModel(nn.Module):
    """A network with the track's inputs and outputs, as tuples in contract order."""

    def __init__(self, net: nn.Module, track: Track):
        super().__init__()
        self.net = net
        self.track = track
        # The wrapper too, not only the net: torch.onnx.export restores the wrapper's mode
        # afterwards, and a wrapper left in training mode would switch the BatchNorms back to
        # batch statistics for every PyTorch run after the export (the int8 photo gate's).
        self.eval()

    def forward(self, *inputs: torch.Tensor):
        named = self.net.export_outputs(self.net(*inputs))
        return tuple(named[n] for n in self.track.outputs)

    @property
    def eq9(self) -> tuple[float, float]:
        return self.net.eq9


def guide_grid(size: tuple[int, int]) -> tuple[int, int]:
    """(factor, box radius) of the portrait model's fast guided filter at model size `size`: the
    coarse grid is about the segmenter's own resolution (a power of two, at most 4), the radius
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


def build_model(track: Track, checkpoint=None, backbone: BackboneConfig | None = None,
                seed: int = 0, size: tuple[int, int] | None = None) -> tuple[TrackModel, bool]:
    """(wrapped model, trained?). Without a checkpoint: seeded untrained weights.

    A checkpoint keeps its architecture (backbone, radiance width); the track sets the
    stage semantics and the pyramid render. Stage-1 weights fit the CPU track with an
    identity residual module; stage-3 weights fit the GPU track; the render track takes
    the radiance module of any checkpoint, with its threshold, alpha and beta. `backbone`
    is only needed for an authors' checkpoint of a non-paper width (tests). The portrait
    track's model needs the model `size` (its letterbox matrices are constants).
    """
    if track.preset is None:
        radiance = load_radiance(checkpoint) if checkpoint is not None else None
        config = {} if radiance is None else {"radiance": radiance.cfg}
        if track.name == "portrait":
            if size is None:
                raise ValueError("the portrait track's model is built for one model size: give size")
            net = portrait_net(size, **config)
        else:
            net = DepthRenderNet(render_scale=track.render_scale, **config)
        if radiance is not None:
            net.radiance.load_state_dict(radiance.state_dict())
        return TrackModel(net, track), radiance is not None
    if checkpoint is None:
        torch.manual_seed(seed)
        config = stage_config(track.preset, **({"backbone": backbone} if backbone else {}))
        return TrackModel(BokehNet(config), track), False
    loaded = load_checkpoint(checkpoint, stage_config(track.preset, backbone=backbone) if backbone else None)
    config = stage_config(track.preset, backbone=loaded.config.backbone, radiance=loaded.config.radiance,
                          residual_features=loaded.config.residual_features,
                          residual_design=loaded.config.residual_design,
                          eta=loaded.config.eta, tau=loaded.config.tau)
    net = BokehNet(config)
    load_state_strict(net, loaded.state_dict(), optional_prefix="residual.")
    return TrackModel(net, track), True
