"""Emulated float16 arithmetic (export/fp16.py): float32 compute, float16 storage."""
from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from bokehlite.export import fp16
from bokehlite.export.fp16 import (FLOAT16_MAX, emulate_float16, fp16_arithmetic_report, float16_outputs,
                                   round_float16)
from bokehlite.export.track_model import build_model
from bokehlite.export.tracks import example_inputs, get_track
from bokehlite.model import BackboneConfig, Radiance, composite
from bokehlite.model.config import BRIGHT_THRESHOLD
from bokehlite.model.kernels import render_kernel
from bokehlite.model.render import EPS, layer_blur


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return (x * self.factor,)


class ScaleThenUnscale(nn.Module):
    """An intermediate 1e5 times the input that never leaves the module."""

    def forward(self, x):
        return ((x * 1e5) / 1e5,)


def test_values_past_float16_max_become_inf_and_fail_the_gate():
    model = Scale(70000.0)
    out, = float16_outputs(model, {"x": np.ones((1, 1, 2, 2), np.float32)})
    assert np.isinf(out).all()
    assert round_float16(torch.tensor([FLOAT16_MAX]))[0] == FLOAT16_MAX     # the largest finite value stays

    report = fp16_arithmetic_report(model, {"x": np.ones((1, 1, 2, 2), np.float32)}, bfloat16=False)
    assert report["nonfinite"] == 1.0 and not report["passed"]
    assert report["overflow_at"] == ["Scale"]
    assert "inf or NaN" in report["failures"][0]
    json.dumps(report, allow_nan=False)                  # the figures stay strict JSON


def test_emulation_rounds_outputs_and_weights_then_restores_the_weights():
    third = np.full((1, 1, 1, 1), 1 / 3, np.float32)
    out, = float16_outputs(Scale(1.0), {"x": third})
    assert out.item() != np.float32(1 / 3) and out.item() == np.float16(1 / 3)

    conv = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.constant_(conv.weight, 0.1)
    with emulate_float16(conv):
        assert conv.weight.item() == float(np.float16(0.1))
        y = conv(torch.ones(1, 1, 1, 1))
    assert y.item() == float(np.float16(np.float16(0.1) * np.float32(1)))
    assert conv.weight.item() == np.float32(0.1)           # restored exactly
    assert not conv._forward_hooks and not conv._forward_pre_hooks


def test_op_granularity_catches_an_overflow_inside_a_module():
    ones = {"x": np.ones((1, 1, 2, 2), np.float32)}
    assert np.isfinite(float16_outputs(ScaleThenUnscale(), ones, "module")[0]).all()
    assert np.isinf(float16_outputs(ScaleThenUnscale(), ones, "op")[0]).all()
    with pytest.raises(ValueError, match="granularity"):
        float16_outputs(ScaleThenUnscale(), ones, "tensor")


def test_fp16_storage_flips_a_pixel_just_below_the_bright_threshold():
    # 0.99015 < BRIGHT_THRESHOLD in float32 but rounds up to it in float16: a module
    # input that was not rounded (no hooks) would keep the pixel's g(I) weight.
    radiance = Radiance().eval()
    value = 0.99015
    assert value < BRIGHT_THRESHOLD and float(np.float16(value)) == BRIGHT_THRESHOLD
    image = torch.tensor([value, 0.5, 0.5]).view(1, 3, 1, 1)
    with torch.no_grad():
        plain = radiance(image)
        with emulate_float16(radiance):
            emulated = radiance(image)
    assert plain[0, 0].item() < 1.0                      # g(I), a sigmoid
    assert emulated[0, 0].item() == pytest.approx(3 * BRIGHT_THRESHOLD ** 5, rel=2e-3)


def test_renderer_running_sums_are_stored_in_float16():
    # composite called as a function: no module hook sees its running sums, only the
    # renderer's accumulator storage does.
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 24, 24, generator=g)
    weight = torch.rand(1, 1, 24, 24, generator=g) + 0.1
    masks = torch.softmax(4 * torch.rand(1, 3, 24, 24, generator=g), dim=1)
    blurs = [partial(layer_blur, kernel=render_kernel(k)) for k in (1, 5, 9)]

    num = den = None                                      # Eq. 8, storing the sums in float16
    for i in reversed(range(3)):
        m = masks[:, i:i + 1]
        b = blurs[i](torch.cat([m * (image * weight), m * weight.expand_as(image), m], dim=1))
        num = b[:, :3] if num is None else num * (1 - b[:, 6:7]) + b[:, :3]
        den = b[:, 3:6] if den is None else den * (1 - b[:, 6:7]) + b[:, 3:6]
        num, den = round_float16(num), round_float16(den)
    expected = num / torch.clamp(den, min=EPS)

    plain = composite(image, weight, masks, blurs)
    with emulate_float16(nn.Identity()):
        emulated = composite(image, weight, masks, blurs)
    assert torch.equal(emulated, expected)
    assert not torch.equal(plain, expected)
    assert torch.equal(composite(image, weight, masks, blurs), plain)    # default path untouched


@pytest.mark.parametrize("track,size", [("gpu", (128, 192)), ("render", (128, 192))])
def test_tiny_tracks_pass_the_fp16_arithmetic_gate(track, size):
    t = get_track(track)
    model, _ = build_model(t, backbone=BackboneConfig.tiny())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    report = fp16_arithmetic_report(model, [example_inputs(t, size, seed) for seed in range(2)])
    assert report["passed"], report["failures"]
    assert report["psnr"] is not None and fp16.MIN_PSNR <= report["psnr"] < 100   # rounded, not identical
    assert set(report["outputs"]) == set(t.outputs) and report["nonfinite"] == 0
    assert report["bfloat16_autocast"]["psnr"] < report["psnr"]                    # bf16 is the pessimist
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    json.dumps(report, allow_nan=False)


def test_float16_exports_record_their_fp16_arithmetic_psnr_and_float32_ones_do_not(tiny_export):
    _, gpu = tiny_export("gpu")
    _, cpu = tiny_export("cpu")
    assert gpu["fp16_arithmetic_psnr"] >= 40.0 and gpu["fp16_arithmetic"]["passed"] is True
    assert gpu["fp16_arithmetic"]["graph"] == "exported (separable blurs, GPU rewrites)"   # the graph in the file
    assert cpu["fp16_arithmetic_psnr"] is None
