"""Golden vectors of the contract's host steps (docs/contract.md), computed by the Python reference.

The Python runtime is the reference: runtime/fit.py (the letterbox fit, rules R1-R4),
runtime/blend.py (sampling back and Eq. 9, R5-R6), runtime/depth.py (the depth glue, R7-R10).
Each case is small and aimed at one branch: integer and fractional area factors, bilinear up
and mixed, odd sizes, borders wider than the photo, grey and alpha, constant and stretched
depth maps, taps at the edges, aperture scaling. libbokeh's C test
(android/native/tests/host_golden.c, run by ctest) holds each `bk_*` function to these
numbers within the tolerance stated per function here and on the contract page.

    python tests/golden_vectors.py           # rewrite tests/fixtures/golden/host_steps.json

tests/test_contract_golden.py checks that the committed file is what the reference computes
today, so a change of rule, or of the pinned OpenCV, fails there until the vectors are
regenerated on purpose (and then the C test says whether libbokeh still agrees).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from bokehlite import contract
from bokehlite.runtime.blend import blend, focus_mask
from bokehlite.runtime.depth import centre_focus, fit_disparity, focus_at, to_disparity
from bokehlite.runtime.fit import Letterbox

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden" / "host_steps.json"

# Per function: the largest difference libbokeh may show (same units as the values), and
# the rule it checks. uint8 results are exact; float32 ones are allowed float32 rounding.
TOLERANCE = {
    "letterbox": 0.0, "resize_u8": 0.0, "resize_f32": 1e-6, "fit_photo": 1e-6, "fit_map": 1e-6,
    "fit_image_f32": 1e-6, "sample": 1e-6, "blend": 0.0, "median": 0.0, "centre_focus": 0.0,
    "focus_at": 0.0, "to_disparity": 1e-7, "fit_disparity": 1e-6,
}
RULES = {
    "letterbox": "R1", "resize_u8": "R2", "resize_f32": "R2", "fit_photo": "R3", "fit_map": "R4",
    "fit_image_f32": "R3", "sample": "R5", "blend": "R6", "median": "R8", "centre_focus": "R8",
    "focus_at": "R9", "to_disparity": "R7", "fit_disparity": "R10",
}


def flat(a) -> list:
    """An array as a flat list of numbers: float32 values as their shortest decimal, which a
    C reader's strtod then (float) gives back exactly."""
    a = np.asarray(a)
    if a.dtype == np.float32:
        return [float(np.format_float_positional(v, unique=True, trim="-")) for v in a.reshape(-1)]
    return [float(v) for v in a.reshape(-1)] if a.dtype.kind == "f" else [int(v) for v in a.reshape(-1)]


