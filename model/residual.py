"""CPU-track residual module: refine the stage-1 bokeh with the full-resolution photo.

The paper names it without details; it is our design. Both designs take the rendered
bokeh at the network resolution (`blur`) and the photo, and return the bokeh at the
photo's size: the bilinear upsampling of `blur` plus a learned correction. Both start
with their last conv at zero, so an untrained (or freshly imported) module is the
identity and stage-1 weights keep their meaning.

- "low-res" (the default): the correction is computed at the network resolution and
  added before the upsampling, so the only full-resolution work is one strided conv that
  reads the photo. A k x k stride-k conv (k = 4 on the cpu track: space-to-depth by k and
  a 1x1 conv, exported as one CONV_2D, where pixel_unshuffle becomes a 6-D transpose)
  takes each k x k block of the photo to f features; a 3x3 conv of `blur` adds its own;
  a 3x3 conv f -> f and a 1x1 conv f -> 3 give the correction (a 1x1: XNNPACK runs a 3x3
  conv with 3 outputs as a slow float32 IGEMM, its weights being under the int8 threshold).
  Bilinear upsampling is linear, so up(blur + c) = up(blur) + up(c): a correction smooth at the scale of
  k pixels, which is where stage 1's bokeh is wrong (in-focus detail comes back through
  Eq. 9's blend with the photo). With f = 32 the photo's conv and the f -> f conv have
  1024 weights or more, so the dynamic-range int8 export quantizes them, and no conv
  keeps a full-resolution indirection buffer. Cost per input pixel:
  (3*16*32 + 9*3*32 + 9*32*32 + 32*3) / 16 = 732 MACs.
- "full-res" (checkpoints from before the low-res design): three 3x3 convs at full
  resolution on concat(up(blur), photo), 6 -> 8 -> 8 -> 3, added to up(blur):
  9 * (6*8 + 8*8 + 8*3) = 1224 MACs per pixel. XNNPACK runs such narrow convs as float32
  IGEMMs (their weights are under the int8 threshold) with an indirection buffer of 9
  pointers per pixel each: most of the int8 cpu track's time.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import RESIDUAL_DESIGNS
from .upsample import resize


def _size(image: torch.Tensor) -> tuple[int, int]:
    return int(image.shape[-2]), int(image.shape[-1])


class FullResRefiner(nn.Module):
    """Three 3x3 convs at full resolution (the first design; its keys are conv1..conv3)."""

    def __init__(self, features: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(6, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv3 = nn.Conv2d(features, 3, 3, padding=1)
        self.relu = nn.ReLU()
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    @property
    def last(self) -> nn.Module:
        """The conv that starts at zero."""
        return self.conv3

    def forward(self, blur: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        bokeh_up = resize(blur, _size(image))
        x = self.relu(self.conv1(torch.cat([bokeh_up, image], dim=1)))
        x = self.relu(self.conv2(x))
        return bokeh_up + self.conv3(x)


class LowResRefiner(nn.Module):
    """A correction at the network resolution from blur and the photo's k x k blocks.

    `factor` is k, the photo-to-network ratio (4 on the cpu track). When the ratio is not
    exactly k (a photo size that is no multiple of the network's), the photo's features
    are resized to blur's grid."""

    def __init__(self, features: int = 32, factor: int = 4):
        super().__init__()
        self.photo = nn.Conv2d(3, features, factor, stride=factor)
        self.blur = nn.Conv2d(3, features, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, 3, 1)
        self.relu = nn.ReLU()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    @property
    def last(self) -> nn.Module:
        """The conv that starts at zero."""
        return self.conv2

    def forward(self, blur: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = resize(self.photo(image), _size(blur)) + self.blur(blur)
        x = self.relu(self.conv1(self.relu(x)))
        return resize(blur + self.conv2(x), _size(image))


def residual_module(design: str, features: int, factor: int) -> nn.Module:
    """The residual module of `design` (one of RESIDUAL_DESIGNS), `features` wide, for a
    network that runs at 1/`factor` of the photo's resolution."""
    if design == "low-res":
        return LowResRefiner(features, factor)
    if design == "full-res":
        return FullResRefiner(features)
    raise ValueError(f"residual_design must be one of {', '.join(RESIDUAL_DESIGNS)}, got {design!r}")
