"""Depth-guided renderer (issue 6): real bokeh from a photo plus disparity, on synthetic planes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bokehlite.model.depth_render import DepthRenderNet, radius_masks
from bokehlite.model.synthetic import plane_scene

H, W = 96, 288          # three 96 x 96 planes at disparities 0.2, 0.5, 0.8


@pytest.fixture(scope="module")
def net():
    return DepthRenderNet().eval()


def render(net, image, disparity, focus, aperture):
    with torch.no_grad():
        out = net(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(disparity)[None, None],
                  torch.tensor([[focus]]), torch.tensor([[aperture]]))
    return out["bokeh"][0].permute(1, 2, 0).numpy(), out["radius"][0, 0].numpy()


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def test_radius_masks_partition_unity_and_pick_the_nearest_kernels():
    radii = [0, 1, 2, 3, 5, 7]
    r = torch.linspace(-2, 10, 97).view(1, 1, 1, -1)
    m = radius_masks(r, radii)
    assert torch.allclose(m.sum(1), torch.ones_like(r))
    at_four = radius_masks(torch.full((1, 1, 1, 1), 4.0), radii).flatten()
    assert at_four[3].item() == pytest.approx(0.5) and at_four[4].item() == pytest.approx(0.5)


def test_focused_plane_stays_sharp(net):
    image, disparity = plane_scene(H, W)
    bokeh, _ = render(net, image, disparity, focus=0.5, aperture=30.0)
    # Away from the plane's borders by more than the neighbours' blur radius (0.3 * 30 = 9 px).
    region = (slice(10, H - 10), slice(96 + 10, 192 - 10))
    assert psnr(bokeh[region], image[region]) >= 40.0
    # ... while the defocused planes are visibly changed.
    assert psnr(bokeh[:, :86], image[:, :86]) < 35.0


def test_highlight_on_defocused_plane_becomes_a_disc_of_diameter_2R(net):
    for aperture in (20.0, 40.0):
        image, disparity = plane_scene(H, W, disparities=(0.0, 0.0, 0.0), highlights=False)
        image[:] = 0.1
        image[48, 144] = 1.0
        bokeh, radius = render(net, image, disparity, focus=0.5, aperture=aperture)
        r = float(radius[48, 144])
        row = bokeh[48, :, 0] - 0.1
        lit = np.where(row > 0.5 * row.max())[0]
        diameter = lit.max() - lit.min() + 1
        assert abs(diameter - 2 * r) <= 0.2 * 2 * r, (aperture, diameter, 2 * r)


def test_blur_grows_monotonically_with_distance_from_focal_plane(net):
    image, _ = plane_scene(H, W, highlights=False)
    energies = []
    for offset in (0.0, 0.1, 0.2, 0.4, 0.8):
        disparity = np.full((H, W), 0.5 + offset / 2, np.float32)
        bokeh, _ = render(net, image, disparity, focus=0.5 - offset / 2, aperture=30.0)
        g = bokeh[20:-20, 20:-20, 1]
        energies.append(float(np.mean((g[1:, :] - g[:-1, :]) ** 2)))
    assert all(a > b for a, b in zip(energies, energies[1:])), energies


def test_mean_brightness_is_preserved(net):
    image, disparity = plane_scene(H, W)
    bokeh, _ = render(net, image, disparity, focus=0.2, aperture=40.0)
    assert abs(bokeh.mean() - image.mean()) / image.mean() < 0.01


def test_no_dark_halo_at_depth_edges(net):
    image, disparity = plane_scene(H, W, highlights=False)
    image[:] = np.where(disparity[..., None] > 0.5, 0.7, 0.4)    # flat planes: edges only from depth
    bokeh, _ = render(net, image, disparity, focus=0.8, aperture=40.0)
    row = bokeh[H // 2, :, 0]
    for i in range(1, W - 1):
        neighbours = min(row[max(i - 8, 0)], row[min(i + 8, W - 1)])
        assert row[i] >= neighbours * 0.98, i


def test_inputs_are_validated_with_the_expected_shape(net):
    with pytest.raises(ValueError, match="disparity of shape"):
        net(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1), torch.zeros(1, 1))


def test_multi_grid_render_puts_each_layer_on_the_coarsest_grid_its_radius_allows():
    """Radius 0 and 1 px at the model size, 2 to 8 px at 1/2, 9 px and up at 1/4 (issue 21)."""
    half = DepthRenderNet(render_scale=2)
    by_radius = dict(zip(half.radii, half.renderer.grids))
    assert [by_radius[r] for r in (0, 1, 2, 7, 9, 34)] == [1, 1, 2, 2, 4, 4]
    # Each layer keeps its radius in model pixels: the coarse disk is the pyramid's for its grid.
    blur = half.renderer.blurs[half.radii.index(9)]
    assert tuple(blur.kernel.shape) == (7, 7) and blur.factor == 1


def test_multi_grid_render_keeps_a_focused_plane_sharp_and_matches_the_exact_render():
    """Against the exact full-resolution render of the three planes: close everywhere, and
    the focused plane is the photo itself after Eq. 9."""
    image, disparity = plane_scene(H, W, highlights=False)
    exact = DepthRenderNet(render_mode="exact").eval()
    half = DepthRenderNet(render_scale=2).eval()
    reference, _ = render(exact, image, disparity, focus=0.5, aperture=30.0)
    bokeh, _ = render(half, image, disparity, focus=0.5, aperture=30.0)
    assert psnr(bokeh, reference) >= 34.0
    region = (slice(10, H - 10), slice(96 + 10, 192 - 10))
    assert psnr(bokeh[region], image[region]) >= 45.0


def test_multi_grid_render_refuses_sizes_its_coarsest_grid_does_not_divide():
    with pytest.raises(ValueError, match="divisible by 4"):
        DepthRenderNet(render_scale=2)(torch.zeros(1, 3, 6, 8), torch.zeros(1, 1, 6, 8),
                                        torch.zeros(1, 1), torch.zeros(1, 1))


def test_an_untrained_renderers_base_weight_is_its_constant_outside_training():
    """conv3 starts at zero weights: g(I) is sigmoid(bias) exactly, and the full-resolution
    convolutions are skipped; in training the convolutions run, so conv3 gets a gradient."""
    net = DepthRenderNet().eval()
    image = torch.rand(1, 3, 8, 8)
    base = net.radiance.base_weight(image)
    assert tuple(base.shape) == (1, 1, 1, 1)
    assert base.item() == pytest.approx(0.25, abs=1e-6)
    net.radiance.train()
    full = net.radiance.base_weight(image)
    assert tuple(full.shape) == (1, 1, 8, 8) and torch.equal(full, base.expand_as(full))
    full.sum().backward()
    assert net.radiance.conv3.weight.grad is not None and net.radiance.conv3.weight.grad.abs().sum() > 0
