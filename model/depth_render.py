"""Depth-guided renderer: bokeh from a photo plus a disparity map (paper Eq. 1-2).

D = |d - d_f| and R = K * D: the blur radius in pixels grows with the distance in
disparity from the focal plane, K being the aperture. R is split over the
layered soft-disk renderer's kernels (Eq. 5-8) by linear interpolation between
the two nearest kernel radii, so the layer masks sum to one. Focus and aperture
are inputs, not constants: one exported model serves every focus and aperture.

`render_scale=2` renders each layer on the coarsest grid its radius allows, as the paper's
inference stage and the authors' D2F code (`shrink_scale=2`) render at reduced resolution:
layers of radius 0 and 1 model pixel at the model size, 2 to 8 on a grid 2 times coarser,
9 and up 4 times coarser (LAYER_GRIDS). The layer input (W*I, W, 1) and the radius map are
average-pooled once per grid (a small highlight keeps its Eq. 4 boost), each layer is blurred
there with the pyramid's coarse disk (radius and softness stay in model pixels), and the
running sums are composited coarsest grid first and sampled up bilinearly once per grid.
Eq. 9 then blends at the model size with the mask from the full-resolution defocus
|d - d_f|, so in-focus pixels take the photo itself.

Why these grids. Against the exact full-resolution render (PyTorch; whole / within 8 px of
a depth edge): the astronaut portrait at 512x768, 39.1 / 34.8 dB, at 256x384 36.5 / 34.1;
the Middlebury motorcycle at 256x384 (aperture 40), 37.3 / 35.2. With only the in-focus layer
at the model size the motorcycle falls to 34.3 dB; with the 2 px layer there too it gains
about 2 dB, for a 5x5 blur of seven model-size channels, the costliest op of the model on
XNNPACK (whose depthwise kernels cost about the same per pixel for 1 to 16 channels, so
the layer input stays one tensor). The layers from 9 px on the half grid would gain about
as much, at the cost of the largest kernels there. The design this replaced (every layer over
2 px at half size with its radius halved and rounded up, the largest pooled again per layer)
scored 39.0 / 34.4 dB on the astronaut at 512x768 and took about twice the time. The
full-resolution render (`render_scale=1`, the default) stays the reference.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import RENDER_SCALES
from .config import RadianceConfig, STAGE3_KERNELS
from .radiance import Radiance
from .render import EPS, LayeredRenderer, accumulate
from .stages import Stage

# g(I) of the untrained renderer: a constant, so only the Eq. 4 bright-pixel boost
# (3 I^5, up to 12x this) shapes the weights.
NEUTRAL_WEIGHT = 0.25
# render_scale 2: (smallest radius in model pixels, grid) from the coarsest grid down; a layer
# is blurred on the first grid whose smallest radius it reaches (see the module docstring).
LAYER_GRIDS = ((9, 4), (2, 2), (0, 1))


def layer_grid(radius: float) -> int:
    """The grid factor a layer of `radius` model pixels is rendered on (render_scale 2)."""
    return next(grid for smallest, grid in LAYER_GRIDS if radius >= smallest)


def eq9_blend(image: torch.Tensor, blur: torch.Tensor, defocus: torch.Tensor, eta: float, tau: float):
    """Eq. 9: M = sigmoid(eta (tau - D)), M I + (1 - M) B; the runtime's blend.py, in the graph."""
    mask = torch.sigmoid(eta * (tau - defocus))
    return mask * image + (1 - mask) * blur


def radius_mask(radius: torch.Tensor, radii: Sequence[float], i: int) -> torch.Tensor:
    """(B, 1, H, W) tent weight of `radius` (B, 1, H, W) on layer i of increasing kernel radii.

    m_i rises linearly from r_{i-1} to r_i and falls to r_{i+1}; below r_0 all weight
    is on layer 0, above r_{N-1} on the last layer. The masks of all layers sum to 1.
    """
    r = radii[i]
    up = (radius - radii[i - 1]) / (r - radii[i - 1]) if i > 0 else None
    down = (radii[i + 1] - radius) / (radii[i + 1] - r) if i + 1 < len(radii) else None
    if up is None:
        m = down
    elif down is None:
        m = up
    else:
        m = torch.minimum(up, down)
    return torch.clamp(m, 0.0, 1.0)


