"""`python -m bokehlite.export.fp16_tool`: emulated float16 arithmetic (and bfloat16 autocast)
against float32 on real photos, per track, with the figures fp16.py gates every float16 export on.

A developer's tool, not a command users install: it measures what a phone GPU that stores its
tensors in float16 does to each track's outputs on photos, where the export's gate uses
generated scenes.
"""
from __future__ import annotations

import importlib.resources
import json
import sys

import cv2
import numpy as np

from ..contract import DEFAULT_SIZE, parse_size
from ..model.synthetic import defocus_ramp
from ..runtime.depth import to_disparity
from ..runtime.fit import Letterbox
from ..usage import OneLineParser
from .fp16 import GRANULARITIES, fp16_arithmetic_report
from .track_model import build_model
from .tracks import check_size, get_track

# Real photos with saturated highlights, shipped in scikit-image's wheel (a dev dependency).
PHOTOS = ("astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg")
# The render track's scene: skimage's measured disparity for the motorcycle, else a ramp.
FOCUS, APERTURE = 0.3, 24.0


def photo_inputs(track, photo: str, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """NCHW inputs for `track` from a scikit-image photo, letterboxed to `size`."""
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
    parser = OneLineParser(
        prog="python -m bokehlite.export.fp16_tool",
        description="Measure emulated float16 arithmetic (and bfloat16 autocast) against float32 "
                    "on real photos, with seeded untrained weights unless --checkpoint is given.",
        epilog="example: python -m bokehlite.export.fp16_tool --track gpu --track render --size 512x768 --json")
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
