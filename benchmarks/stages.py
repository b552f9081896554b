"""Where the time goes: PyTorch sub-module timing of one forward pass.

Forward hooks on the model's sub-modules (defocus net, radiance, renderer) time
each stage inside the whole forward pass; the rest of the pass is the remainder
stage, so stages add up to the total. Every moment of the pass goes to exactly one
stage, the innermost one running: a stage module called inside another (or twice)
is neither counted twice nor lost, so no stage, the remainder included, can come
out negative. The remainder of a BokehNet is the
upsample/blend stage (input pooling, the Eq. 9 blend at full resolution, and on
the CPU track the residual refiner); the depth-guided renderer (render track) has
no defocus net, since its disparity is an input, and its remainder is the blur
radius of Eq. 1-2 and the layer masks. A stage a model does not have is listed
as absent (ms None), never as 0 ms.
"""
from __future__ import annotations

import time

import torch


# The networks say what their stages are (model/stages.py, `net.stages()`); these read it.
def stage_names(net) -> tuple[str, ...]:
    """Every stage reported for this model, present or absent; the remainder last."""
    return tuple(s.name for s in net.stages())


def remainder_stage(net) -> str:
    return next(s.name for s in net.stages() if s.remainder)


def absent_stages(net) -> dict[str, str]:
    """{stage: why} for the stages this model does not have."""
    return {s.name: s.about for s in net.stages() if s.absent}


def stage_modules(net) -> dict:
    """The sub-modules behind this model's named stages (not the remainder, not absent ones)."""
    return {s.name: s.module for s in net.stages() if s.module is not None}


def remainder_contents(net) -> str:
    return next(s.about for s in net.stages() if s.remainder)


def as_inputs(inputs) -> tuple[torch.Tensor, ...]:
    """One tensor (the image) or the track's input tuple -> the tuple the model takes."""
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def time_stages(model: torch.nn.Module, inputs, runs: int) -> dict:
    """Mean ms per stage over `runs` forward passes (after one untimed pass).

    `inputs`: the image tensor, or the tuple of the track's input tensors.
    """
    net = model.net
    inputs = as_inputs(inputs)
    names, absent, rest = stage_names(net), absent_stages(net), remainder_stage(net)
    totals = {name: 0.0 for name in names if name not in absent}
    running = [rest]     # the stages now inside one another; the innermost gets the time
    mark = [0.0]         # when the time since was last handed to a stage

    def switch(push: str | None) -> None:
        now = time.perf_counter()
        totals[running[-1]] += now - mark[0]
        mark[0] = now
        if push is None:
            running.pop()
        else:
            running.append(push)

    handles = []
    for name, module in stage_modules(net).items():
        handles += [module.register_forward_pre_hook(lambda _m, _a, name=name: switch(name)),
                    module.register_forward_hook(lambda _m, _a, _o: switch(None))]
    total = 0.0
    try:
        with torch.inference_mode():
            mark[0] = time.perf_counter()
            model(*inputs)
            for name in totals:         # the untimed pass above does not count
                totals[name] = 0.0
            for _ in range(runs):
                t0 = mark[0] = time.perf_counter()
                model(*inputs)
                end = time.perf_counter()
                totals[rest] += end - mark[0]
                total += end - t0
    finally:
        for h in handles:
            h.remove()
    total_ms = 1e3 * total / runs
    stages = []
    for name in names:
        if name in absent:
            stages.append({"name": name, "absent": True, "ms": None, "percent": None, "why": absent[name]})
        else:
            ms = 1e3 * totals[name] / runs
            stages.append({"name": name, "absent": False, "ms": ms, "percent": 100 * ms / total_ms})
    return {"runs": runs, "total_ms": total_ms, "stages": stages,
            "remainder_stage": rest, "remainder": remainder_contents(net)}
