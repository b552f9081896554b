"""One process or many: read torchrun's environment, as torchvision's reference scripts do.

`torchrun --nproc_per_node N train-bokeh ...` sets RANK, WORLD_SIZE, LOCAL_RANK and
LOCAL_WORLD_SIZE; a plain `train-bokeh ...` sets none and runs as rank 0 of 1. NCCL on
CUDA, gloo on CPU. Only rank 0 writes files and prints progress.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def env_rank() -> int:
    """This process's rank from torchrun's environment (0 without torchrun). No torch needed."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(name: str) -> torch.device:
    """auto: CUDA if available, else CPU. A CUDA request without CUDA is a ValueError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to this process")
    return torch.device(name)


def init_distributed(device_name: str) -> Dist:
    """Join torchrun's process group when there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = env_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world)
    return Dist(rank, world, local_rank, local_world, device)


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], d: Dist) -> list[float]:
    """Element-wise sum of `values` over all processes (the values themselves with one)."""
    if not d.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64,
                     device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def all_equal(value: float, d: Dist) -> bool:
    """Whether every process holds the same `value` (e.g. a weight checksum)."""
    if not d.enabled:
        return True
    t = torch.tensor([value, -value], dtype=torch.float64,
                     device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t[0].item() == value and -t[1].item() == value


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


class ResumableSampler(DistributedSampler):
    """DistributedSampler (shuffled per epoch from the seed, equal shares, tail dropped)
    that can start part-way through an epoch: `skip` indices of this process's share are
    left out, so a resumed run continues where it stopped without repeating a batch."""

    def __init__(self, dataset, d: Dist, seed: int):
        super().__init__(dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)
