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

`python -m bokehlite.export.fp16` measures the tracks on real photos.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..compare import compare, merge
from ..model.render import accumulator_storage
from ..usage import OneLineParser

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


# Real photos with saturated highlights, shipped in scikit-image's wheel (a dev dependency).
PHOTOS = ("astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg")
# The render track's scene: skimage's measured disparity for the motorcycle, else a ramp.
FOCUS, APERTURE = 0.3, 24.0


def photo_inputs(track, photo: str, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """NCHW inputs for `track` from a scikit-image photo, letterboxed to `size`."""
    import importlib.resources

    import cv2

    from ..model.synthetic import defocus_ramp
    from ..runtime.depth import to_disparity
    from ..runtime.fit import Letterbox

    data = importlib.resources.files("skimage") / "data"
    bgr = cv2.imread(str(data / photo), cv2.IMREAD_COLOR)
    box = Letterbox.fit(bgr.shape[:2], size)
    out = {"image": box.to_model(bgr[:, :, ::-1], 255.0).transpose(0, 3, 1, 2).copy()}
    if "disparity" in track.inputs:
        if photo == "motorcycle_left.png":
            with importlib.resources.as_file(data / "motorcycle_disp.npz") as npz:
                disparity, _ = to_disparity(np.load(npz)["arr_0"])
            out["disparity"] = box.map_to_model(disparity).transpose(0, 3, 1, 2).copy()
        else:
            out["disparity"] = defocus_ramp(*size)[None, None].copy()
        out["focus"] = np.array([[FOCUS]], np.float32)
        out["aperture"] = np.array([[APERTURE]], np.float32)
    return {name: out[name] for name in track.inputs}


def _db(value) -> str:
    return "identical" if value is None else f"{value:.1f} dB"


def _summary_line(r: dict) -> str:
    bokeh = r["outputs"].get("bokeh", {})
    line = (f"fp16 {_db(r['psnr'])} (bokeh {_db(bokeh.get('psnr'))}, "
            f"{100 * bokeh.get('off_fraction', 0):.3f}% off by > 1/255), peak {r['peak_abs']:.3g} at {r['peak_at']}")
    if "bfloat16_autocast" in r:
        bf = r["bfloat16_autocast"]
        line += (f"; bf16 {_db(bf['psnr'])} (bokeh {_db(bf['outputs'].get('bokeh', {}).get('psnr'))}, "
                 f"{100 * bf['outputs'].get('bokeh', {}).get('off_fraction', 0):.3f}% off)")
    return line + ("; PASS" if r["passed"] else "; FAIL: " + "; ".join(r["failures"]))


def main(argv=None) -> int:
    from ..contract import DEFAULT_SIZE, parse_size
    from .track_model import build_model
    from .tracks import check_size, get_track

    parser = OneLineParser(
        prog="python -m bokehlite.export.fp16",
        description="Measure emulated float16 arithmetic (and bfloat16 autocast) against float32 "
                    "on real photos, with seeded untrained weights unless --checkpoint is given.",
        epilog="example: python -m bokehlite.export.fp16 --track gpu --track render --size 512x768 --json")
    parser.add_argument("--track", action="append", choices=("gpu", "cpu", "render"))
    parser.add_argument("--photo", action="append", help=f"skimage data file (default: {', '.join(PHOTOS)})")
    parser.add_argument("--size", default="x".join(map(str, DEFAULT_SIZE)), help="HxW (default %(default)s)")
    parser.add_argument("--checkpoint")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="module")
    parser.add_argument("--no-bfloat16", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
        tracks = [get_track(t) for t in args.track or ("gpu", "cpu", "render")]
        for track in tracks:
            check_size(track, size)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = []
    for track in tracks:
        model, trained = build_model(track, args.checkpoint)
        for photo in args.photo or PHOTOS:
            print(f"{track.name} {photo} ...", file=sys.stderr, flush=True)
            r = fp16_arithmetic_report(model, photo_inputs(track, photo, size), granularity=args.granularity,
                                       bfloat16=not args.no_bfloat16)
            results.append({"track": track.name, "photo": photo, "trained": trained, **r})
            print("  " + _summary_line(r), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
