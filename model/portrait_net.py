"""Portrait mode in one graph: photo + the segmenter's mask + aperture -> bokeh (issue 21).

An app runs the person segmenter, this model and the contract's Eq. 9 blend, with no
other arithmetic: everything between the segmenter and the blend is here.

1. The mask comes in as the segmenter gives it: 256x256, the model image letterboxed
   into it. The graph crops the model's box (fixed by the model size, from runtime/fit.py's
   Letterbox) and samples it bilinearly, pixel centres aligned: Letterbox.sample's geometry,
   except that the outermost half pixel is clamped to the box instead of reading the
   mirrored border (the same wherever the aspect ratios match). Why not constant sampling
   matrices (rows @ P @ cols^T): onnx2tf keeps a MatMul's 4-D result in ONNX's NCHW order
   and then cannot combine it with its NHWC tensors.
2. A fast guided filter (He et al. 2010 and 2015) snaps the 256x256 mask to the photo's
   edges: the coefficients a, b of q = a I + b are fitted on a grid `guide_factor` times
   coarser than the model size, with the grey photo as the guide, and sampled up; q is
   then evaluated at the model size. Box filters (separable depthwise convolutions) and
   products only: XNNPACK and the GPU delegate take them.
3. disparity = q * PERSON + (1 - q) * ground(y): the person a plane in front, the rest a
   ground plane far (0) down to the middle row, nearer towards the bottom (GROUND_NEAR).
4. The focus is the mean disparity weighted by w = (2q - 1)^2 over q > 0.5: the confident
   person (a median does not fit a graph); person_share the share of model pixels with
   q > 0.5 (the host leaves the photo unchanged below contract.MIN_PERSON).
5. The depth-guided renderer on coarser grids (depth_render.py, render_scale=2) renders it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import RadianceConfig
from .depth_render import DepthRenderNet
from .stages import Stage

PERSON = 1.0
GROUND_NEAR = 0.5          # disparity of the ground at the bottom edge
HORIZON = 0.5              # fraction of the height where the ground starts to come nearer
GUIDE_EPS = 1e-3           # guided filter regulariser (grey in [0, 1]): edges of contrast ~0.03 and up
GUIDE_RADIUS_SEGMENTER_PX = 2.0   # box radius of the guided filter, in segmenter pixels
SHARE_SLOPE = 1000.0       # person_share counts clamp(SLOPE (q - 0.5), 0, 1): a step, without a comparison
# The guide's grey: weights exact in float16 (a rounded 0.299 moved q by ~1/255 where a is large).
LUMA = (0.25, 0.5, 0.25)


def ground(height: int) -> np.ndarray:
    """(height,) float32 disparity of the ground plane over the model's rows."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    return (GROUND_NEAR * np.clip((y - HORIZON) / (1.0 - HORIZON), 0.0, 1.0)).astype(np.float32)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum over a (2r+1)^2 window, zero padded: a vertical and a horizontal depthwise pass."""
    c, k = x.shape[1], 2 * radius + 1
    ones = torch.ones(c, 1, k, 1, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, ones, padding=(radius, 0), groups=c)
    return F.conv2d(x, ones.transpose(2, 3), padding=(0, radius), groups=c)


