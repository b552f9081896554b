"""BokehNet: presets, shapes, the paper-size encoder, compute split, gradients, full size."""
import resource
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bokehlite.model import PRESET_NAMES, BackboneConfig, BokehNet, stage_config
from bokehlite.model.config import RESIDUAL_DESIGNS, BokehConfig
from bokehlite.model.encoder import ResNeXtEncoder
from bokehlite.model.residual import FullResRefiner, LowResRefiner

TINY = BackboneConfig.tiny()
SCALES = {"stage1": 0.25, "stage2": 0.5, "stage3": 0.5, "inference": 0.5, "cpu-track": 0.25}


def tiny_net(preset: str, seed: int = 0, **overrides) -> BokehNet:
    torch.manual_seed(seed)
    return BokehNet(stage_config(preset, backbone=TINY, **overrides))


def test_presets_follow_the_paper():
    assert set(PRESET_NAMES) == set(SCALES)
    table1 = {"stage1": (1, 5, 11, 19, 27, 35), "stage2": (1, 9, 21, 37, 53, 69),
              "stage3": (1, 3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69)}
    table1["inference"], table1["cpu-track"] = table1["stage3"], table1["stage1"]
    for name in PRESET_NAMES:
        cfg = stage_config(name)
        assert cfg.kernel_sizes == table1[name]
        assert cfg.scale == SCALES[name]
        assert cfg.defocus_channels == (1 if name in ("stage3", "inference") else 6)   # Eq. 3
        assert (cfg.eta, cfg.tau) == (20.0, 0.125)                                       # Eq. 9
        assert (cfg.radiance.alpha, cfg.radiance.beta) == (3.0, 5)                       # Eq. 4
    assert stage_config("inference").blend and stage_config("cpu-track").residual
    with pytest.raises(ValueError, match="unknown stage 'stage4'"):
        stage_config("stage4")


# Input sizes chosen so that input * scale is never half-way between multiples of 32.
# Expected network sizes, worked out by hand: nearest multiple of 32 to input * scale.
SIZES = {
    "even": ((128, 128), {0.25: (32, 32), 0.5: (64, 64)}),      # exact average-pool path
    "odd": ((81, 143), {0.25: (32, 32), 0.5: (32, 64)}),
    "odd-unequal": ((97, 211), {0.25: (32, 64), 0.5: (64, 96)}),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_gives_bokeh_at_input_size_and_maps_at_network_size(preset, size):
    (h, w), net_sizes = SIZES[size]
    nh, nw = net_sizes[SCALES[preset]]
    model = tiny_net(preset).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, h, w))
    c = 1 if preset in ("stage3", "inference") else 6
    expected = {"bokeh": (2, 3, h, w), "blur": (2, 3, nh, nw), "defocus": (2, c, nh, nw),
                "defocus_map": (2, 1, nh, nw), "weight": (2, 3, nh, nw)}
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert all(bool(torch.isfinite(v).all()) for v in out.values())
    assert float(out["defocus_map"].min()) >= 0 and float(out["defocus_map"].max()) <= 1


def test_bokehnet_rejects_a_non_batched_image_naming_the_expected_shape():
    model = tiny_net("stage1")
    with pytest.raises(ValueError, match=r"expected image of shape \(B, 3, H, W\), got \(3, 64, 64\)"):
        model(torch.rand(3, 64, 64))


def test_new_cpu_track_configs_build_the_low_res_residual_module():
    assert stage_config("cpu-track").residual_design == "low-res"
    assert isinstance(tiny_net("cpu-track").residual, LowResRefiner)
    assert tiny_net("cpu-track").residual.photo.stride == (4, 4)          # the cpu track's 1/4 scale
    assert isinstance(tiny_net("cpu-track", residual_design="full-res").residual, FullResRefiner)
    assert stage_config("cpu-track").residual_features == 32
    assert stage_config("cpu-track", residual_design="full-res").residual_features == 8
    with pytest.raises(ValueError, match="residual_design must be one of low-res, full-res"):
        stage_config("cpu-track", residual_design="quarter")
    with pytest.raises(ValueError, match="blend and residual are alternatives"):
        stage_config("cpu-track", blend=True)


def test_a_config_stored_before_residual_design_existed_reads_as_the_full_res_design():
    stored = stage_config("cpu-track", residual_design="full-res").to_dict()
    del stored["residual_design"]                       # what a checkpoint of that time holds
    assert BokehConfig.from_dict(stored) == stage_config("cpu-track", residual_design="full-res")
    stage1 = {**stage_config("stage1").to_dict(), "residual_features": 8}
    del stage1["residual_design"]                       # no residual module: today's default later
    assert BokehConfig.from_dict(stage1) == stage_config("stage1")


