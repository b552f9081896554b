"""Disk blur kernels (paper Eq. 5 and 6).

Kernels are built once, in float64 numpy, so that the values are exact and become
plain constants in an exported graph.
"""
from __future__ import annotations

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


def coarse_soft_disk_values(size: int, factor: int) -> np.ndarray:
    """The soft disk of `size`, for a grid `factor` times coarser (pyramid render).

    Each coarse tap integrates Eq. 6 over its factor x factor footprint (sampled at
    `factor` sub-positions per axis), so radius and edge softness stay in input pixels.
    """
    r = size // 2
    n = int(np.ceil((r + 1) / factor))
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
