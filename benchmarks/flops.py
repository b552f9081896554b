"""FLOP counts of the PyTorch model, in total and per stage.

torch's FlopCounterMode counts at the dispatcher, so the renderer's functional
depthwise convolutions are counted as well as nn.Conv2d layers. It counts
convolutions and matrix products (2 FLOPs per multiply-accumulate); element-wise
ops, pooling and resizing are not counted, so the numbers are a lower bound on
the work and "% of GEMM peak" is an upper bound on how well it is done.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .stages import absent_stages, as_inputs, remainder_stage, stage_modules


def count_flops(model: torch.nn.Module, inputs) -> dict:
    """{'total': FLOPs, 'stages': {stage: FLOPs, or None if the model has no such stage}}
    for one forward of `model` (a TrackModel) on `inputs` (the image, or the track's input tuple).

    The last stage is the remainder: everything outside the named sub-modules.
    """
    names = {module: name for name, module in model.named_modules()}
    root = type(model).__name__
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*as_inputs(inputs))
    counts = counter.get_flop_counts()
    total = int(counter.get_total_flops())
    stages: dict[str, int | None] = dict.fromkeys(absent_stages(model.net))
    for stage, module in stage_modules(model.net).items():
        key = f"{root}.{names[module]}"
        stages[stage] = int(sum(counts.get(key, {}).values()))
    stages[remainder_stage(model.net)] = total - sum(v for v in stages.values() if v is not None)
    return {"total": total, "stages": stages}