def rng_u8(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def rng_f32(seed: int, shape) -> np.ndarray:
    """Values in [0, 1] on a 1/1024 grid: exact in float32 and short in JSON."""
    return (np.random.default_rng(seed).integers(0, 1025, shape) / 1024).astype(np.float32)


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """R2, as Letterbox._fit applies it: area when the target fits inside on both axes, else bilinear."""
    (dh, dw), (sh, sw) = size, pixels.shape[:2]
    shrinking = dh <= sh and dw <= sw
    return cv2.resize(np.ascontiguousarray(pixels), (dw, dh),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


LETTERBOXES = [((300, 451), (128, 192)), ((1024, 1536), (1024, 1536)), ((3000, 4000), (1024, 1536)),
               ((4000, 3000), (1024, 1536)), ((7, 5), (128, 192)), ((2, 997), (128, 192)),
               ((997, 2), (256, 256)), ((512, 768), (128, 192)), ((333, 500), (64, 96))]
RESIZES = [  # (source h, w, channels, target h, w): what each case reaches
    (12, 16, 3, 6, 8),       # area, integer factor 2
    (12, 18, 3, 4, 6),       # area, integer factor 3
    (10, 14, 3, 7, 9),       # area, fractional factors
    (37, 23, 1, 16, 11),     # area, odd sizes, one channel
    (9, 9, 4, 5, 5),         # area, four channels
    (5, 7, 3, 11, 13),       # bilinear up
    (8, 20, 1, 12, 9),       # mixed: up on one axis, down on the other -> bilinear
    (6, 6, 3, 6, 6),         # the same size
]
FITS = [  # (photo h, w, channels, model h, w)
    (20, 29, 3, 8, 12),      # downscale, aspect kept
    (21, 11, 3, 8, 12),      # tall photo: wide mirrored side borders
    (4, 40, 3, 12, 12),      # very wide: borders far wider than the photo's single row
    (5, 7, 1, 8, 12),        # grey, upscale
    (8, 12, 3, 8, 12),       # exact fit
]


def cases() -> dict:
    out: dict = {name: [] for name in TOLERANCE}
    out["maps"] = {}
    for photo, model in LETTERBOXES:
        box = Letterbox.fit(photo, model)
        out["letterbox"].append({"photo": list(photo), "model": list(model), "top": box.top, "left": box.left,
                                 "height": box.height, "width": box.width, "scale": box.scale,
                                 "aperture": [[a, float(np.float32(a * box.scale))] for a in (20.0, 37.5)]})
    for i, (sh, sw, cn, dh, dw) in enumerate(RESIZES):
        shape = (sh, sw) if cn == 1 else (sh, sw, cn)
        u8, f32 = rng_u8(100 + i, shape), rng_f32(200 + i, shape)
        out["resize_u8"].append({"src": [sh, sw, cn], "dst": [dh, dw], "input": flat(u8),
                                 "output": flat(resize(u8, (dh, dw)))})
        out["resize_f32"].append({"src": [sh, sw, cn], "dst": [dh, dw], "input": flat(f32),
                                  "output": flat(resize(f32, (dh, dw)))})
    for i, (h0, w0, cn, mh, mw) in enumerate(FITS):
        box = Letterbox.fit((h0, w0), (mh, mw))
        photo = rng_u8(300 + i, (h0, w0) if cn == 1 else (h0, w0, cn))
        out["fit_photo"].append({"photo": [h0, w0, cn], "model": [mh, mw], "input": flat(photo),
                                 "output": flat(box.to_model(photo, 255.0))})
        disparity = rng_f32(400 + i, (h0, w0))
        out["fit_map"].append({"photo": [h0, w0, 1], "model": [mh, mw], "input": flat(disparity),
                               "output": flat(box.map_to_model(disparity))})
    for i, (model, seg) in enumerate((((8, 12), (8, 8)), ((12, 8), (8, 8)), ((6, 10), (12, 12)))):
        image = rng_f32(500 + i, (*model, 3))
        box = Letterbox.fit(model, seg)
        out["fit_image_f32"].append({"photo": [*model, 3], "model": list(seg), "input": flat(image),
                                     "output": flat(box.to_model(image, 1.0))})
    for i, (photo, model, factor, cn) in enumerate((((15, 22), (8, 12), 1, 3), ((21, 11), (8, 12), 2, 1),
                                                    ((5, 7), (8, 12), 4, 3), ((3, 61), (8, 12), 1, 1))):
        box = Letterbox.fit(photo, model)
        th, tw = model[0] // factor, model[1] // factor
        tensor = rng_f32(600 + i, (th, tw, cn))
        sampled = box.sample(tensor, slice(0, photo[0]), slice(0, photo[1]))
        out["sample"].append({"photo": list(photo), "model": list(model), "tensor": [th, tw, cn],
                              "input": flat(tensor), "output": flat(sampled)})
    for i, (w, cn, grey, eta, tau) in enumerate(((23, 3, False, 20.0, 0.125), (17, 4, False, 272.0, 0.5 / 34),
                                                 (19, 1, True, 20.0, 0.125))):
        pixels = rng_u8(700 + i, (w, cn))
        bokeh, defocus = rng_f32(710 + i, (w, 3)), rng_f32(720 + i, (w,))
        defocus[:3] = (0.0, 1.0, tau)                      # fully in focus, fully out, on the edge
        image = np.repeat(pixels[:, :1], 3, axis=1) if grey else pixels[:, :3]
        result = blend(image.astype(np.float32) * np.float32(1 / 255), bokeh, focus_mask(defocus, eta, tau))
        if grey:
            result = result @ np.array([0.299, 0.587, 0.114], np.float32)
        expected = np.rint(result * np.float32(255)).astype(np.uint8)
        written = pixels.copy()
        if grey:
            written[:, 0] = expected
        else:
            written[:, :3] = expected                      # alpha (the fourth byte) is not touched
        out["blend"].append({"width": w, "step": cn, "grey": grey, "eta": eta, "tau": tau, "pixels": flat(pixels),
                             "bokeh": flat(bokeh), "defocus": flat(defocus), "output": flat(written)})
    for i, n in enumerate((1, 2, 7, 10, 81)):
        values = rng_f32(800 + i, (n,))
        out["median"].append({"input": flat(values), "output": float(np.float32(np.median(values)))})
    maps = {"ramp": np.linspace(0, 1, 20 * 31, dtype=np.float32).reshape(20, 31),
            "noise": rng_f32(900, (21, 30)), "constant": np.full((12, 12), 0.25, np.float32),
            "tiny": rng_f32(901, (3, 4))}
    for name, d in maps.items():          # each map once; the focus cases name it
        out["maps"][name] = {"shape": list(d.shape), "values": flat(d)}
        for fraction in (contract.CENTRE_BOX, 0.5, 1.0):
            out["centre_focus"].append({"map": name, "fraction": fraction, "output": centre_focus(d, fraction)})
        h, w = d.shape
        for x, y in ((0, 0), (w - 1, h - 1), (w // 2, h // 2), (1, h - 2), (w - 1, 0)):
            for window in (contract.FOCUS_WINDOW, 3, 1):
                out["focus_at"].append({"map": name, "x": x, "y": y, "window": window,
                                        "output": focus_at(d, x, y, window)})
    for name, raw in {"ramp8": np.arange(0, 250, 10, dtype=np.uint16).reshape(5, 5),
                      "ramp16": (np.linspace(0, 1, 24) ** 2 * 65535).astype(np.uint16).reshape(4, 6),
                      "constant": np.full((3, 3), 77, np.uint16), "two": np.array([[5, 9], [9, 5]], np.uint16)}.items():
        disparity, notes = to_disparity(raw)
        out["to_disparity"].append({"map": name, "input": flat(raw), "output": flat(disparity),
                                    "constant": any("constant" in n for n in notes)})
    for i, (map_size, photo) in enumerate((((10, 16), (15, 22)), ((22, 15), (15, 22)), ((15, 22), (15, 22)),
                                           ((24, 40), (7, 11)))):
        disparity = rng_f32(950 + i, map_size)
        fitted, notes = fit_disparity(disparity, photo, contract.RATIO_TOLERANCE)
        out["fit_disparity"].append({"map": list(map_size), "photo": list(photo), "input": flat(disparity),
                                     "output": flat(fitted), "stretched": bool(notes),
                                     "rotated": any("rotated" in n for n in notes)})
    return out


def document() -> dict:
    return {"format": "bokehlite-golden-host-steps", "version": 1,
            "generator": "tests/golden_vectors.py", "opencv": cv2.__version__,
            "host": contract.host_parameters(), "tolerance": TOLERANCE, "rules": RULES, "cases": cases()}


def text(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":")) + "\n"


def main() -> int:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    tmp = GOLDEN.with_suffix(".json.tmp")
    tmp.write_text(text(document()))
    tmp.replace(GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
