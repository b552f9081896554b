"""What the models are timed on: a generated EBB!-sized scene, or the user's photos.

Either way the image is an (N, H, W, 3) float32 RGB stack in [0, 1] at the model's
input size, saved once and loaded by every measuring process, so each backend sees
the very same pixels. Resizing happens here, outside any timed window.

The render track also takes disparity (N, H, W, 1), focus (N, 1) and aperture (N, 1).
On the generated scene they are the exporter's parity inputs (`example_inputs`, seed 0);
photos come without depth, so they get a generated disparity ramp (0 at the left edge to
1 at the right), focus RENDER_FOCUS and aperture RENDER_APERTURE: every blur layer of
the renderer is exercised, as on a real scene with near and far objects.

The portrait track takes the image alone: its segmenter makes the depth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_IMAGES = 4   # every measuring process holds the whole stack; keep its share of RSS small
RENDER_FOCUS = 0.5        # render track on photos: focal plane mid-ramp ...
RENDER_APERTURE = 24.0    # ... and the exporter's wide aperture (px of radius per unit disparity)


def image_files(folder: Path) -> list[Path]:
    """The first MAX_IMAGES image files of `folder`, by name; ValueError if there are none."""
    if not folder.is_dir():
        raise ValueError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--images {folder}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files")
    return files[:MAX_IMAGES]


def read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] at model size `size`, read and fitted exactly as
    `bokeh-render` does (EXIF orientation, letterbox with mirrored borders, 8/16-bit, grey)."""
    from ..runtime.errors import BadImageError
    from ..runtime.fit import Letterbox
    from ..runtime.photo import read_photo
    from ..runtime.host_steps import colour_view
    try:
        pixels = read_photo(path).pixels
    except BadImageError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    color, white = colour_view(pixels)
    return Letterbox.fit(pixels.shape[:2], size).to_model(color, white)[0]


def make_inputs(size: tuple[int, int], images: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """(stack (N, H, W, 3), names). Without `images`: one generated scene (seed 0)."""
    if images is None:
        from ..model.synthetic import test_scene
        return test_scene(*size, seed=0)[None], ["generated scene (seed 0)"]
    files = image_files(images)
    return np.stack([read_image(p, size) for p in files]), [p.name for p in files]


def track_inputs(track: str, size: tuple[int, int], images: Path | None = None
                 ) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """({input name: (N, ...) float32, NHWC for 4-D}, image names, what the inputs are).

    The names and shapes are the track's .tflite signature; every backend converts
    from these (ONNX Runtime and PyTorch take NCHW).
    """
    from ..export.tracks import example_inputs, get_track
    from ..model.synthetic import defocus_ramp
    stack, names = make_inputs(size, images)
    if track == "portrait":
        return {"image": np.ascontiguousarray(stack, dtype=np.float32)}, names, {"image": names}
    spec = get_track(track)
    arrays = {"image": stack}
    about: dict = {"image": names}
    extra = [n for n in spec.inputs if n != "image"]
    if extra:
        n = len(stack)
        ramp = defocus_ramp(*size)[None, :, :, None]
        if images is None:
            ref = {k: v.transpose(0, 2, 3, 1) if v.ndim == 4 else v
                   for k, v in example_inputs(spec, size, seed=0).items()}
            arrays["image"] = ref["image"]    # the same scene (test_scene, seed 0), taken with its inputs
            values = {k: ref[k] for k in extra}
            source = "export-tflite's parity inputs: example_inputs, seed 0"
        else:
            values = {"disparity": ramp,
                      "focus": np.array([[RENDER_FOCUS]], np.float32),
                      "aperture": np.array([[RENDER_APERTURE]], np.float32)}
            source = "generated: the photos have no depth"
        for name in extra:
            arrays[name] = np.ascontiguousarray(np.repeat(values[name], n, axis=0), dtype=np.float32)
        disparity = arrays["disparity"][:1]
        about.update(source=source,
                     disparity="ramp from 0 (left edge) to 1 (right edge)" if np.array_equal(disparity, ramp)
                     else f"in [{disparity.min():.2f}, {disparity.max():.2f}]",
                     focus=float(arrays["focus"][0, 0]), aperture=float(arrays["aperture"][0, 0]))
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, names, about


def describe(about: dict) -> str:
    """One line for the report: the inputs beside the image, if any."""
    if "disparity" not in about:
        return ""
    return (f"disparity {about['disparity']}, focus {about['focus']:g}, aperture {about['aperture']:g} px "
            f"per unit disparity ({about['source']})")
