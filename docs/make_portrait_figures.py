"""Make the portrait figures of docs/portrait.md and the README.

- docs/portrait_edge_before.jpg and docs/portrait_edge_after.jpg: the astronaut's helmet and
  shoulder edge, with the segmenter's 256x256 mask sampled up to the 1024x1536 model size
  (before) and refined by the portrait model's guided filter (after), each beside the photo.
- with --models DIR (an `export-tflite --track portrait` folder): docs/portrait_astronaut_photo.jpg,
  _bokeh.jpg and _depth.jpg, the astronaut through that exported pipeline as bokeh-render
  --portrait --save-depth renders her; and docs/portrait_chelsea.jpg: scikit-image's cat
  through the same pipeline, photo | portrait bokeh | derived disparity, to show what a person
  segmenter does on another subject.

    python docs/make_portrait_figures.py [--models artifacts]   # the segmenter from the cache

The docs' figures come from `export-tflite --track portrait` at its default size, 1024x1536
(a tiny export would not show the render's blur as bokeh-render gives it).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from bokehlite.contract import DEFAULT_SIZE, SEGMENTER_SIZE
from bokehlite.export.track_model import portrait_net
from bokehlite.export.segmenter import segmenter_bytes, with_signature
from bokehlite.runtime import backends
from bokehlite.runtime.fit import Letterbox

HERE = Path(__file__).resolve().parent
CROP = (slice(560, 1000), slice(780, 1260))     # model pixels: the right shoulder and the helmet
SCALE = 0.5                                     # of the crop, for small files
CAT_PANEL = (220, 146)                          # W, H of each of the cat's three panels (660 px wide)


def masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model image (H, W, 3) in [0, 1], raw mask, refined mask) at the default model size."""
    photo = skimage.data.astronaut()
    x = Letterbox.fit(photo.shape[:2], DEFAULT_SIZE).to_model(photo, 255.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "segmenter.tflite"
        path.write_bytes(with_signature(segmenter_bytes(progress=print)))
        segmenter = backends.open_model(path, "litert")
        person = segmenter(image=Letterbox.fit(DEFAULT_SIZE, SEGMENTER_SIZE).to_model(x[0], 1.0))["person"]
    net = portrait_net(DEFAULT_SIZE).eval()
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))    # noqa: E731
    with torch.no_grad():
        raw = net.unletterbox(nchw(person), DEFAULT_SIZE)[0, 0].numpy()
        refined = net.refine(nchw(x), nchw(person))[0, 0].numpy()
    return x[0], raw, refined


def figure(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo crop beside the mask crop (white = person), BGR uint8."""
    photo = (image[CROP] * 255).astype(np.uint8)[..., ::-1]
    grey = cv2.cvtColor((np.clip(mask[CROP], 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return cv2.resize(np.hstack([photo, grey]), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)


def portrait(models: Path, photo: np.ndarray) -> dict[str, np.ndarray]:
    """The photo (RGB), its portrait bokeh and its disparity through the exported pipeline, BGR uint8."""
    from bokehlite.runtime.portrait import PortraitRenderer, find_pipeline
    result = PortraitRenderer(find_pipeline(models)).render(photo)
    depth = (np.clip(result.disparity, 0, 1) * 255).round().astype(np.uint8)
    return {"photo": photo[..., ::-1], "bokeh": result.pixels[..., ::-1],
            "depth": cv2.cvtColor(depth, cv2.COLOR_GRAY2BGR)}


def write(name: str, image: np.ndarray) -> None:
    out = HERE / name
    cv2.imwrite(str(out), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


def main(argv: list[str]) -> int:
    image, raw, refined = masks()
    for name, mask in (("before", raw), ("after", refined)):
        write(f"portrait_edge_{name}.jpg", figure(image, mask))
    if argv[:1] == ["--models"] and len(argv) == 2:
        for name, picture in portrait(Path(argv[1]), skimage.data.astronaut()).items():
            write(f"portrait_astronaut_{name}.jpg", cv2.resize(picture, (320, 320), interpolation=cv2.INTER_AREA))
        cat = portrait(Path(argv[1]), skimage.data.chelsea())       # 300x451: a cat, no person
        panels = [cv2.resize(cat[k], CAT_PANEL, interpolation=cv2.INTER_AREA) for k in ("photo", "bokeh", "depth")]
        write("portrait_chelsea.jpg", np.hstack(panels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
