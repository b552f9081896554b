"""Losses of Eq. 10-12 and the validation metrics, on inputs whose answer is known."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bokehlite.model.checkpoint import CheckpointError
from bokehlite.model.losses import (PERCEPTUAL_LAYERS, VGG19_LAYERS, BokehLoss, LossWeights, VGGPerceptual,
                                    gradient_loss, l1_loss, psnr, ssim, ssim_loss, vgg19_features)


def images(seed: int = 0, shape=(2, 3, 48, 64)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_identical_images_give_zero_l1_and_ssim_loss_and_different_ones_do_not():
    a, b = images(0), images(1)
    assert l1_loss(a, a).item() == 0.0
    assert abs(ssim_loss(a, a).item()) < 1e-6
    assert l1_loss(a, b).item() > 0.2
    assert ssim_loss(a, b).item() > 0.5


def test_psnr_and_ssim_metrics_match_known_values():
    a = torch.full((1, 3, 32, 32), 0.5)
    assert psnr(a, a + 0.1).item() == pytest.approx(20.0, abs=1e-3)     # MSE 0.01
    assert psnr(a, a).item() == 100.0                                   # capped, so JSON stays valid
    assert ssim(images(0), images(0)).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert (ssim(images(0), images(1)) < 0.1).all()


def defocus_pair(channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth defocus map (a gentle ramp) and the same map with noise added."""
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    noise = torch.rand((1, channels, 64, 64), generator=torch.Generator().manual_seed(0)) - 0.5
    if channels == 1:                     # D_s in [0, 1]
        smooth = 0.25 + 0.5 * ramp
        return smooth, (smooth + 0.2 * noise).clamp(0, 1)
    # D_m: a softmax over layers whose logits follow the ramp, one slope per layer.
    logits = ramp * (torch.arange(channels).view(1, -1, 1, 1) - channels / 2)
    return torch.softmax(logits, 1), torch.softmax(logits + 2 * noise, 1)


@pytest.mark.parametrize("channels", [6, 1], ids=["eq11 multi-channel", "eq12 single-channel"])
def test_gradient_loss_penalises_a_noisy_defocus_map_more_than_a_smooth_one(channels):
    flat = torch.full((1, 3, 128, 128), 0.4)        # network input at twice the map's size
    smooth, noisy = defocus_pair(channels)
    assert gradient_loss(smooth, flat).item() > 0
    assert gradient_loss(noisy, flat).item() > 2 * gradient_loss(smooth, flat).item()
    assert gradient_loss(torch.full_like(smooth, 0.3), flat).item() == 0.0


def test_gradient_loss_forgives_defocus_edges_that_follow_image_edges():
    edge = torch.zeros(1, 1, 64, 64)
    edge[..., 32:] = 1.0
    with_edge = edge.expand(1, 3, 64, 64).clone()         # the image has the same edge
    flat = torch.full((1, 3, 64, 64), 0.5)
    assert gradient_loss(edge, with_edge).item() < gradient_loss(edge, flat).item()


def test_gradient_loss_refuses_maps_too_small_for_its_scales():
    with pytest.raises(ValueError, match="too small"):
        gradient_loss(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 4, 4))


def vgg19_state_dict(seed: int = 0) -> dict:
    """torchvision's vgg19 `features.N` keys up to conv5_1 (index 28), built here from the
    published layer list, independently of the code under test."""
    torch.manual_seed(seed)
    state, index, channels = {}, 0, 3
    for v in VGG19_LAYERS:
        if index > max(PERCEPTUAL_LAYERS):
            break
        if v == "M":
            index += 1
            continue
        conv = nn.Conv2d(channels, v, 3, padding=1)
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = conv.weight.data, conv.bias.data
        index, channels = index + 2, v
    return state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(vgg19_state_dict(), path)
    return path


def test_vgg_term_runs_from_a_weights_file(vgg_file):
    vgg = VGGPerceptual.from_file(vgg_file)
    a, b = images(0, (1, 3, 32, 32)), images(1, (1, 3, 32, 32))
    assert vgg(a, a).item() == 0.0
    pred = b.clone().requires_grad_(True)
    loss = vgg(pred, a)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in vgg.parameters())
    # The file's weights are the ones used (not a fresh init).
    assert torch.equal(vgg.features[28].weight, vgg19_state_dict()["features.28.weight"])


def test_vgg_weights_missing_a_layer_are_refused_by_name(vgg_file, tmp_path):
    state = torch.load(vgg_file, weights_only=True)
    del state["features.19.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="features.19.weight"):
        VGGPerceptual.from_file(tmp_path / "partial.pth")


# torchvision's vgg19().features up to conv5_1 (index 28), written out from its configuration "E"
# (64, 64, M, 128, 128, M, 256 x4, M, 512 x4, M, 512 ...): the names a weight file carries.
TORCHVISION_VGG19_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128),
                           12: (256, 256), 14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512),
                           23: (512, 512), 25: (512, 512), 28: (512, 512)}


def test_vgg_layers_have_torchvisions_names_and_shapes():
    """Known answer, so it runs where torchvision's wheel cannot load (the CUDA build here)."""
    ours = VGGPerceptual(vgg19_features()[0]).features.state_dict()
    expected = {}
    for index, (out, inp) in TORCHVISION_VGG19_CONVS.items():
        expected[f"{index}.weight"], expected[f"{index}.bias"] = (out, inp, 3, 3), (out,)
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected


def test_bokeh_loss_is_the_weighted_sum_of_its_terms(vgg_file):
    vgg = VGGPerceptual.from_file(vgg_file)
    weights = LossWeights(l1=1.0, ssim=0.5, vgg=0.25, grad=0.1)
    a, b = images(0, (1, 3, 32, 32)), images(1, (1, 3, 32, 32))
    defocus = torch.softmax(images(2, (1, 6, 32, 32)), 1)
    total, terms = BokehLoss(weights, vgg)(a, b, defocus, images(3, (1, 3, 128, 128)))
    assert set(terms) == {"l1", "ssim", "vgg", "grad"}
    expected = sum(getattr(weights, k) * v.item() for k, v in terms.items())
    assert math.isclose(total.item(), expected, rel_tol=1e-5)
    total, terms = BokehLoss(LossWeights(vgg=0.0))(a, b, defocus, images(3, (1, 3, 128, 128)))
    assert set(terms) == {"l1", "ssim", "grad"}
    with pytest.raises(ValueError, match="VGG19"):
        BokehLoss(LossWeights())


def test_renderer_runs_in_bfloat16_under_autocast_and_losses_stay_float32():
    """--amp: the renderer's blurs (its cost) run in the autocast dtype; the losses come out
    in float32 and gradients reach the head."""
    torch.manual_seed(0)
    from bokehlite.model import BackboneConfig, BokehNet, stage_config
    net = BokehNet(stage_config("stage1", backbone=BackboneConfig.tiny()))
    blur_dtypes = []
    for layer in net.renderer.blurs[1:]:       # [0] is the 1x1 in-focus layer: no blur at all
        layer.register_forward_hook(lambda module, args, out: blur_dtypes.append(out.dtype))
    x = images(0, (1, 3, 256, 256))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
        total, terms = BokehLoss(LossWeights(vgg=0.0))(out["blur"], torch.rand(out["blur"].shape),
                                                      out["defocus"], x)
    assert set(blur_dtypes) == {torch.bfloat16} and len(blur_dtypes) == 5
    assert total.dtype == torch.float32 and math.isfinite(total.item())
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.defocus_net.head.parameters())
