"""Depth-guided renderer: bokeh from a photo plus a disparity map (paper Eq. 1-2).

D = |d - d_f| and R = K * D: the blur radius in pixels grows with the distance in
disparity from the focal plane, K being the aperture. R is split over the
layered soft-disk renderer's kernels (Eq. 5-8) by linear interpolation between
the two nearest kernel radii, so the layer masks sum to one. Focus and aperture
are inputs, not constants: one exported model serves every focus and aperture.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .config import RadianceConfig, STAGE3_KERNELS
from .radiance import Radiance
from .render import LayeredRenderer
from .stages import Stage

# g(I) of the untrained renderer: a constant, so only the Eq. 4 bright-pixel boost
# (3 I^5, up to 12x this) shapes the weights.
NEUTRAL_WEIGHT = 0.25


def radius_masks(radius: torch.Tensor, radii: Sequence[float]) -> torch.Tensor:
    """(B, N, H, W) tent weights of `radius` (B, 1, H, W) over increasing kernel radii.

    m_i rises linearly from r_{i-1} to r_i and falls to r_{i+1}; below r_0 all weight
    is on layer 0, above r_{N-1} on the last layer. The masks sum to 1.
    """
    masks = []
    for i, r in enumerate(radii):
        up = (radius - radii[i - 1]) / (r - radii[i - 1]) if i > 0 else None
        down = (radii[i + 1] - radius) / (radii[i + 1] - r) if i + 1 < len(radii) else None
        if up is None:
            m = down
        elif down is None:
            m = up
        else:
            m = torch.minimum(up, down)
        masks.append(torch.clamp(m, 0.0, 1.0))
    return torch.cat(masks, dim=1)


class DepthRenderNet(nn.Module):
    """(image (B,3,H,W) in [0,1], disparity (B,1,H,W) in [0,1] larger = nearer,
    focus (B,1) focal-plane disparity, aperture (B,1) px of radius per unit |d - d_f|)
    -> dict(bokeh (B,3,H,W), radius (B,1,H,W) in px, weight (B,3,H,W))."""

    def __init__(self, kernel_sizes: Sequence[int] = STAGE3_KERNELS, render_mode: str = "pyramid",
                 radiance: RadianceConfig = RadianceConfig()):
        super().__init__()
        self.kernel_sizes = tuple(kernel_sizes)
        self.radii = [k // 2 for k in self.kernel_sizes]
        self.max_radius = float(self.radii[-1])
        self.radiance = Radiance(radiance)
        nn.init.zeros_(self.radiance.conv3.weight)
        nn.init.constant_(self.radiance.conv3.bias, math.log(NEUTRAL_WEIGHT / (1 - NEUTRAL_WEIGHT)))
        self.renderer = LayeredRenderer(self.kernel_sizes, render_mode)

    def forward(self, image, disparity, focus, aperture) -> dict[str, torch.Tensor]:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image of shape (B, 3, H, W), got {tuple(image.shape)}")
        if disparity.shape != image[:, :1].shape:
            raise ValueError(f"expected disparity of shape {tuple(image[:, :1].shape)}, "
                             f"got {tuple(disparity.shape)}")
        focus = focus.reshape(-1, 1, 1, 1)
        aperture = aperture.reshape(-1, 1, 1, 1)
        radius = torch.clamp(aperture * torch.abs(disparity - focus), 0.0, self.max_radius)  # Eq. 1-2
        weight = self.radiance(image)
        bokeh = self.renderer(image, radius_masks(radius, self.radii), weight)
        return {"bokeh": bokeh, "radius": radius, "weight": weight}

    OUTPUT_NAMES = ("bokeh", "defocus")

    def export_outputs(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The contract's named outputs: `defocus` is the blur radius over the largest radius."""
        return {"bokeh": out["bokeh"], "defocus": out["radius"] / self.max_radius}

    @property
    def eq9(self) -> tuple[float, float]:
        """(eta, tau) for `defocus` = radius / max_radius: in focus below about half a
        pixel of radius, and a mask that falls from 1 to 0 within a pixel of radius."""
        return 8.0 * self.max_radius, 0.5 / self.max_radius

    def stages(self) -> list[Stage]:
        return [Stage("defocus net", None, "not in this model: the disparity map is an input "
                      "(no defocus estimation)", absent=True),
                Stage("radiance", self.radiance), Stage("render", self.renderer),
                Stage("radius/masks", None, "Eq. 1-2 blur radius R = K |d - d_f| and the tent masks "
                      "over the kernel radii", remainder=True)]
