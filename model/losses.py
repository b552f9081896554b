"""Training losses (paper Eq. 10-12) and the validation metrics.

L_total = w_l1 L1(B, B_gt) + w_vgg L_vgg(B, B_gt) + w_ssim L_ssim(B, B_gt) + w_grad L_grad(D)
with the paper's weights 1, 1, 1 and 0.1 (Eq. 10).

- SSIM (loss and metric) and PSNR come from kornia: `kornia.metrics.ssim` is the usual
  11x11 Gaussian-window SSIM (sigma 1.5, reflect padding), differentiable and safe under
  autocast (it computes its filters in float32); L_ssim = 1 - mean SSIM.
- L_vgg: VGG19 (torchvision's architecture and state-dict names) with ImageNet weights
  from a file, L1 between features at relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1
  weighted 1/32, 1/16, 1/8, 1/4, 1 (the pix2pixHD perceptual loss; the paper does not
  say which layers it used).
- L_grad (Eq. 11 and 12): edge-aware smoothness of the defocus map over S = 4 scales.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import nn

SSIM_WINDOW = 11
GRAD_SCALES = 4
# PSNR of identical images is infinite; metrics are capped here so reports stay valid JSON.
PSNR_CAP = 100.0

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's `cfgs["E"]` (VGG19): conv widths, "M" = 2x2 max pooling.
VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# Index in vgg19().features of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 -> weight.
PERCEPTUAL_LAYERS = {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise ValueError(f"expected two images of the same shape (B, 3, H, W), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error; images (B, 3, H, W) in [0, 1]."""
    _check_pair(pred, target)
    return F.l1_loss(pred, target)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, window: int = SSIM_WINDOW) -> torch.Tensor:
    """1 - mean SSIM (kornia); images (B, 3, H, W) in [0, 1]. 0 for identical images."""
    _check_pair(pred, target)
    return 1.0 - kornia.metrics.ssim(pred, target, window, max_val=1.0).mean()


def gradient_loss(defocus: torch.Tensor, image: torch.Tensor, scales: int = GRAD_SCALES) -> torch.Tensor:
    """Pyramid gradient loss of a defocus map (Eq. 11 for C > 1, Eq. 12 for C = 1).

    defocus (B, C, h, w): the C softmax layers D_m (stages 1-2) or D_s (stage 3).
    image (B, 3, H, W): the network's input; average-pooled to (h, w) here.
    At each of `scales` scales (halved each time): mean over pixels and channels of
    |d_x D| exp(-|d_x I|) + |d_y D| exp(-|d_y I|), |d I| averaged over RGB; the result
    is the mean over scales. Means rather than sums, so the 0.1 of Eq. 10 weighs it
    against per-pixel L1.
    """
    if defocus.dim() != 4 or image.dim() != 4 or image.shape[1] != 3 or image.shape[0] != defocus.shape[0]:
        raise ValueError(f"expected defocus (B, C, h, w) and image (B, 3, H, W), got "
                         f"{tuple(defocus.shape)} and {tuple(image.shape)}")
    d = defocus.float()
    i = F.adaptive_avg_pool2d(image.float(), d.shape[-2:])
    total = d.new_zeros(())
    for s in range(scales):
        if s:
            if min(d.shape[-2:]) < 4:
                raise ValueError(f"defocus map of {tuple(defocus.shape[-2:])} is too small for "
                                 f"{scales} scales")
            d, i = F.avg_pool2d(d, 2), F.avg_pool2d(i, 2)
        dx_d = (d[..., :, 1:] - d[..., :, :-1]).abs()
        dy_d = (d[..., 1:, :] - d[..., :-1, :]).abs()
        dx_i = (i[..., :, 1:] - i[..., :, :-1]).abs().mean(1, keepdim=True)
        dy_i = (i[..., 1:, :] - i[..., :-1, :]).abs().mean(1, keepdim=True)
        total = total + (dx_d * torch.exp(-dx_i)).mean() + (dy_d * torch.exp(-dy_i)).mean()
    return total / scales


def vgg19_features() -> tuple[nn.Sequential, str]:
    """VGG19's `features` (untrained) and where the architecture came from.

    torchvision's own `vgg19()` when torchvision imports. A torchvision wheel built for
    another torch (e.g. the CUDA wheel beside a CPU-only torch) fails at import; then
    the same layers are built from torchvision's published configuration "E" (same
    indices, so the same state-dict keys), and the weight file is checked against them.
    """
    try:
        import torchvision
        return torchvision.models.vgg19(weights=None).features, f"torchvision {torchvision.__version__}"
    except Exception as exc:  # a broken torchvision raises RuntimeError, not ImportError
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    layers, channels = [], 3
    for v in VGG19_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers), f"torchvision's configuration E (torchvision unusable: {reason})"


