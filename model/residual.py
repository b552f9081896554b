"""CPU-track residual module: refine the upsampled stage-1 bokeh at full resolution.

The paper names it without details. Design: three 3x3 convs on concat(bokeh_up,
image) (6 -> f -> f -> 3, ReLU between) predict a correction added to bokeh_up.
The last conv starts at zero, so an untrained (or freshly imported) module is the
identity and stage-1 weights keep their meaning. With f = 8 it costs
9 * (6*8 + 8*8 + 8*3) = 1224 MACs per input pixel.
"""
from __future__ import annotations

import torch
from torch import nn


class ResidualRefiner(nn.Module):
    def __init__(self, features: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(6, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv3 = nn.Conv2d(features, 3, 3, padding=1)
        self.relu = nn.ReLU()
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, bokeh_up: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(torch.cat([bokeh_up, image], dim=1)))
        x = self.relu(self.conv2(x))
        return bokeh_up + self.conv3(x)
