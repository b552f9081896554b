"""Layered bokeh rendering (paper Eq. 7 and 8, SteReFo-style compositing).

The scene is split into defocus layers; each layer and its mask are blurred with
that layer's soft disk and composited from the largest blur down to the in-focus
layer: acc = acc * (1 - K*m) + K*(m * X). The weighted form (Eq. 8) divides the
composite of W*I by the composite of W; the mask normalisation of blur_func
cancels in that ratio.

The functions take tensors (`layer_blur`, `composite`, `layered_blur`); `LayerBlur` and
`LayeredRenderer` are thin modules that hold the kernels as non-persistent buffers, so
they stay out of BokehNet's state dict and export as constants. Kernels follow the
input's dtype and device (float16 and bfloat16 included).

Two modes give the same picture:
- "exact": every kernel at the render resolution (the reference);
- "pyramid": kernels from `PYRAMID_MIN_SIZE` up run on an average-pooled grid with
  a matching coarse disk and are bilinearly upsampled. XNNPACK spends
  O(H*W*k^2) memory on large depthwise kernels; this keeps k small.

Exports blur separably: `blur_separably` switches the pyramid layers whose kernel is
over XNNPACK's 25 depthwise taps to a few separable passes (`separable_blur`), the same
kernel to about 1e-6. PyTorch keeps the k x k form, which it runs faster (534 against
1188 ms for the gpu track's renderer at 512x768 on 2 CPU threads).
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import pyramid_factor
from .kernels import grid_kernel_size, render_kernel, render_terms

# Denominators are clamped here. Large enough to survive float16 (>= 1e-4).
EPS = 1e-4
# Slope of the tanh layer masks of a single-channel defocus map (authors' value).
MASK_SHARPNESS = 100.0
# In pyramid mode, kernels of this size and up (on their grid) have a separable form for
# export: XNNPACK's depthwise kernels take up to 25 taps, and it runs larger ones as a grouped
# GEMM: 4.2x slower, with 2.4x the memory, on the gpu track's 15x15 layer (alone, 2 threads).
SEPARABLE_MIN_SIZE = 7
# How composite's running sums are stored between layers: None means as computed. A
# reduced-precision emulation (export/fp16.py) rounds them here, as a float16 GPU would
# store them; set only through `accumulator_storage`, never while tracing an export.
_ACCUMULATOR_STORAGE: ContextVar[Callable[[torch.Tensor], torch.Tensor] | None] = \
    ContextVar("accumulator_storage", default=None)


@contextlib.contextmanager
def accumulator_storage(store: Callable[[torch.Tensor], torch.Tensor]):
    """Within this block, `composite` passes its running sums (num, den) through `store`
    after every layer, e.g. a round trip through float16."""
    token = _ACCUMULATOR_STORAGE.set(store)
    try:
        yield
    finally:
        _ACCUMULATOR_STORAGE.reset(token)


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


MODES = ("exact", "pyramid")


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be 'exact' or 'pyramid', got {mode!r}")


def _layer_factor(size: int, mode: str) -> int:
    return pyramid_factor(size) if mode == "pyramid" else 1


def separable_blur(x: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor) -> torch.Tensor:
    """Blur every channel of `x` (B, C, H, W) with sum_i outer(vertical[i], horizontal[i]).

    A 1x1 convolution copies each channel r times (one copy per term), a vertical and a
    horizontal depthwise pass blur the C*r copies, and a 1x1 convolution sums each
    channel's r terms. Zero padding in each pass is the k x k convolution's zero padding.
    Why copies and not one depthwise pass with a channel multiplier: TFLite's GPU delegate
    takes a depth multiplier only on a one-channel input (gpu_check.py).
    """
    channels, (r, k) = x.shape[1], vertical.shape
    copies = torch.eye(channels, dtype=x.dtype, device=x.device).repeat_interleave(r, dim=0)
    y = F.conv2d(x, copies[:, :, None, None])                  # channel c * r + i: term i of channel c
    y = F.conv2d(y, vertical.repeat(channels, 1)[:, None, :, None], padding=(k // 2, 0),
                 groups=channels * r)
    y = F.conv2d(y, horizontal.repeat(channels, 1)[:, None, None, :], padding=(0, k // 2),
                 groups=channels * r)
    return F.conv2d(y, copies.T[:, :, None, None])


def layer_blur(x: torch.Tensor, kernel: torch.Tensor, factor: int = 1,
               terms: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Blur every channel of `x` (B, C, H, W) with `kernel` (k, k), k odd, sum 1.

    factor > 1: average-pool by `factor`, convolve on that grid, upsample bilinearly
    (the pyramid mode; `kernel` is then the coarse disk). The kernel is cast to x's
    dtype and device. A 1x1 kernel (sum 1) is the identity and is skipped. `terms`
    (vertical, horizontal), each (r, k), is the kernel in separable form
    (`kernels.render_terms`); given, the blur runs as `separable_blur`.
    """
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (B, C, H, W), got {tuple(x.shape)}")
    if kernel.dim() != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"expected kernel of shape (k, k) with k odd, got {tuple(kernel.shape)}")
    k, f = int(kernel.shape[-1]), int(factor)
    if k == 1 and f == 1:
        return x
    h, w = int(x.shape[-2]), int(x.shape[-1])
    # Zero-pad to a multiple of the factor (the exact conv's zero padding sees the
    # same zeros) so the coarse grid stays aligned with the fine one; a no-op at
    # the network's sizes, which are multiples of 32.
    ph, pw = -h % f, -w % f
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    y = F.avg_pool2d(x, f) if f > 1 else x
    if terms is not None:
        if terms[0].shape != terms[1].shape or terms[0].shape[-1] != k:
            raise ValueError(f"expected terms of shape (r, {k}) each, got {[tuple(t.shape) for t in terms]}")
        y = separable_blur(y, *(_like(t, x) for t in terms))
    else:
        channels = x.shape[1]
        y = F.conv2d(y, _like(kernel, x).expand(channels, 1, k, k), padding=k // 2, groups=channels)
    if f > 1:
        y = F.interpolate(y, size=(h + ph, w + pw), mode="bilinear", align_corners=False)
        if ph or pw:
            y = y[..., :h, :w]
    return y


def _like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # Only when they differ: a same-dtype `to` would still be traced into the export graph.
    return t if t.dtype == x.dtype and t.device == x.device else t.to(dtype=x.dtype, device=x.device)


def has_separable_form(size: int, mode: str, grid: int | None = None) -> bool:
    """Whether a layer of `size` can blur as separable terms: on a coarse grid (pyramid mode, or
    the `grid` its caller pooled to), a kernel over 5x5 on that grid."""
    if grid is None and mode != "pyramid":
        return False
    return grid_kernel_size(size, _layer_factor(size, mode) if grid is None else grid) >= SEPARABLE_MIN_SIZE


def blur_separably(module: nn.Module) -> int:
    """Make every `LayerBlur` in `module` that has a separable form use it; how many do.

    For exports, on a copy of the reference model (see the module docstring)."""
    layers = [m for m in module.modules() if isinstance(m, LayerBlur) and m.vertical is not None]
    for layer in layers:
        layer.separable = True
    return len(layers)


def composite(image: torch.Tensor, weight: torch.Tensor, masks: torch.Tensor,
              blurs: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    """Eq. 8: composite(W * I) / composite(W), largest blur first.

    image (B, 3, H, W), weight (B, 1 or 3, H, W), masks (B, N, H, W); `blurs` holds one
    function per layer, in increasing blur order, each mapping (B, 7, H, W) to a tensor
    of the same shape (e.g. `partial(layer_blur, kernel=k)`). Returns (B, 3, H, W).
    """
    if masks.dim() != 4 or masks.shape[1] != len(blurs):
        raise ValueError(f"expected masks of shape (B, {len(blurs)}, H, W) (one per blur), "
                         f"got {tuple(masks.shape)}")
    weight = weight.expand_as(image)
    # One 7-channel tensor (W*I, W, 1): each layer blurs it times its mask, and one running
    # sum carries num, den and coverage, so a layer is a handful of ops on whole tensors
    # (the exported graph had per-layer concatenations and slices). Same arithmetic as
    # blurring cat(m*W*I, m*W, m) and compositing num and den apart: m * 1 is m.
    # contiguous: cat keeps a channels-last layout from its inputs, on which CPU bfloat16
    # depthwise convolutions with large kernels are orders of magnitude slower.
    layer_input = torch.cat([image * weight, weight, torch.ones_like(weight[:, :1])], dim=1).contiguous()
    acc = accumulate(None, blurs, masks, layer_input)
    return acc[:, 0:3] / torch.clamp(acc[:, 3:6], min=EPS)


def accumulate(acc: torch.Tensor | None, blurs: Sequence[Callable[[torch.Tensor], torch.Tensor]],
               masks: torch.Tensor | Sequence[torch.Tensor], layer_input: torch.Tensor) -> torch.Tensor:
    """composite's running sums (num, den, coverage), from the largest layer down, continued
    from `acc` (None: start empty); the multi-grid render continues a coarser grid's sums
    on the next finer grid (depth_render.py). `masks`: (B, N, H, W), or N tensors (B, 1, H, W),
    which export without the slices of a concatenation."""
    store = _ACCUMULATOR_STORAGE.get()
    for i in reversed(range(len(blurs))):
        mask = masks[:, i:i + 1] if isinstance(masks, torch.Tensor) else masks[i]
        b = blurs[i](mask * layer_input)
        # A layer that does not blur covers exactly its mask: no slice of b.
        coverage = mask if getattr(blurs[i], "identity", False) else b[:, 6:7]
        acc = b if acc is None else acc * (1 - coverage) + b
        # An exported copy's layer may end a shader here (export/gpu_rewrite.py); None otherwise.
        shader_break = getattr(blurs[i], "shader_break", None)
        if shader_break is not None:
            acc = shader_break(acc)
        if store is not None:
            acc = store(acc)
    return acc


def _check_inputs(image, weight, defocus):
    """weight may be None (uniform)."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image of shape (B, 3, H, W), got {tuple(image.shape)}")
    for name, t, channels in (("weight", weight, (1, 3)), ("defocus", defocus, None)):
        if t is not None and (t.dim() != 4 or t.shape[0] != image.shape[0]
                              or t.shape[-2:] != image.shape[-2:]
                              or (channels and t.shape[1] not in channels)):
            c = "C" if channels is None else " or ".join(map(str, channels))
            raise ValueError(f"expected {name} of shape (B, {c}, {image.shape[2]}, {image.shape[3]}), "
                             f"got {tuple(t.shape)}")


def layered_blur(image: torch.Tensor, defocus: torch.Tensor, kernel_sizes: Sequence[int],
                 weight: torch.Tensor | None = None, mode: str = "exact") -> torch.Tensor:
    """Functional form: render `image` (B, 3, H, W) in [0, 1] with a defocus map.

    defocus: (B, len(kernel_sizes), H, W) softmax layers or (B, 1, H, W) in [0, 1].
    weight: radiance weights (B, 1 or 3, H, W); None means uniform.
    Kernels come from a cache (`render_kernel`), in the image's dtype and device.
    """
    _check_mode(mode)
    _check_inputs(image, weight, defocus)
    if weight is None:
        weight = torch.ones_like(image[:, :1])
    blurs = []
    for size in kernel_sizes:
        f = _layer_factor(size, mode)
        kernel = render_kernel(size, f, dtype=image.dtype, device=image.device)
        blurs.append(partial(layer_blur, kernel=kernel, factor=f))
    return composite(image, weight, layer_masks(defocus, len(blurs)), blurs)


class LayerBlur(nn.Module):
    """Module form of `layer_blur` for one layer of `size`, exact or on a coarser grid.

    `grid` g: the caller gives the layer its input already average-pooled by g (one pooling
    for every layer on that grid, depth_render.py) and takes the result on that grid; the
    kernel is the pyramid's coarse disk for g, so radius and softness stay in input pixels.
    """

    def __init__(self, size: int, mode: str = "exact", grid: int | None = None):
        super().__init__()
        _check_mode(mode)
        self.size = size
        coarse = _layer_factor(size, mode) if grid is None else grid
        self.factor = coarse if grid is None else 1         # the pooling this module does itself
        # Non-persistent: derived from the config, so checkpoints never carry it.
        self.register_buffer("kernel", render_kernel(size, coarse), persistent=False)
        # The separable form, where there is one; used once `blur_separably` turns it on.
        vertical, horizontal = (render_terms(size, coarse) if has_separable_form(size, mode, grid)
                                else (None, None))
        self.register_buffer("vertical", vertical, persistent=False)
        self.register_buffer("horizontal", horizontal, persistent=False)
        self.separable = False
        # A module the running sums pass through once this layer is composited (`accumulate`):
        # set only on exported copies, for LiteRT's GPU backend (export/gpu_rewrite.py).
        self.shader_break = None

    @property
    def identity(self) -> bool:
        """A 1x1 kernel (sum 1) at its own resolution: the layer does not blur."""
        return self.kernel.shape[-1] == 1 and self.factor == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms = (self.vertical, self.horizontal) if self.separable else None
        return layer_blur(x, self.kernel, self.factor, terms)


class LayeredRenderer(nn.Module):
    """Module form of `layered_blur` with the kernels precomputed as buffers.

    `grids`: one per kernel, each layer's LayerBlur grid (the multi-grid render of
    depth_render.py, which composites them itself; forward is then not for use).
    """

    def __init__(self, kernel_sizes: Sequence[int], mode: str = "pyramid", grids: Sequence[int] | None = None):
        super().__init__()
        _check_mode(mode)
        self.kernel_sizes = tuple(kernel_sizes)
        self.grids = None if grids is None else tuple(grids)
        self.blurs = nn.ModuleList(LayerBlur(k, mode, None if grids is None else g)
                                   for k, g in zip(self.kernel_sizes, grids or [None] * len(self.kernel_sizes)))

    def forward(self, image: torch.Tensor, defocus: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.grids is not None:
            raise RuntimeError("a multi-grid renderer's layers take pooled inputs: depth_render.py composites them")
        # Checked at this boundary: a wrong channel count would otherwise render silently wrong.
        _check_inputs(image, weight, defocus)
        masks = layer_masks(defocus, len(self.kernel_sizes))
        return composite(image, weight, masks, list(self.blurs))
