"""Depth-guided renderer: bokeh from a photo plus a disparity map (paper Eq. 1-2).

D = |d - d_f| and R = K * D: the blur radius in pixels grows with the distance in
disparity from the focal plane, K being the aperture. R is split over the
layered soft-disk renderer's kernels (Eq. 5-8) by linear interpolation between
the two nearest kernel radii, so the layer masks sum to one. Focus and aperture
are inputs, not constants: one exported model serves every focus and aperture.

`render_scale=2` renders the large layers at half the model size, as the paper's inference
stage and the authors' D2F code do (`shrink_scale=2`): the photo (through its radiance
weights) and the disparity are average-pooled by 2, the layers blurred and composited there
with the kernel radii halved, the running sums sampled back up bilinearly, and the layers
of radius up to FULL_SIZE_RADIUS composited on top at the model size. Eq. 9 then blends at
the model size with the mask from the full-resolution defocus |d - d_f|, so in-focus pixels
take the photo itself. Why the small layers stay: a blur of a pixel or two keeps detail
that halving the grid removes. Against the exact render on the astronaut at 256x384 (PyTorch):
pure half size 34.1 dB; the layers up to 2 px kept, 36.2 dB; up to 3 px, 37.3 dB; up to 5 px,
38.6 dB. Why 2: layers of radius 3 and up have kernels of over 25 taps, which XNNPACK takes only
in separable form, as copies of the 7-channel layer input, and at the model size those copies
cost memory: 1041 MB peak for the 1024x1536 portrait step with the layers up to 5 px, 906 MB
up to 3 px, 652 MB up to 2 px (same run, LiteRT low memory, 2 threads). The full-resolution
render (`render_scale=1`, the default) stays the reference.
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
# render_scale 2: layers of blur radius up to this many model pixels are rendered at the model size.
FULL_SIZE_RADIUS = 2


def scaled_kernel_sizes(kernel_sizes: Sequence[int], scale: int) -> tuple[int, ...]:
    """Kernel sizes whose radii cover `kernel_sizes`' radii divided by `scale` (rounded up,
    duplicates dropped): the half-resolution render keeps every radius it must reach."""
    return tuple(sorted({2 * math.ceil((k // 2) / scale) + 1 for k in kernel_sizes}))


def eq9_blend(image: torch.Tensor, blur: torch.Tensor, defocus: torch.Tensor, eta: float, tau: float):
    """Eq. 9: M = sigmoid(eta (tau - D)), M I + (1 - M) B; the runtime's blend.py, in the graph."""
    mask = torch.sigmoid(eta * (tau - defocus))
    return mask * image + (1 - mask) * blur


def radius_masks(radius: torch.Tensor, radii: Sequence[float], layers: range | None = None) -> torch.Tensor:
    """(B, N, H, W) tent weights of `radius` (B, 1, H, W) over increasing kernel radii.

    m_i rises linearly from r_{i-1} to r_i and falls to r_{i+1}; below r_0 all weight
    is on layer 0, above r_{N-1} on the last layer. The masks sum to 1. `layers`: only
    these masks (the half-resolution render asks for each grid's own).
    """
    masks = []
    for i in (range(len(radii)) if layers is None else layers):
        r = radii[i]
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
    -> dict(bokeh (B,3,H,W), radius (B,1,H,W) in px, weight (B,3,H,W), blur (B,3,H,W)).

    render_scale 1: `bokeh` is the layered render itself (and `blur` the same tensor);
    2: `blur` is the half-resolution render sampled up, `bokeh` its Eq. 9 blend with the
    photo at the model size (see the module docstring). H and W must then be even.
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
        if render_scale == 1:
            self.renderer = LayeredRenderer(self.kernel_sizes, render_mode)
        else:       # the small layers at the model size, the others on the half-size grid
            fine = tuple(k for k in self.kernel_sizes if k // 2 <= FULL_SIZE_RADIUS)
            coarse = scaled_kernel_sizes([k for k in self.kernel_sizes if k // 2 > FULL_SIZE_RADIUS],
                                         render_scale)
            self.fine = LayeredRenderer(fine, render_mode)
            self.renderer = LayeredRenderer(coarse, render_mode)
            # Every layer's radius in model pixels: the tent masks split R over all of them.
            self.layer_radii = [k // 2 for k in fine] + [render_scale * (k // 2) for k in coarse]

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
        if image.shape[-1] % s or image.shape[-2] % s:
            raise ValueError(f"render_scale {s} needs H and W divisible by {s}, got {tuple(image.shape[-2:])}")
        # The layer input (W*I, W, 1) as composite builds it; pooled, each half-size pixel
        # carries its four pixels' radiance (a small highlight keeps its boost).
        layer_input = torch.cat([image * weight, weight, torch.ones_like(weight[:, :1])], dim=1)
        n_fine = len(self.fine.blurs)
        coarse_radius = torch.clamp(aperture * torch.abs(F.avg_pool2d(disparity, s) - focus), 0.0, self.max_radius)
        every = len(self.layer_radii)
        acc = accumulate(None, self.renderer.blurs,
                          radius_masks(coarse_radius, self.layer_radii, range(n_fine, every)),
                          F.avg_pool2d(layer_input, s))
        acc = F.interpolate(acc, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)
        acc = accumulate(acc, self.fine.blurs, radius_masks(radius, self.layer_radii, range(n_fine)), layer_input)
        blur = acc[:, 0:3] / torch.clamp(acc[:, 3:6], min=EPS)
        eta, tau = self.eq9
        bokeh = eq9_blend(image, blur, radius / self.max_radius, eta, tau)
        return {"bokeh": bokeh, "radius": radius, "weight": weight, "blur": blur}

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
