"""Layered bokeh rendering (paper Eq. 7 and 8, SteReFo-style compositing).

The scene is split into defocus layers; each layer and its mask are blurred with
that layer's soft disk and composited from the largest blur down to the in-focus
layer: acc = acc * (1 - K*m) + K*(m * X). The weighted form (Eq. 8) divides the
composite of W*I by the composite of W; the mask normalisation of blur_func
cancels in that ratio.

Two modes give the same picture:
- "exact": every kernel at the render resolution (the reference);
- "pyramid": kernels from `PYRAMID_MIN_SIZE` up run on an average-pooled grid with
  a matching coarse disk and are bilinearly upsampled. XNNPACK spends
  O(H*W*k^2) memory on large depthwise kernels; this keeps k small.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import PYRAMID_MIN_SIZE, pyramid_factor
from .kernels import coarse_soft_disk_values, soft_disk_values

# Denominators are clamped here. Large enough to survive float16 (>= 1e-4).
EPS = 1e-4
# Slope of the tanh layer masks of a single-channel defocus map (authors' value).
MASK_SHARPNESS = 100.0


def layer_masks(defocus: torch.Tensor, num_layers: int) -> torch.Tensor:
    """(B, C, H, W) layer masks from a defocus map.

    A C-channel (softmax) map is already one mask per layer. A 1-channel map D_s
    in [0, 1] is split into `num_layers` soft boxes centred at i / (N - 1):
    m_i = 1/2 + 1/2 tanh(s * (1/(N-1) - |D_s - i/(N-1)|)).
    """
    if defocus.dim() != 4:
        raise ValueError(f"expected defocus of shape (B, C, H, W), got {tuple(defocus.shape)}")
    channels = defocus.shape[1]
    if channels == num_layers:
        return defocus
    if channels != 1:
        raise ValueError(f"defocus has {channels} channels; expected 1 or {num_layers}")
    step = 1.0 / (num_layers - 1)
    centres = torch.arange(num_layers, dtype=defocus.dtype, device=defocus.device) * step
    distance = (defocus - centres.view(1, -1, 1, 1)).abs()
    return 0.5 + 0.5 * torch.tanh(MASK_SHARPNESS * (step - distance))


class LayerBlur(nn.Module):
    """Blurs a stack of channels with one soft disk, exactly or on a coarser grid."""

    def __init__(self, size: int, mode: str = "exact"):
        super().__init__()
        self.size = size
        self.factor = pyramid_factor(size) if mode == "pyramid" else 1
        values = (soft_disk_values(size) if self.factor == 1
                  else coarse_soft_disk_values(size, self.factor))
        self.register_buffer("kernel", torch.from_numpy(values).float()[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1:
            return x
        h, w = int(x.shape[-2]), int(x.shape[-1])
        f = self.factor
        # Zero-pad to a multiple of the factor (the exact conv's zero padding sees the
        # same zeros) so the coarse grid stays aligned with the fine one; a no-op at
        # the network's sizes, which are multiples of 32.
        ph, pw = -h % f, -w % f
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        y = F.avg_pool2d(x, f) if f > 1 else x
        k = self.kernel.shape[-1]
        y = F.conv2d(y, self.kernel.expand(x.shape[1], 1, k, k), padding=k // 2, groups=x.shape[1])
        if f > 1:
            y = F.interpolate(y, size=(h + ph, w + pw), mode="bilinear", align_corners=False)
            if ph or pw:
                y = y[..., :h, :w]
        return y


def composite(image: torch.Tensor, weight: torch.Tensor, masks: torch.Tensor,
              blurs: Sequence[nn.Module]) -> torch.Tensor:
    """Eq. 8: composite(W * I) / composite(W), largest blur first.

    image (B, 3, H, W), weight (B, 1 or 3, H, W), masks (B, N, H, W), one blur per layer
    in increasing blur order. Returns (B, 3, H, W).
    """
    weight = weight.expand_as(image)
    weighted = image * weight
    num = den = None
    for i in reversed(range(len(blurs))):
        m = masks[:, i:i + 1]
        b = blurs[i](torch.cat([m * weighted, m * weight, m], dim=1))
        alpha = b[:, 6:7]
        if num is None:
            num, den = b[:, 0:3], b[:, 3:6]
        else:
            num = num * (1 - alpha) + b[:, 0:3]
            den = den * (1 - alpha) + b[:, 3:6]
    return num / torch.clamp(den, min=EPS)


def _check_inputs(image, weight, defocus):
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image of shape (B, 3, H, W), got {tuple(image.shape)}")
    for name, t, channels in (("weight", weight, (1, 3)), ("defocus", defocus, None)):
        if (t.dim() != 4 or t.shape[0] != image.shape[0] or t.shape[-2:] != image.shape[-2:]
                or (channels and t.shape[1] not in channels)):
            c = "C" if channels is None else " or ".join(map(str, channels))
            raise ValueError(f"expected {name} of shape (B, {c}, {image.shape[2]}, {image.shape[3]}), "
                             f"got {tuple(t.shape)}")


def layered_blur(image: torch.Tensor, defocus: torch.Tensor, kernel_sizes: Sequence[int],
                 weight: torch.Tensor | None = None, mode: str = "exact") -> torch.Tensor:
    """Functional form: render `image` (B, 3, H, W) in [0, 1] with a defocus map.

    defocus: (B, len(kernel_sizes), H, W) softmax layers or (B, 1, H, W) in [0, 1].
    weight: radiance weights (B, 1 or 3, H, W); None means uniform.
    """
    if weight is None:
        weight = torch.ones_like(image[:, :1])
    return LayeredRenderer(kernel_sizes, mode).to(image.device)(image, defocus, weight)


class LayeredRenderer(nn.Module):
    """Module form of `layered_blur` with the kernels precomputed as buffers."""

    def __init__(self, kernel_sizes: Sequence[int], mode: str = "pyramid"):
        super().__init__()
        if mode not in ("exact", "pyramid"):
            raise ValueError(f"mode must be 'exact' or 'pyramid', got {mode!r}")
        self.kernel_sizes = tuple(kernel_sizes)
        self.blurs = nn.ModuleList(LayerBlur(k, mode) for k in self.kernel_sizes)

    def forward(self, image: torch.Tensor, defocus: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # Checked at this boundary: a wrong channel count would otherwise render silently wrong.
        _check_inputs(image, weight, defocus)
        masks = layer_masks(defocus, len(self.kernel_sizes))
        return composite(image, weight, masks, self.blurs)
