"""Disk blur kernels (paper Eq. 5 and 6) and the Table 1 kernel sets."""
import math

import numpy as np
import pytest
import torch

from bokehlite.model import hard_disk_kernel, soft_disk_kernel
from bokehlite.model.config import STAGE1_KERNELS, STAGE2_KERNELS, STAGE3_KERNELS
from bokehlite.model.kernels import (coarse_soft_disk_values, grid_kernel_size, render_kernel, render_terms,
                                    soft_disk_values)

SIZES = (1, 3, 5, 11, 19, 35, 69)


def eq5_reference(size: int) -> np.ndarray:
    """Eq. 5 written out tap by tap: 1 where r^2 - x^2 - y^2 >= 0, r = size // 2; sum 1."""
    r = size // 2
    k = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            x, y = j - r, i - r
            k[i, j] = 1.0 if r * r - x * x - y * y >= 0 else 0.0
    return k / k.sum()


def eq6_reference(size: int) -> np.ndarray:
    """Eq. 6 written out tap by tap: 1/2 + 1/2 tanh((r^2 - x^2 - y^2) / 4 + 1/2); sum 1."""
    r = size // 2
    k = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            x, y = j - r, i - r
            k[i, j] = 0.5 + 0.5 * math.tanh((r * r - x * x - y * y) / 4.0 + 0.5)
    return k / k.sum()


@pytest.mark.parametrize("size", SIZES)
def test_hard_disk_kernel_equals_eq5(size):
    k = hard_disk_kernel(size)
    assert k.shape == (size, size) and k.dtype == torch.float32
    np.testing.assert_allclose(k.numpy(), eq5_reference(size), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("size", SIZES)
def test_soft_disk_kernel_equals_eq6(size):
    k = soft_disk_kernel(size)
    assert k.shape == (size, size) and k.dtype == torch.float32
    np.testing.assert_allclose(k.numpy(), eq6_reference(size), rtol=1e-6, atol=1e-9)


def test_soft_disk_is_softer_than_hard_disk_at_the_rim():
    # Eq. 6 at the rim (r^2 - x^2 - y^2 = 0) is 1/2 + 1/2 tanh(1/2) ~ 0.73 of the centre,
    # one pixel outside it is still non-zero; Eq. 5 is 1 and 0 there.
    size = 11
    r = size // 2
    soft, hard = soft_disk_kernel(size).numpy(), hard_disk_kernel(size).numpy()
    assert soft[r, 0] / soft[r, r] == pytest.approx((0.5 + 0.5 * math.tanh(0.5)) /
                                                    (0.5 + 0.5 * math.tanh(r * r / 4 + 0.5)), rel=1e-5)
    assert hard[r, 0] == hard[r, r]
    assert soft[0, 0] > 0 and hard[0, 0] == 0


@pytest.mark.parametrize("make", [hard_disk_kernel, soft_disk_kernel], ids=["hard", "soft"])
@pytest.mark.parametrize("size", SIZES)
def test_kernels_are_symmetric_under_flips_and_transpose(make, size):
    k = make(size)
    assert torch.equal(k, k.flip(0))
    assert torch.equal(k, k.flip(1))
    assert torch.equal(k, k.t())


@pytest.mark.parametrize("make", [hard_disk_kernel, soft_disk_kernel], ids=["hard", "soft"])
@pytest.mark.parametrize("size", SIZES)
def test_kernels_sum_to_one(make, size):
    k = make(size)
    assert float(k.double().sum()) == pytest.approx(1.0, abs=1e-6)
    assert bool((k >= 0).all())


@pytest.mark.parametrize("make", [hard_disk_kernel, soft_disk_kernel], ids=["hard", "soft"])
@pytest.mark.parametrize("size", [0, 2, 4, 36, -1, -3])
def test_even_zero_or_negative_kernel_size_raises_value_error(make, size):
    with pytest.raises(ValueError, match="odd"):
        make(size)


def test_stage_kernel_sets_equal_paper_table1():
    assert STAGE1_KERNELS == (1, 5, 11, 19, 27, 35)
    assert STAGE2_KERNELS == (1, 9, 21, 37, 53, 69)
    assert STAGE3_KERNELS == (1, 3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69)


# --- the renderer's cached kernels ----------------------------------------------------------

@pytest.mark.parametrize("size,factor", [(1, 1), (11, 1), (35, 2), (69, 4)])
def test_render_kernel_is_the_soft_disk_or_its_coarse_form_in_the_asked_dtype(size, factor):
    expected = soft_disk_values(size) if factor == 1 else coarse_soft_disk_values(size, factor)
    k64 = render_kernel(size, factor, dtype=torch.float64)
    assert k64.dtype == torch.float64 and k64.shape == expected.shape
    np.testing.assert_array_equal(k64.numpy(), expected)
    # float32 is the float64 values rounded once: the same as the old `from_numpy(...).float()`.
    assert torch.equal(render_kernel(size, factor), torch.from_numpy(expected).float())
    for dtype in (torch.float16, torch.bfloat16):
        k = render_kernel(size, factor, dtype=dtype)
        assert k.dtype == dtype and k.device.type == "cpu"
        assert float(k.double().sum()) == pytest.approx(1.0, abs=1e-2)


# Ranks read off the singular values of the float64 kernels (those over 1e-6 of the largest):
# a soft disk is far from separable, but a sum of few separable terms.
@pytest.mark.parametrize("size,factor,rank", [(7, 1, 4), (15, 1, 6), (35, 2, 8), (69, 4, 6)])
def test_render_terms_sum_back_to_the_kernel_with_few_terms(size, factor, rank):
    vertical, horizontal = render_terms(size, factor, dtype=torch.float64)
    side = grid_kernel_size(size, factor)
    assert vertical.shape == horizontal.shape == (rank, side)
    kernel = eq6_reference(size) if factor == 1 else coarse_soft_disk_values(size, factor)
    rebuilt = np.einsum("ri,rj->ij", vertical.numpy(), horizontal.numpy())
    np.testing.assert_allclose(rebuilt, kernel, rtol=0, atol=1e-5 * kernel.max())
    assert render_terms(size, factor)[0].dtype == torch.float32


@pytest.mark.parametrize("size,factor,side", [(11, 1, 11), (19, 2, 11), (35, 2, 19), (39, 4, 11), (69, 4, 19)])
def test_grid_kernel_size_is_the_coarse_disk_side(size, factor, side):
    assert grid_kernel_size(size, factor) == side
    assert render_kernel(size, factor).shape == (side, side)


def test_render_kernel_returns_a_fresh_tensor_so_the_cache_cannot_be_corrupted():
    k = render_kernel(11)
    k.fill_(0.0)
    assert float(render_kernel(11).sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("size,factor", [(4, 1), (11, 0), (11, -2)])
def test_render_kernel_rejects_even_sizes_and_non_positive_factors(size, factor):
    with pytest.raises(ValueError, match="odd|factor"):
        render_kernel(size, factor)
