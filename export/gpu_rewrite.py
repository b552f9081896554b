"""Convolutions and compositing chains rewritten for LiteRT's GPU accelerator and for WebGPU's
default limits, in the exported graph only.

The PyTorch reference in model/ and its checkpoints stay as they are: `rewrite_for_gpu`
replaces modules of a copy, after the weights are loaded, and the parity gates compare
the rewritten export against the untouched reference.

1. Wide convolutions. ML Drift packs a convolution's weights into a 2-D texture of
   in_channels x kh x kw rows. 8192 is WebGPU's default maxTextureDimension2D and also
   the OpenCL minimum for a 2-D image's height, so phones that only guarantee the
   minimum hit the same wall. Our `layer3` adapter (3x3, 1024 -> 256) needs 9216 rows
   once its input is 32x48 or larger: at 1024x1536 the GPU track compiled, reported
   fully accelerated, and ran with WebGPU validation errors and garbage outputs (6 dB).
   A convolution is linear in its input channels, conv(concat(a, b)) = conv_a(a) +
   conv_b(b), so a 3x3 convolution with more than 512 input channels becomes one per
   group of 512, their outputs summed; the weights are sliced here and the bias goes to
   the first group. Exact up to float32 summation order.
2. Narrow channel groups. A grouped convolution whose groups have an input or output
   channel count that is not a multiple of 4 compiles and then runs with validation
   errors (2 per group), or crashes SwiftShader (6 per group: SIGILL). It becomes a dense
   convolution with block-diagonal weights (zero across groups): exact, at the cost of
   more multiply-adds in such (small) layers. ResNeXt50-32x4d has 4 to 32 channels per
   group and is not touched; the tiny test backbone (2 per group in its first stage) is.
3. Long compositing chains. ML Drift links ("fuses") a chain of elementwise ops into the
   kernel that produces its first operand, and every other tensor such an op reads becomes
   one more sampled texture of that shader. The layered render composites layer after layer
   as acc = acc * (1 - coverage) + blur (Eq. 7/8, model/render.py `accumulate`): two
   tensors a layer, and the converter computes every layer's blur before the chain, so the
   whole chain links into one shader: 17 sampled textures in the portrait model (9 layers
   on its coarsest grid), 29 in the gpu track at 1024x1536 (15 layers), where WebGPU's
   default maxSampledTexturesPerShaderStage is 16. The shader then fails to compile in a
   browser while LiteRT's native accelerator, which does not apply that limit, runs it.
   After every `LAYERS_PER_SHADER`-th layer of a chain the running sums pass through a 1x1
   convolution with identity weights, which ML Drift does not link, so a new shader starts
   there: at most 1 + 2 x 6 = 13 textures each. Exact (x times 1, plus zeros), for a 7 x 7
   matrix product per pixel at the compositing grid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.render import LayeredRenderer

MAX_TEXTURE_ROWS = 8192
# Input channels per group of a split 3x3 convolution: 512 x 3 x 3 = 4608 rows.
SPLIT_CHANNELS = 512
SPLIT_ROWS = SPLIT_CHANNELS * 3 * 3
CHANNEL_SLICE = 4           # ML Drift stores channels in slices of 4
MAX_SAMPLED_TEXTURES = 16   # WebGPU's default maxSampledTexturesPerShaderStage
# Composited layers per shader: the chain's first operand plus 2 tensors a layer, 13 <= 16,
# with room for a producer that samples more than one texture.
LAYERS_PER_SHADER = 6


class InputSplitConv2d(nn.Module):
    """`conv` as the sum of convolutions over consecutive groups of its input channels."""

    def __init__(self, conv: nn.Conv2d, group_channels: int):
        super().__init__()
        bounds = [*range(0, conv.in_channels, group_channels), conv.in_channels]
        self.sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        self.parts = nn.ModuleList()
        for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
            part = nn.Conv2d(b - a, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                             conv.dilation, bias=i == 0 and conv.bias is not None,
                             padding_mode=conv.padding_mode)
            with torch.no_grad():
                part.weight.copy_(conv.weight[:, a:b])
                if part.bias is not None:
                    part.bias.copy_(conv.bias)
            self.parts.append(part)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(x, self.sizes, dim=1)
        out = self.parts[0](chunks[0])
        for part, chunk in zip(self.parts[1:], chunks[1:]):
            out = out + part(chunk)
        return out


def dense_from_grouped(conv: nn.Conv2d) -> nn.Conv2d:
    """A groups=1 convolution computing the same as grouped `conv` (block-diagonal weights)."""
    dense = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode)
    in_per, out_per = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    with torch.no_grad():
        dense.weight.zero_()
        for g in range(conv.groups):
            dense.weight[g * out_per:(g + 1) * out_per, g * in_per:(g + 1) * in_per] = \
                conv.weight[g * out_per:(g + 1) * out_per]
        if conv.bias is not None:
            dense.bias.copy_(conv.bias)
    return dense


def _describe(conv: nn.Conv2d) -> str:
    kh, kw = conv.kernel_size
    groups = f", {conv.groups} groups" if conv.groups > 1 else ""
    return f"{kh}x{kw} conv {conv.in_channels} -> {conv.out_channels}{groups}"


def _rewrite(conv: nn.Conv2d) -> tuple[nn.Module, dict] | None:
    kh, kw = conv.kernel_size
    rows = conv.in_channels // conv.groups * kh * kw
    if conv.groups == 1 and rows > SPLIT_ROWS:
        group = max(CHANNEL_SLICE, SPLIT_ROWS // (kh * kw) // CHANNEL_SLICE * CHANNEL_SLICE)
        split = InputSplitConv2d(conv, group)
        return split, {
            "rewrite": f"split into {len(split.sizes)} input-channel groups of {group}, outputs summed",
            "reason": f"its weights pack into {conv.in_channels} x {kh} x {kw} = {rows} texture rows; "
                      f"LiteRT's GPU accelerator runs a layer over {MAX_TEXTURE_ROWS} rows wrong "
                      f"(WebGPU's default maxTextureDimension2D, OpenCL's minimum image height)"}
    in_per, out_per = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    depthwise = conv.groups == conv.in_channels
    if conv.groups > 1 and not depthwise and (in_per % CHANNEL_SLICE or out_per % CHANNEL_SLICE):
        return dense_from_grouped(conv), {
            "rewrite": "made dense (block-diagonal weights)",
            "reason": f"{in_per} input / {out_per} output channels per group; LiteRT's GPU accelerator "
                      f"runs grouped convolutions wrong unless both are multiples of {CHANNEL_SLICE}"}
    return None


class ShaderBreak(nn.Module):
    """A 1x1 convolution with identity weights: the same tensor, exactly, through an op that
    LiteRT's GPU backend does not link into the elementwise ops before it. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        return F.conv2d(x, eye[:, :, None, None])


