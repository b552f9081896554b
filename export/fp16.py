"""Float16 arithmetic, emulated: what a GPU that computes in float16 does to our outputs.

The float16 parity gate (parity.py) runs fp16 *weights* with fp32 arithmetic: XNNPACK and
SwiftShader both compute in fp32. A phone GPU in its default fp16 mode also stores every
intermediate tensor in fp16: 11 significant bits, and anything past 65504 becomes inf.

PyTorch's float16 kernels on the CPU are reference code (a 35x35 depthwise conv takes
seconds), so we emulate fp16 *storage* instead: compute in float32, but round to float16
and back the weights, every module's inputs and outputs and the renderer's running sums
(`granularity="module"`), or the output of every torch op (`"op"`, stricter and slower).
bfloat16 autocast (8 significant bits, fast on the CPU) is the pessimistic second figure.

    report = fp16_arithmetic_report(model, inputs)    # model: a TrackModel; inputs: NCHW dicts
    report["psnr"], report["passed"]                  # worst fp16 PSNR over outputs and inputs

`python -m bokehlite.export.fp16_tool` measures the tracks on real photos.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..compare import compare, merge
from ..model.render import accumulator_storage

# The largest finite float16; values from 65520 up round to inf.
FLOAT16_MAX = 65504.0
# The gate: fp16-emulated outputs within 40 dB of float32 (the sidecar's fp16_arithmetic_psnr).
MIN_PSNR = 40.0
GRANULARITIES = ("module", "op")


def round_float16(x):
    """float32 tensors (also inside tuples, lists and dicts) rounded to float16 and back;
    anything else unchanged. Overflow becomes inf, as in fp16 storage."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float16).to(torch.float32) if x.dtype == torch.float32 else x
    if isinstance(x, (tuple, list)):
        return type(x)(round_float16(v) for v in x)
    if isinstance(x, dict):
        return {k: round_float16(v) for k, v in x.items()}
    return x


def _tensors(x) -> Iterator[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


class _Watch:
    """What the rounded tensors did: the largest finite magnitude stored (headroom below
    65504) and the modules whose output first turned non-finite."""

    def __init__(self):
        self.peak, self.peak_at, self.overflow_at = 0.0, None, []

    def see(self, name: str, inputs, output) -> None:
        for t in _tensors(output):
            if not t.is_floating_point() or t.numel() == 0:
                continue
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                if all(bool(torch.isfinite(i).all()) for i in _tensors(inputs) if i.is_floating_point()):
                    self.overflow_at.append(name)
                t = torch.where(finite, t, torch.zeros((), dtype=t.dtype))
            peak = float(t.abs().max())
            if peak > self.peak:
                self.peak, self.peak_at = peak, name

    def summary(self) -> dict:
        return {"peak_abs": self.peak, "peak_at": self.peak_at, "overflow_at": self.overflow_at[:10]}


class _RoundEveryOp(TorchFunctionMode):
    """Rounds the float32 output of every torch function and tensor method (the mode is
    off inside this handler, so the rounding itself is not intercepted)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.dtype == torch.float32:
            rounded = round_float16(out)
            if args and out is args[0]:          # in-place op: keep it in place
                return out.copy_(rounded)
            return rounded
        return out


@contextlib.contextmanager
def emulate_float16(model: nn.Module, granularity: str = "module", watch: _Watch | None = None):
    """Within this block, `model` behaves as if it stored its tensors in float16.

    Rounds the weights and buffers in place (restored on exit, even on error), hooks every
    module so its inputs and outputs are rounded, and rounds the renderer's running sums
    (`model.render.accumulator_storage`). "op" also rounds the output of every torch op.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    saved = [(t, t.detach().clone()) for t in (*model.parameters(), *model.buffers())
             if t.dtype == torch.float32]
    handles = []

    def pre_hook(module, args):
        return round_float16(args)

    def post_hook(name: str) -> Callable:
        def hook(module, args, output):
            rounded = round_float16(output)
            if watch is not None:
                watch.see(name or type(module).__name__, args, rounded)
            return rounded
        return hook

    try:
        with torch.no_grad():
            for t, _ in saved:
                t.copy_(round_float16(t))
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook(name)))
        with contextlib.ExitStack() as stack:
            stack.enter_context(accumulator_storage(round_float16))
            if granularity == "op":
                stack.enter_context(_RoundEveryOp())
            yield model
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for t, original in saved:
                t.copy_(original)