class PortraitNet(nn.Module):
    """(image (B,3,H,W) in [0,1], person (B,1,S,S) the segmenter's output, aperture (B,1))
    -> dict(bokeh, blur, radius, disparity, person (refined q), focus (B,1), person_share (B,1)).

    size: the model size (H, W); box: (top, left, height, width) of the model image inside
    the segmenter's SxS input (runtime/fit.py's Letterbox.fit(size, (S, S))); guide_factor g:
    the guided filter fits a, b on the (H/g, W/g) grid with a box of `guide_radius` cells.
    """

    def __init__(self, size: tuple[int, int], segmenter_size: int, box: tuple[int, int, int, int],
                 guide_factor: int, guide_radius: int, radiance: RadianceConfig = RadianceConfig()):
        super().__init__()
        h, w = size
        if h % guide_factor or w % guide_factor:
            raise ValueError(f"the model size {h}x{w} is not a multiple of the guide factor {guide_factor}")
        self.size, self.guide_factor, self.guide_radius = (h, w), guide_factor, guide_radius
        self.segmenter_size, self.box = segmenter_size, tuple(int(v) for v in box)
        self.register_buffer("ground", torch.tensor(ground(h)).view(1, 1, h, 1), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        # Window sizes, clipped at the borders: the box filter's mean divides by these. Divided
        # by, not multiplied with their inverses: small integers stay exact in float16 weights.
        gh, gw = h // guide_factor, w // guide_factor
        self.register_buffer("count", _box(torch.ones(1, 1, gh, gw), guide_radius), persistent=False)
        self.render = DepthRenderNet(radiance=radiance, render_scale=2)
        self.render_scale = 2

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        return _box(x, self.guide_radius) / self.count

    def unletterbox(self, person: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The segmenter's (B,1,S,S) mask sampled back onto a (grid) cover of the model image."""
        top, left, height, width = self.box
        crop = person[:, :, top:top + height, left:left + width]
        return F.interpolate(crop, size=grid, mode="bilinear", align_corners=False)

    def refine(self, image: torch.Tensor, person: torch.Tensor) -> torch.Tensor:
        """The fast guided filter: (B,1,H,W) q in [0, 1] from the letterboxed mask."""
        g = self.guide_factor
        # Centred grey: the same filter, smaller squares (float16 keeps var = E[I^2] - E[I]^2 better).
        grey = (image * self.luma).sum(dim=1, keepdim=True) - 0.5
        low_grey = F.avg_pool2d(grey, g) if g > 1 else grey
        p = self.unletterbox(person, (self.size[0] // g, self.size[1] // g))
        stats = self._mean(torch.cat([low_grey, p, low_grey * low_grey, low_grey * p], dim=1))
        mean_i, mean_p, corr_i, corr_ip = stats[:, 0:1], stats[:, 1:2], stats[:, 2:3], stats[:, 3:4]
        a = (corr_ip - mean_i * mean_p) / (corr_i - mean_i * mean_i + GUIDE_EPS)
        b = mean_p - a * mean_i
        ab = self._mean(torch.cat([a, b], dim=1))
        # Split on the coarse grid, then sampled up: no slices of a model-size tensor.
        a, b = (F.interpolate(ab[:, i:i + 1], size=self.size, mode="bilinear", align_corners=False)
                if g > 1 else ab[:, i:i + 1] for i in (0, 1))
        return torch.clamp(a * grey + b, 0.0, 1.0)

    def forward(self, image, person, aperture) -> dict[str, torch.Tensor]:
        if image.dim() != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != self.size:
            raise ValueError(f"expected image of shape (B, 3, {self.size[0]}, {self.size[1]}), "
                             f"got {tuple(image.shape)}")
        s = self.segmenter_size
        if person.dim() != 4 or tuple(person.shape[1:]) != (1, s, s):
            raise ValueError(f"expected person of shape (B, 1, {s}, {s}), got {tuple(person.shape)}")
        q = self.refine(image, person)
        disparity = q * PERSON + (1 - q) * self.ground
        w = torch.square(torch.relu(2 * q - 1))
        # Means over one axis at a time: a float16 GPU never holds a sum of a whole image.
        mean = lambda x: x.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)     # noqa: E731
        focus = mean(w * disparity) / torch.clamp(mean(w), min=1e-4)
        share = mean(torch.clamp(SHARE_SLOPE * (q - 0.5), 0.0, 1.0))
        out = self.render(image, disparity, focus.reshape(-1, 1), aperture)
        return {**out, "disparity": disparity, "person": q, "focus": focus.reshape(-1, 1),
                "person_share": share.reshape(-1, 1)}

    def export_outputs(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """No `bokeh`: the host's Eq. 9 at the photo's resolution is the result, and a model-size
        preview would cost a full-resolution blend and a 3-channel output (19 MB at 1024x1536)."""
        named = self.render.export_outputs(out)
        return {"blur": named["blur"], "defocus": named["defocus"], "disparity": out["disparity"],
                "person_share": out["person_share"]}

    @property
    def eq9(self) -> tuple[float, float]:
        return self.render.eq9

    @property
    def radiance(self):
        return self.render.radiance

    def stages(self) -> list[Stage]:
        return [Stage("mask", None, "the letterbox inverted, the guided filter, the disparity and "
                      "the focus", remainder=True), *self.render.stages()[1:3]]