def _chains(renderer: LayeredRenderer) -> list[list[int]]:
    """The renderer's layer indices in compositing order, one list per elementwise chain: one
    chain, or with `grids` one per grid (an upsampling between grids starts a new shader)."""
    n = len(renderer.blurs)
    if renderer.grids is None:
        return [list(reversed(range(n)))]
    return [[i for i in reversed(range(n)) if renderer.grids[i] == grid]
            for grid in sorted(set(renderer.grids), reverse=True)]


def break_compositing_chains(model: nn.Module) -> list[dict]:
    """Give every `LAYERS_PER_SHADER`-th layer of each long compositing chain in `model` a
    ShaderBreak (in place; call it on a copy). One record per break, as rewrite_for_gpu's."""
    records = []
    for name, renderer in model.named_modules():
        if not isinstance(renderer, LayeredRenderer):
            continue
        for chain in _chains(renderer):
            sizes = ", ".join(str(renderer.blurs[i].size) for i in chain)
            for at in range(LAYERS_PER_SHADER, len(chain), LAYERS_PER_SHADER):
                i = chain[at - 1]
                renderer.blurs[i].shader_break = ShaderBreak()
                records.append({
                    "layer": f"{name}.blurs.{i}" if name else f"blurs.{i}",
                    "was": f"one of {len(chain)} layers composited in one shader (kernels {sizes})",
                    "rewrite": "the running sums pass through a 1x1 identity convolution after this layer",
                    "reason": f"LiteRT's GPU backend links the compositing chain (acc * (1 - coverage) + blur, "
                              f"Eq. 7/8) into one shader that samples 2 more textures a layer; a shader over "
                              f"WebGPU's default maxSampledTexturesPerShaderStage ({MAX_SAMPLED_TEXTURES}) fails "
                              f"to compile in a browser (a break every {LAYERS_PER_SHADER} layers: at most "
                              f"{1 + 2 * LAYERS_PER_SHADER})"})
    return records


def rewrite_for_gpu(model: nn.Module) -> list[dict]:
    """Rewrite `model`'s convolutions and long compositing chains in place (call it on a copy);
    one record per layer: {"layer": state-dict name, "was": "3x3 conv 1024 -> 256", "rewrite":
    ..., "reason": ...}."""
    records = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Conv2d:
                continue
            rewritten = _rewrite(child)
            if rewritten is None:
                continue
            module, record = rewritten
            setattr(parent, name, module)
            layer = f"{parent_name}.{name}" if parent_name else name
            records.append({"layer": layer, "was": _describe(child), **record})
    return records + break_compositing_chains(model)