@pytest.mark.parametrize("design", RESIDUAL_DESIGNS)
@pytest.mark.parametrize("size", [(96, 160), (101, 150)])     # the network's size, and not a multiple
def test_untrained_residual_refiner_is_the_identity(design, size):
    # The last conv starts at zero so stage-1 weights keep their meaning on the CPU track.
    model = tiny_net("cpu-track", residual_design=design).eval()
    image = torch.rand(1, 3, *size)
    with torch.no_grad():
        out = model(image)
    up = F.interpolate(out["blur"], size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out["bokeh"], up.clamp(0, 1), atol=1e-6, rtol=0)
    assert float(model.residual.last.weight.detach().abs().max()) == 0.0


@pytest.mark.parametrize("design", RESIDUAL_DESIGNS)
def test_cpu_track_bokeh_stays_in_the_contract_range_whatever_the_residual_adds(design):
    model = tiny_net("cpu-track", residual_design=design).eval()
    with torch.no_grad():
        model.residual.last.bias.copy_(torch.tensor([5.0, -5.0, 0.0]))    # pushes far outside [0, 1]
        out = model(torch.rand(1, 3, 64, 128))["bokeh"]
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert float(out[:, 0].min()) == 1.0 and float(out[:, 1].max()) == 0.0


def test_low_res_correction_is_upsampled_with_the_bokeh_and_sees_the_photo_at_full_resolution():
    """up(blur + c): a constant correction shifts the whole bokeh by that constant; and with
    the same blur, changing one photo pixel changes the output (the strided conv reads every
    full-resolution pixel, not the network's pooled input)."""
    model = tiny_net("cpu-track").eval()
    image = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.25
    with torch.no_grad():
        base = model(image)["bokeh"]
        model.residual.last.bias.copy_(torch.tensor([0.1, -0.1, 0.0]))
        shifted = model(image)["bokeh"]
        torch.testing.assert_close(shifted - base, torch.tensor([0.1, -0.1, 0.0]).view(1, 3, 1, 1).expand_as(base),
                                   atol=1e-5, rtol=0)
        model.residual.last.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(4))
        before = model.residual(model(image)["blur"], image)
        poked = image.clone()
        poked[:, :, 33, 66] = 0.0
        after = model.residual(model(image)["blur"], poked)
    assert float((after - before).abs().max()) > 1e-4


# --- the paper-size encoder (ResNeXt50-32x4d) ------------------------------------------------

