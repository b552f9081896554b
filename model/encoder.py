"""ResNeXt encoder with torchvision's module and state-dict names.

Names follow torchvision's `resnet.py` (conv1, bn1, layer1..layer4, Bottleneck with
conv1..conv3, bn1..bn3, downsample), so an ImageNet `resnext50_32x4d` weight file
loads directly (its `fc.*` keys are the only extras).
"""
from __future__ import annotations

import torch
from torch import nn

from .config import BackboneConfig

EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 -> grouped 3x3 (stride here, as in torchvision) -> 1x1, plus a shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int, groups: int, width_per_group: int):
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        out = planes * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class ResNeXtEncoder(nn.Module):
    """Returns the four stage outputs at 1/4, 1/8, 1/16 and 1/32 of the input size."""

    def __init__(self, cfg: BackboneConfig = BackboneConfig()):
        super().__init__()
        if int(cfg.planes[0] * cfg.width_per_group / 64) < 1:
            raise ValueError("backbone too narrow: planes[0] * width_per_group must be >= 64")
        stem = cfg.planes[0]
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem
        for i, (planes, blocks) in enumerate(zip(cfg.planes, cfg.blocks)):
            stride = 1 if i == 0 else 2
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(inplanes, planes, stride if b == 0 else 1,
                                        cfg.groups, cfg.width_per_group))
                inplanes = planes * EXPANSION
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.out_channels = tuple(p * EXPANSION for p in cfg.planes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [l1, l2, l3, self.layer4(l3)]
