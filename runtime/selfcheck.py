"""Runtime-only install check: render one photo, and prove no PyTorch or TensorFlow was loaded.

    python -m bokehlite.runtime.selfcheck MODEL.tflite PHOTO [--backend litert]

CI runs this in a virtual environment made with a plain `pip install bokehlite` (no
extras), which is what a phone-side or embedded user has. Exit 0: it works; 1: the
render or the import check failed; 2: bad usage or input.
"""
from __future__ import annotations

import argparse
import sys
import time

from ..usage import OneLineParser

FORBIDDEN = ("torch", "tensorflow")


def loaded_forbidden() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in FORBIDDEN})


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m bokehlite.runtime.selfcheck", description=__doc__.splitlines()[0],
        epilog="example:\n  python -m bokehlite.runtime.selfcheck artifacts/bokeh_gpu_1024x1536.tflite photo.jpg",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL.tflite")
    parser.add_argument("photo", metavar="PHOTO")
    parser.add_argument("--backend", default="auto", help="interpreter backend (default: auto)")
    args = parser.parse_args(argv)

    import cv2
    import numpy as np
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    from . import BokehRenderer, RuntimeInputError, read_photo
    try:
        t0 = time.perf_counter()
        photo = read_photo(args.photo)
        renderer = BokehRenderer(args.model, backend=args.backend)
        result = renderer.render(photo.pixels)
        seconds = time.perf_counter() - t0
    except RuntimeInputError as exc:
        print(f"selfcheck: error: {exc}", file=sys.stderr)
        return 2
    problems = []
    if result.shape != photo.pixels.shape or result.dtype != photo.pixels.dtype:
        problems.append(f"result is {result.dtype} {result.shape}, "
                        f"expected {photo.pixels.dtype} {photo.pixels.shape}")
    if result.dtype.kind == "f" and not np.isfinite(result).all():
        problems.append("result has NaN or infinite values")
    forbidden = loaded_forbidden()
    if forbidden:
        problems.append(f"the runtime imported {', '.join(forbidden)}")
    if problems:
        print("selfcheck: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    h, w = photo.pixels.shape[:2]
    print(f"selfcheck: ok: rendered {w}x{h} {photo.format} with {renderer.backend} "
          f"({renderer.threads} threads) in {seconds:.2f} s; torch and tensorflow not loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