def torchvision_resnext50_keys_without_fc() -> set[str]:
    """torchvision resnext50_32x4d state-dict keys, minus fc, from its known structure."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight", *(f"bn1.{p}" for p in bn)}
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for b in range(blocks):
            prefix = f"layer{layer}.{b}."
            for i in (1, 2, 3):
                keys.add(f"{prefix}conv{i}.weight")
                keys.update(f"{prefix}bn{i}.{p}" for p in bn)
            if b == 0:
                keys.add(f"{prefix}downsample.0.weight")
                keys.update(f"{prefix}downsample.1.{p}" for p in bn)
    return keys


@pytest.fixture(scope="module")
def paper_encoder() -> ResNeXtEncoder:
    return ResNeXtEncoder(BackboneConfig())


def test_paper_encoder_has_about_23_0M_parameters(paper_encoder):
    n = sum(p.numel() for p in paper_encoder.parameters())
    # torchvision's resnext50_32x4d has 25.03M parameters, 2.05M of them in fc.
    assert abs(n - 22.98e6) < 0.1e6, n


def test_paper_encoder_state_dict_keys_equal_torchvision_resnext50_minus_fc(paper_encoder):
    assert set(paper_encoder.state_dict()) == torchvision_resnext50_keys_without_fc()


def test_paper_encoder_3x3_convs_are_grouped_32x4d(paper_encoder):
    assert tuple(paper_encoder.layer1[0].conv2.weight.shape) == (128, 4, 3, 3)
    assert paper_encoder.layer1[0].conv2.groups == 32
    assert tuple(paper_encoder.layer4[0].conv2.weight.shape) == (1024, 32, 3, 3)
    assert paper_encoder.out_channels == (256, 512, 1024, 2048)


def test_paper_size_bokehnet_state_dict_has_the_encoder_under_defocus_net():
    model = BokehNet(stage_config("inference"))
    enc = {k[len("defocus_net.encoder."):] for k in model.state_dict() if k.startswith("defocus_net.encoder.")}
    assert enc == torchvision_resnext50_keys_without_fc()


# --- compute split on the CPU track ----------------------------------------------------------

def test_cpu_track_residual_costs_under_15_percent_of_stage1_compute_at_1024x1536():
    """Counted with forward hooks on every Conv2d of the paper-size cpu-track model, run on
    PyTorch's meta device (shapes only, no arithmetic), so the full 1024x1536 pass is free.
    The stage-1 side counts only its convs (encoder, decoder, radiance), not the renderer:
    that makes the bound stricter."""
    h, w = 1024, 1536
    with torch.device("meta"):
        model = BokehNet(stage_config("cpu-track"))
    macs = {}

    def count(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        macs[module] = output[0].numel() * (module.in_channels // module.groups) * k

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(count)
    with torch.no_grad():
        out = model(torch.empty(1, 3, h, w, device="meta"))
    assert tuple(out["bokeh"].shape) == (1, 3, h, w)

    def total(module):
        return sum(macs[m] for m in module.modules() if m in macs)

    residual = total(model.residual)
    stage1 = total(model.defocus_net) + total(model.radiance)
    # Independent checks of the counting: the low-res module's four convs on the 256x384 grid
    # (a 4x4 stride-4 conv 3->32 of the photo, 3x3 3->32 of blur, 3x3 32->32, 1x1 32->3), and
    # torchvision's 4.23 GMACs for ResNeXt50 at 224x224 (minus fc) scaled to 256x384.
    assert residual == (3 * 16 * 32 + 9 * 3 * 32 + 9 * 32 * 32 + 32 * 3) * (h // 4) * (w // 4)
    assert residual == 732 * h * w                      # residual.py's figure per input pixel
    enc = total(model.defocus_net.encoder)
    assert enc == pytest.approx((4.23e9 - 2.05e6) * (256 * 384) / (224 * 224), rel=0.02)
    assert residual / stage1 < 0.15, (residual, stage1)


# --- training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_gradients_reach_every_learnable_parameter(preset):
    model = tiny_net(preset, seed=0).train()
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 64, 128, generator=g)
    image[:, :, 10:13, 20:23] = 1.0      # saturated highlights exercise the Eq. 4 boost
    target = torch.rand(2, 3, 64, 128, generator=g)
    out = model(image)
    if out["defocus"].shape[1] == 1:
        # The 1-channel head is clamped to [0, 1]; gradients pass only inside that range.
        inside = ((out["defocus"] > 0) & (out["defocus"] < 1)).float().mean()
        assert float(inside) > 0.05
    F.l1_loss(out["bokeh"], target).backward()

    # Behind the residual's zero last conv (low-res: conv2, the cpu track's default).
    frozen_by_zero_init = ("residual.photo.", "residual.blur.", "residual.conv1.")
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        if not name.startswith(frozen_by_zero_init):
            assert float(p.grad.abs().max()) > 0, f"no gradient reaches {name}"
    if model.residual is not None:
        assert float(model.residual.last.weight.grad.abs().max()) > 0


@pytest.mark.parametrize("design", RESIDUAL_DESIGNS)
def test_gradients_reach_the_residual_refiner_once_its_last_conv_is_nonzero(design):
    model = tiny_net("cpu-track", residual_design=design).train()
    with torch.no_grad():
        model.residual.last.weight.normal_(0, 0.1)
    image = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(2))
    model(image)["bokeh"].square().mean().backward()
    for name, p in model.residual.named_parameters():
        assert float(p.grad.abs().max()) > 0, name


# --- one full-size forward pass --------------------------------------------------------------

@pytest.mark.slow
def test_paper_size_inference_preset_runs_at_1024x1536():
    torch.manual_seed(0)
    model = BokehNet(stage_config("inference")).eval()
    image = torch.rand(1, 3, 1024, 1536)
    start = time.perf_counter()
    with torch.no_grad():
        out = model(image)
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
    print(f"\ninference preset, 1024x1536, CPU: forward {elapsed:.2f} s, peak RSS {peak_mib:.0f} MiB")
    assert tuple(out["bokeh"].shape) == (1, 3, 1024, 1536)
    assert tuple(out["blur"].shape) == (1, 3, 512, 768)
    assert all(bool(torch.isfinite(v).all()) for v in out.values())
    # Eq. 9 mixes the image with a weighted average of image pixels: stays within [0, 1].
    assert float(out["bokeh"].min()) >= -1e-5 and float(out["bokeh"].max()) <= 1 + 1e-5
    assert float(out["defocus"].min()) >= 0 and float(out["defocus"].max()) <= 1
