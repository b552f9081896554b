"""Upsampling blend (paper Eq. 9): B_hr = M_s * I + (1 - M_s) * up(B_lr)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (half-pixel centres); a no-op when the size already matches."""
    if (int(x.shape[-2]), int(x.shape[-1])) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def focus_mask(defocus: torch.Tensor, eta: float = 20.0, tau: float = 0.125) -> torch.Tensor:
    """M_s = sigmoid(eta * (tau - D_s)): ~1 in focus, ~0 where defocused."""
    return torch.sigmoid(eta * (tau - defocus))


def upsample_blend(image: torch.Tensor, bokeh_lr: torch.Tensor, defocus_lr: torch.Tensor,
                   eta: float = 20.0, tau: float = 0.125) -> torch.Tensor:
    """Eq. 9 at the resolution of `image` (B, 3, H, W); the low-res inputs are upsampled."""
    size = (int(image.shape[-2]), int(image.shape[-1]))
    mask = focus_mask(resize(defocus_lr, size), eta, tau)
    return mask * image + (1 - mask) * resize(bokeh_lr, size)


def expected_defocus(layers: torch.Tensor, kernel_sizes) -> torch.Tensor:
    """A 1-channel D in [0, 1] from softmax layers: the expected blur diameter,
    normalised by the largest kernel. Lets Eq. 9 run on the 6-layer stages."""
    sizes = torch.tensor(kernel_sizes, dtype=layers.dtype, device=layers.device)
    scale = ((sizes - 1) / (sizes.max() - 1)).view(1, -1, 1, 1)
    return (layers * scale).sum(dim=1, keepdim=True)