def _run(model: nn.Module, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outs = model(*(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()))
    return [o.float().numpy() for o in outs]


def float16_outputs(model: nn.Module, inputs: dict[str, np.ndarray], granularity: str = "module",
                    watch: _Watch | None = None) -> list[np.ndarray]:
    """The model's outputs (float32 numpy, contract order) under emulated fp16 storage."""
    with emulate_float16(model, granularity, watch):
        return _run(model, inputs)


def bfloat16_outputs(model: nn.Module, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs under CPU bfloat16 autocast (convolutions and what follows them
    in bfloat16): coarser than fp16, but with fp32's range."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return _run(model, inputs)


def _figure(names, reference, candidates) -> dict:
    """Worst case over inputs, per output and over all outputs."""
    per_output = {n: merge([compare(ref[i], cand[i]) for ref, cand in zip(reference, candidates)])
                  for i, n in enumerate(names)}
    return {**merge(list(per_output.values())), "outputs": per_output}


def fp16_arithmetic_report(model: nn.Module, inputs, reference: list[list[np.ndarray]] | None = None,
                           granularity: str = "module", bfloat16: bool = True) -> dict:
    """The float16-arithmetic risk of a TrackModel on `inputs` (one NCHW numpy dict, or a
    list of them, in the track's input order).

    `reference`: the float32 outputs per input (contract order), if already computed.
    Returns psnr (dB, worst over outputs and inputs; None when identical), off_fraction
    (share of values off by > 1/255), max_abs, nonfinite, per-output figures, the peak
    magnitude stored and where, the modules that overflowed, bfloat16 autocast's figures,
    the gate and whether it passed. Every figure is vs float32 with the model's own weights.
    """
    inputs = [inputs] if isinstance(inputs, dict) else list(inputs)
    if reference is None:
        reference = [_run(model, x) for x in inputs]
    names = tuple(getattr(getattr(model, "track", None), "outputs", ())) or \
        tuple(f"output{i}" for i in range(len(reference[0])))
    watch = _Watch()
    t0 = time.perf_counter()
    fp16 = [float16_outputs(model, x, granularity, watch) for x in inputs]
    report = {"method": f"float32 compute, float16 storage rounded at every {granularity} "
                        "(weights, tensors, renderer sums)",
              "granularity": granularity, "images": len(inputs),
              **_figure(names, reference, fp16), **watch.summary(),
              "seconds": round(time.perf_counter() - t0, 1)}
    if bfloat16:
        report["bfloat16_autocast"] = _figure(names, reference, [bfloat16_outputs(model, x) for x in inputs])
    report["gate"] = {"min_psnr": MIN_PSNR, "nonfinite": 0}
    report["failures"] = failures(report)
    report["passed"] = not report["failures"]
    return report


def failures(report: dict, min_psnr: float = MIN_PSNR) -> list[str]:
    """Why the fp16 figures fail the gate (empty when they pass)."""
    out = []
    if report["nonfinite"] > 0:
        out.append(f"{100 * report['nonfinite']:.4f}% of values inf or NaN under fp16 storage "
                   f"(overflow past {FLOAT16_MAX:.0f} at {', '.join(report['overflow_at']) or '?'})")
    if report["psnr"] is not None and report["psnr"] < min_psnr:
        worst = min((n for n, s in report["outputs"].items() if s["psnr"] is not None),
                    key=lambda n: report["outputs"][n]["psnr"])
        out.append(f"fp16 arithmetic PSNR {report['psnr']:.1f} dB < {min_psnr:.0f} dB ({worst})")
    return out
