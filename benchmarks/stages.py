"""Where the time goes: PyTorch sub-module timing of one forward pass.

Forward hooks on the BokehNet sub-modules (defocus net, radiance, renderer) time
each stage inside the whole forward pass; the remainder of the pass is the
upsample/blend stage (input pooling, the Eq. 9 blend at full resolution, and on
the CPU track the residual refiner). Stages therefore add up to the total exactly.
"""
from __future__ import annotations

import time

import torch

REMAINDER = "upsample/blend"
STAGES = ("defocus net", "radiance", "render", REMAINDER)


def stage_modules(net) -> dict:
    """The BokehNet sub-modules behind the named stages (the remainder has none)."""
    return {"defocus net": net.defocus_net, "radiance": net.radiance, "render": net.renderer}


def remainder_contents(net) -> str:
    parts = ["input average pooling", "bilinear upsampling to the input size"]
    parts.append("Eq. 9 blend" if net.config.blend else "no Eq. 9 blend")
    if net.residual is not None:
        parts.append("residual refiner at full resolution")
    return ", ".join(parts)


def time_stages(model: torch.nn.Module, image: torch.Tensor, runs: int) -> dict:
    """Mean ms per stage over `runs` forward passes (after one untimed pass)."""
    net = model.net
    current: dict[str, float] = {}
    handles = []
    for name, module in stage_modules(net).items():
        def pre(_module, _args, name=name):
            current[name] = -time.perf_counter()

        def post(_module, _args, _out, name=name):
            current[name] += time.perf_counter()

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    totals = dict.fromkeys(STAGES, 0.0)
    total = 0.0
    try:
        with torch.inference_mode():
            model(image)
            for _ in range(runs):
                current.clear()
                t0 = time.perf_counter()
                model(image)
                elapsed = time.perf_counter() - t0
                for name, secs in current.items():
                    totals[name] += secs
                totals[REMAINDER] += elapsed - sum(current.values())
                total += elapsed
    finally:
        for h in handles:
            h.remove()
    ms = {name: 1e3 * secs / runs for name, secs in totals.items()}
    total_ms = 1e3 * total / runs
    return {"runs": runs, "total_ms": total_ms,
            "stages": [{"name": name, "ms": ms[name], "percent": 100 * ms[name] / total_ms}
                       for name in STAGES],
            "remainder": remainder_contents(net)}
