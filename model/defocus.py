"""Defocus estimation network (paper section 3.1): ResNeXt encoder + MiDaS-style decoder.

encoder -> per-level 3x3 adapters to `features` channels -> four fusion blocks of
residual conv units (bilinear x2 each) -> head. The decomposition and the head
indices (head.0, head.2, head.4) follow the authors' MidasNet so their checkpoint
maps one to one (see checkpoint.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BackboneConfig
from .encoder import ResNeXtEncoder


class ResidualConvUnit(nn.Module):
    """relu -> conv3x3 -> relu -> conv3x3, added to relu(x).

    The skip adds relu(x), not x: MiDaS applies an in-place ReLU to x before its
    skip, so that is what trained checkpoints expect. Written out explicitly here.
    """

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FusionBlock(nn.Module):
    """out = rcu_out(x + rcu_skip(skip)), then bilinear x2 (align_corners=True, as MiDaS)."""

    def __init__(self, features: int, has_skip: bool):
        super().__init__()
        self.rcu_skip = ResidualConvUnit(features) if has_skip else None
        self.rcu_out = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.rcu_skip is not None:
            x = x + self.rcu_skip(skip)
        x = self.rcu_out(x)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class DefocusNet(nn.Module):
    """(B, 3, H, W) in [0, 1], H and W multiples of 32 -> (B, C, H, W) defocus.

    C > 1: softmax over C layer probabilities (stages 1-2).
    C = 1: D_s clamped to [0, 1] (stage 3; the authors' head is a raw regression).
    """

    def __init__(self, out_channels: int, cfg: BackboneConfig = BackboneConfig()):
        super().__init__()
        f = cfg.features
        self.encoder = ResNeXtEncoder(cfg)
        self.adapters = nn.ModuleList(nn.Conv2d(c, f, 3, padding=1, bias=False)
                                      for c in self.encoder.out_channels)
        # fusions[3] takes the deepest level alone; the others add a skip level.
        self.fusions = nn.ModuleList(FusionBlock(f, has_skip=i < 3) for i in range(4))
        self.head = nn.Sequential(
            nn.Conv2d(f, f // 2, 3, padding=1), Upsample2x(),
            nn.Conv2d(f // 2, cfg.head_features, 3, padding=1), nn.ReLU(),
            nn.Conv2d(cfg.head_features, out_channels, 1))
        self.out_channels = out_channels
        if out_channels == 1:
            # Start mid-range: an untrained D_s sits inside the clamp (gradients flow)
            # and every export renders real blur instead of a no-op.
            nn.init.constant_(self.head[4].bias, 0.5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        levels = [a(l) for a, l in zip(self.adapters, self.encoder(image))]
        x = self.fusions[3](levels[3])
        for i in (2, 1, 0):
            x = self.fusions[i](x, levels[i])
        x = self.head(x)
        if self.out_channels > 1:
            return torch.softmax(x, dim=1)
        return torch.clamp(x, 0.0, 1.0)