class VGGPerceptual(nn.Module):
    """L_vgg: weighted L1 between VGG19 features of prediction and target.

    Build it with `from_file`; the network is frozen and kept in eval mode."""

    def __init__(self, features: nn.Sequential, layers: dict[int, float] = PERCEPTUAL_LAYERS,
                 source: str = ""):
        super().__init__()
        last = max(layers)
        self.features = features[:last + 1]
        self.layers = dict(layers)
        self.source = source
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "VGGPerceptual":
        """From torchvision's ImageNet vgg19 file (`vgg19-dcbb9e9d.pth`), or any state dict
        with its `features.N.weight/bias` keys up to relu5_1 (the classifier is ignored)."""
        from .checkpoint import load_state_strict, read_weights_file

        features, source = vgg19_features()
        model = cls(features, source=source)
        state = read_weights_file(path, "VGG19 state dict")
        wanted = {f"features.{k}" for k in model.features.state_dict()}
        state = {k: v for k, v in state.items() if k in wanted or not k.startswith(("features.", "classifier."))}
        load_state_strict(model, state, what="VGG19's features up to relu5_1 (torchvision's vgg19 keys)")
        return model

    def train(self, mode: bool = True) -> "VGGPerceptual":
        return super().train(False)  # frozen: always eval

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target)
        x = (pred - self.mean) / self.std
        with torch.no_grad():
            y = (target - self.mean) / self.std
            target_features = {}
            for i, layer in enumerate(self.features):
                y = layer(y)
                if i in self.layers:
                    target_features[i] = y.clone()
        total = pred.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                total = total + self.layers[i] * F.l1_loss(x.float(), target_features[i].float())
        return total


@dataclass(frozen=True)
class LossWeights:
    """Eq. 10's weights. A weight of 0 switches its term off (it is then not computed)."""

    l1: float = 1.0
    ssim: float = 1.0
    vgg: float = 1.0
    grad: float = 0.1


class BokehLoss(nn.Module):
    """Eq. 10: (total, {term: unweighted value}) for a prediction, its target, the defocus
    map that rendered it and the network's input.

    bokeh, target (B, 3, H, W) in [0, 1]; defocus (B, C, h, w); image (B, 3, H', W').
    Computed in float32 whatever the autocast dtype. `vgg` None: no perceptual term.
    """

    def __init__(self, weights: LossWeights = LossWeights(), vgg: VGGPerceptual | None = None,
                 grad_scales: int = GRAD_SCALES):
        super().__init__()
        if weights.vgg and vgg is None:
            raise ValueError("the perceptual term has a weight but no VGG19 network")
        self.weights = weights
        self.vgg = vgg if weights.vgg else None
        self.grad_scales = grad_scales

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(name for name in ("l1", "ssim", "vgg", "grad") if getattr(self.weights, name))

    def forward(self, bokeh, target, defocus, image) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        bokeh, target = bokeh.float(), target.float()
        terms = {}
        with torch.autocast(device_type=bokeh.device.type, enabled=False):
            if self.weights.l1:
                terms["l1"] = l1_loss(bokeh, target)
            if self.weights.ssim:
                terms["ssim"] = ssim_loss(bokeh, target)
            if self.weights.grad:
                terms["grad"] = gradient_loss(defocus, image, self.grad_scales)
        if self.vgg is not None:
            terms["vgg"] = self.vgg(bokeh, target)   # VGG may run in half under autocast
        total = sum(getattr(self.weights, name) * value for name, value in terms.items())
        return total, terms


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of each image (peak 1), by kornia, capped at PSNR_CAP."""
    _check_pair(pred, target)
    values = [kornia.metrics.psnr(p.float().clamp(0, 1), t.float(), 1.0) for p, t in zip(pred, target)]
    return torch.stack(values).clamp(max=PSNR_CAP)


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = SSIM_WINDOW) -> torch.Tensor:
    """(B,) mean SSIM of each image, by kornia."""
    _check_pair(pred, target)
    return kornia.metrics.ssim(pred.float().clamp(0, 1), target.float(), window, max_val=1.0).mean((1, 2, 3))


def finite(value: float) -> float | None:
    """A float for JSON: None for NaN or infinity."""
    return value if math.isfinite(value) else None
