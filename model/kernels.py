"""Disk blur kernels (paper Eq. 5 and 6).

Kernels are built once, in float64 numpy, so that the values are exact and become
plain constants in an exported graph.
"""
from __future__ import annotations

import functools

import numpy as np
import torch


def _grid(size: int) -> tuple[np.ndarray, int]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")
    r = size // 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    return r * r - x * x - y * y, r


def hard_disk_values(size: int) -> np.ndarray:
    """Eq. 5, normalised to sum 1: 1 inside the disk of radius size // 2, else 0."""
    d, _ = _grid(size)
    k = (d >= 0).astype(np.float64)
    return k / k.sum()


def _soft(d: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.25 * d + 0.5)


def soft_disk_values(size: int) -> np.ndarray:
    """Eq. 6, normalised to sum 1: 1/2 + 1/2 tanh((r^2 - x^2 - y^2) / 4 + 1/2)."""
    d, _ = _grid(size)
    k = _soft(d)
    return k / k.sum()


def grid_kernel_size(size: int, factor: int) -> int:
    """Side of the soft disk of `size` on a grid `factor` times coarser (its taps cover the disk)."""
    return size if factor == 1 else 2 * int(np.ceil((size // 2 + 1) / factor)) + 1


def coarse_soft_disk_values(size: int, factor: int) -> np.ndarray:
    """The soft disk of `size`, for a grid `factor` times coarser (pyramid render).

    Each coarse tap integrates Eq. 6 over its factor x factor footprint (sampled at
    `factor` sub-positions per axis), so radius and edge softness stay in input pixels.
    """
    r = size // 2
    n = grid_kernel_size(size, factor) // 2
    sub = (np.arange(factor) + 0.5) / factor - 0.5
    pos = (np.arange(-n, n + 1)[:, None] + sub[None, :]).reshape(-1) * factor
    y, x = np.meshgrid(pos, pos, indexing="ij")
    fine = _soft(r * r - x * x - y * y)
    k = fine.reshape(2 * n + 1, factor, 2 * n + 1, factor).sum(axis=(1, 3))
    return k / k.sum()


def hard_disk_kernel(size: int) -> torch.Tensor:
    """(size, size) float32 hard disk kernel (Eq. 5), sum 1."""
    return torch.from_numpy(hard_disk_values(size)).float()


def soft_disk_kernel(size: int) -> torch.Tensor:
    """(size, size) float32 soft disk kernel (Eq. 6), sum 1."""
    return torch.from_numpy(soft_disk_values(size)).float()


@functools.lru_cache(maxsize=None)
def _render_values(size: int, factor: int) -> np.ndarray:
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    values = soft_disk_values(size) if factor == 1 else coarse_soft_disk_values(size, factor)
    values.flags.writeable = False          # shared by every caller through the cache
    return values


def render_kernel(size: int, factor: int = 1, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """The renderer's kernel for a layer of `size` on a `factor` times coarser grid, sum 1.

    (size, size) Eq. 6 disk for factor 1, else `coarse_soft_disk_values`. Computed once
    per (size, factor) in float64 and rounded once to `dtype`, so every caller sees the
    same values as the float32 buffers of `LayerBlur`.
    """
    return torch.tensor(_render_values(size, factor), dtype=dtype, device=device)


# Separable terms whose singular value is below this fraction of the largest are dropped:
# they change no kernel value by more than about 1e-6 of the largest, far inside the
# exports' parity gates, and they would cost as much as a term that matters.
_RANK_TOLERANCE = 1e-6


@functools.lru_cache(maxsize=None)
def _separable_values(size: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(_render_values(size, factor))
    rank = int((s > s[0] * _RANK_TOLERANCE).sum())
    root = np.sqrt(s[:rank])[:, None]          # split each singular value between the two passes
    vertical, horizontal = u[:, :rank].T * root, vt[:rank] * root
    for values in (vertical, horizontal):
        values.flags.writeable = False
    return vertical, horizontal


def render_terms(size: int, factor: int = 1, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`render_kernel(size, factor)` as separable terms: (vertical, horizontal), each (r, k),
    with kernel = sum_i outer(vertical[i], horizontal[i]).

    Why: a disk is not separable, but it is a sum of few separable terms. Its rank r is low
    (a soft 15x15 disk has rank 6), so r vertical and r horizontal passes of k taps cost
    about what one k x k pass does, and run as fast 1-D depthwise kernels where XNNPACK
    runs a k x k depthwise kernel over 25 taps as a slow grouped GEMM with H*W*k^2 pointers.
    The terms come from the SVD in float64 (see _RANK_TOLERANCE).
    """
    return tuple(torch.tensor(v, dtype=dtype, device=device) for v in _separable_values(size, factor))