def radius_masks(radius: torch.Tensor, radii: Sequence[float]) -> torch.Tensor:
    """(B, N, H, W): `radius_mask` of every layer."""
    return torch.cat([radius_mask(radius, radii, i) for i in range(len(radii))], dim=1)


class DepthRenderNet(nn.Module):
    """(image (B,3,H,W) in [0,1], disparity (B,1,H,W) in [0,1] larger = nearer,
    focus (B,1) focal-plane disparity, aperture (B,1) px of radius per unit |d - d_f|)
    -> dict(bokeh (B,3,H,W), radius (B,1,H,W) in px, weight (B,3,H,W), blur (B,3,H,W)).

    render_scale 1: `bokeh` is the layered render itself (and `blur` the same tensor);
    2: `blur` is the multi-grid render, `bokeh` its Eq. 9 blend with the photo at the model
    size (see the module docstring). H and W must then be multiples of 4.
    """

    def __init__(self, kernel_sizes: Sequence[int] = STAGE3_KERNELS, render_mode: str = "pyramid",
                 radiance: RadianceConfig = RadianceConfig(), render_scale: int = 1):
        super().__init__()
        if render_scale not in RENDER_SCALES:
            raise ValueError(f"render_scale must be one of {RENDER_SCALES}, got {render_scale!r}")
        self.kernel_sizes = tuple(kernel_sizes)
        self.radii = [k // 2 for k in self.kernel_sizes]
        self.max_radius = float(self.radii[-1])
        self.render_scale = render_scale
        self.radiance = Radiance(radiance)
        nn.init.zeros_(self.radiance.conv3.weight)
        nn.init.constant_(self.radiance.conv3.bias, math.log(NEUTRAL_WEIGHT / (1 - NEUTRAL_WEIGHT)))
        grids = None if render_scale == 1 else [layer_grid(r) for r in self.radii]
        self.renderer = LayeredRenderer(self.kernel_sizes, render_mode, grids)

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
        s = self.render_scale
        if s == 1:
            bokeh = self.renderer(image, radius_masks(radius, self.radii), weight)
            return {"bokeh": bokeh, "radius": radius, "weight": weight, "blur": bokeh}
        blur = self._multi_grid(image, weight, radius)
        eta, tau = self.eq9
        bokeh = eq9_blend(image, blur, radius / self.max_radius, eta, tau)
        return {"bokeh": bokeh, "radius": radius, "weight": weight, "blur": blur}

    def _multi_grid(self, image: torch.Tensor, weight: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """render_scale 2: every layer on its grid, composited coarsest grid first (module docstring)."""
        coarsest = max(self.renderer.grids)
        if image.shape[-1] % coarsest or image.shape[-2] % coarsest:
            raise ValueError(f"render_scale {self.render_scale} needs H and W divisible by {coarsest}, "
                             f"got {tuple(image.shape[-2:])}")
        # The layer input (W*I, W, 1) as composite builds it, and the radius, pooled grid by grid.
        pooled = {1: (torch.cat([image * weight, weight.expand_as(image), torch.ones_like(radius)], dim=1), radius)}
        grids = sorted(set(self.renderer.grids))
        for finer, grid in zip(grids, grids[1:]):
            pooled[grid] = tuple(F.avg_pool2d(t, grid // finer) for t in pooled[finer])
        acc = None
        for grid in reversed(grids):
            layer_input, grid_radius = pooled[grid]
            if acc is not None:
                acc = F.interpolate(acc, size=tuple(layer_input.shape[-2:]), mode="bilinear", align_corners=False)
            layers = [i for i, g in enumerate(self.renderer.grids) if g == grid]
            acc = accumulate(acc, [self.renderer.blurs[i] for i in layers],
                             [radius_mask(grid_radius, self.radii, i) for i in layers], layer_input)
        if acc.shape[-2:] != image.shape[-2:]:         # no layer at the model size
            acc = F.interpolate(acc, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)
        return acc[:, 0:3] / torch.clamp(acc[:, 3:6], min=EPS)

    OUTPUT_NAMES = ("bokeh", "defocus")

    def export_outputs(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The contract's named outputs: `defocus` is the blur radius over the largest radius."""
        return {"bokeh": out["bokeh"], "defocus": out["radius"] / self.max_radius, "blur": out["blur"]}

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
