"""BokehNet: defocus estimation + radiance + layered rendering + upsampling (paper Fig. 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BokehConfig
from .defocus import DefocusNet
from .radiance import Radiance
from .render import LayeredRenderer
from .residual import residual_module
from .stages import Stage
from .upsample import expected_defocus, resize, upsample_blend


def net_size(height: int, width: int, cfg: BokehConfig) -> tuple[int, int]:
    """Resolution the network and renderer run at: input * scale, snapped to a multiple of 32."""
    return tuple(max(32, int(round(s * cfg.scale / 32)) * 32) for s in (height, width))


def check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected image of shape (B, 3, H, W), got {shape}")


class BokehNet(nn.Module):
    """image (B, 3, H, W) in [0, 1] -> dict of tensors:

    bokeh (B, 3, H, W): the final result at the input size;
    blur (B, 3, h, w): the rendered bokeh at the network resolution (before Eq. 9);
    defocus (B, C, h, w): softmax layers (C = 6) or D_s in [0, 1] (C = 1);
    defocus_map (B, 1, h, w): D in [0, 1] (D_s, or the expected layer blur for C = 6);
    weight (B, 3, h, w): radiance weights (Eq. 4).
    """

    def __init__(self, config: BokehConfig):
        super().__init__()
        self.config = config
        self.defocus_net = DefocusNet(config.defocus_channels, config.backbone)
        self.radiance = Radiance(config.radiance)
        self.renderer = LayeredRenderer(config.kernel_sizes, config.render_mode)
        self.residual = (residual_module(config.residual_design, config.residual_features,
                                         int(round(1 / config.scale))) if config.residual else None)

    def downscale(self, image: torch.Tensor) -> torch.Tensor:
        """Input -> network resolution. Average pooling when the ratio is an exact
        integer (the export path), bilinear otherwise."""
        h, w = (int(s) for s in image.shape[-2:])
        nh, nw = net_size(h, w, self.config)
        factor = h // nh
        if factor >= 1 and nh * factor == h and nw * factor == w:
            return F.avg_pool2d(image, factor) if factor > 1 else image
        return resize(image, (nh, nw))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(image)
        cfg = self.config
        x = self.downscale(image)
        defocus = self.defocus_net(x)
        weight = self.radiance(x)
        blur = self.renderer(x, defocus, weight)
        defocus_map = defocus if defocus.shape[1] == 1 else expected_defocus(defocus, cfg.kernel_sizes)
        if self.residual is not None:
            # Upsamples blur to the photo's size with its correction (residual.py). The
            # correction can step outside [0, 1]; the contract promises a bokeh in [0, 1].
            bokeh = torch.clamp(self.residual(blur, image), 0.0, 1.0)
        elif cfg.blend:
            bokeh = upsample_blend(image, blur, defocus_map, cfg.eta, cfg.tau)
        else:
            bokeh = resize(blur, (int(image.shape[-2]), int(image.shape[-1])))
        return {"bokeh": bokeh, "blur": blur, "defocus": defocus,
                "defocus_map": defocus_map, "weight": weight}

    # What the exporter and the benchmark need, asked of the network rather than probed.
    OUTPUT_NAMES = ("bokeh", "blur", "defocus")

    def export_outputs(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The contract's named outputs from a forward result: `defocus` is the 1-channel D."""
        return {"bokeh": out["bokeh"], "blur": out["blur"], "defocus": out["defocus_map"]}

    @property
    def eq9(self) -> tuple[float, float]:
        """(eta, tau) of the Eq. 9 mask this network's `defocus` output is meant for."""
        return self.config.eta, self.config.tau

    def stages(self) -> list[Stage]:
        parts = ["input average pooling", "bilinear upsampling to the input size",
                 "Eq. 9 blend" if self.config.blend else "no Eq. 9 blend"]
        if self.residual is not None:
            parts.append(f"residual refiner ({self.config.residual_design})")
        return [Stage("defocus net", self.defocus_net), Stage("radiance", self.radiance),
                Stage("render", self.renderer),
                Stage("upsample/blend", None, ", ".join(parts), remainder=True)]
