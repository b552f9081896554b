"""Portrait mode: bokeh from a photo alone, as phones do it (Wadhwa et al. 2018, the paper's [35]).

A person segmenter (MediaPipe's selfie model, see export/segmenter.py) gives each pixel
a person probability p. We turn it into a disparity map and let the render track do the
rest (focus on the person, blur by distance, Eq. 1-2 and 4-8):

    disparity = p * PERSON + (1 - p) * ground(y)

The person is one plane in front. The background is a ground plane that recedes: far
(0) down to the middle row, then nearer towards the bottom edge (GROUND_NEAR there), so
a floor in front of the subject blurs less than the wall behind it. The segmenter's soft
edge becomes a soft depth edge; nothing else is guessed.

A photo with no person in it (less than MIN_PERSON of its pixels above p = 0.5) is left
unchanged, with one warning: a uniformly blurred photo would be garbage.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from ..files import sha256
from . import backends
from .errors import ModelError
from .fit import Letterbox
from .renderer import BokehRenderer, colour_view

PERSON = 1.0
GROUND_NEAR = 0.5          # disparity of the ground at the bottom edge
HORIZON = 0.5              # fraction of the height where the ground starts to come nearer
MIN_PERSON = 0.01          # share of the photo that must be person for a portrait


@dataclass
class Portrait:
    pixels: np.ndarray           # the result, same shape and dtype as the photo
    disparity: np.ndarray        # (H, W) float32 in [0, 1], larger = nearer
    focus: float | None          # the focal-plane disparity, None when no person was found
    person_share: float          # share of pixels with p > 0.5
    warning: str | None = None


def person_disparity(person: np.ndarray) -> np.ndarray:
    """(H, W) person probability -> (H, W) float32 disparity (see the module docstring)."""
    h = person.shape[0]
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    ground = GROUND_NEAR * np.clip((y - HORIZON) / (1.0 - HORIZON), 0.0, 1.0)
    p = person.astype(np.float32, copy=False)
    return (p * PERSON + (1.0 - p) * ground[:, None]).astype(np.float32)


def find_pipeline(models: str | os.PathLike) -> Path:
    """The portrait sidecar in folder `models`: the default size if there, else the only one."""
    folder = Path(models)
    found = sorted(folder.glob("bokeh_portrait_*x*.json"))
    if not found:
        raise ModelError(f"no portrait pipeline in {folder}: make one with `export-tflite --track portrait"
                         f" -o {folder}` (or pass --models DIR)")
    default = folder / f"{contract.portrait_stem(contract.DEFAULT_SIZE)}.json"
    if default in found:
        return default
    if len(found) > 1:
        raise ModelError(f"{folder} holds several portrait pipelines ({', '.join(p.name for p in found)}) "
                         f"and none at the default size; keep one, or use another --models folder")
    return found[0]


class PortraitRenderer:
    """The segmenter and the render-track model of one portrait pipeline, opened once.

    `xnnpack` applies to the render model only: the segmenter's transposed convolution is
    the custom op Convolution2DTransposeBias, which only XNNPACK implements, so on the CPU
    the segmenter always runs with XNNPACK.
    """

    def __init__(self, sidecar: str | os.PathLike, threads: int | None = None, backend: str | None = None,
                 xnnpack: bool = True):
        self.sidecar_path = Path(sidecar)
        spec = _read(self.sidecar_path)
        folder = self.sidecar_path.parent
        seg, render = folder / spec["segmenter"]["file"], folder / spec["render"]["file"]
        for path, entry in ((seg, spec["segmenter"]), (render, spec["render"])):
            if not path.is_file():
                raise ModelError(f"{self.sidecar_path}: {path.name} is missing; copy the whole pipeline")
            if sha256(path) != entry["sha256"]:
                raise ModelError(f"{self.sidecar_path}: {path.name} is not the file this pipeline was "
                                 "exported with (sha256 mismatch)")
        self.segmenter = backends.open_model(seg, backend, threads, xnnpack=True)
        self.renderer = BokehRenderer(render, threads=threads, backend=backend, xnnpack=xnnpack)
        if not self.renderer.contract.depth_guided:
            raise ModelError(f"{render}: the portrait pipeline needs a render-track model")
        self.segmenter_size = tuple(spec["segmenter"]["input"]["shape"][1:3])
        self.spec = spec

    def person(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 person probability for a photo (as BokehRenderer.render takes it)."""
        color, white = colour_view(image)
        box = Letterbox.fit(image.shape[:2], self.segmenter_size)
        out = self.segmenter(image=box.to_model(color, white))["person"][0, :, :, 0]
        h, w = image.shape[:2]
        person = np.empty((h, w), np.float32)
        for rows, cols in box.tiles():
            person[rows, cols] = box.sample(np.ascontiguousarray(out, np.float32), rows, cols)
        return np.clip(person, 0.0, 1.0)

    @staticmethod
    def depth(person: np.ndarray) -> tuple[np.ndarray, float | None, float]:
        """(disparity, focus on the person or None when there is none, the person's share)."""
        disparity = person_disparity(person)
        found = person > 0.5
        share = float(np.mean(found))
        return disparity, (float(np.median(disparity[found])) if share >= MIN_PERSON else None), share

    def render(self, image: np.ndarray, aperture: float | None = None) -> Portrait:
        disparity, focus, share = self.depth(self.person(image))
        if focus is None:
            return Portrait(image.copy(), disparity, None, share,
                            warning=f"no person found ({share:.1%} of the photo); left unchanged")
        pixels = self.renderer.render(image, disparity, focus=focus, aperture=aperture)
        return Portrait(pixels, disparity, focus, share)


def _read(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: portrait pipeline not found") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable portrait pipeline ({exc})") from None
    if not isinstance(spec, dict) or spec.get("format") != contract.PORTRAIT_FORMAT:
        raise ModelError(f"{path}: not a portrait pipeline (no format {contract.PORTRAIT_FORMAT!r})")
    if spec.get("version") != contract.PORTRAIT_VERSION:
        raise ModelError(f"{path}: portrait pipeline version {spec.get('version')!r} is not supported")
    for key in ("segmenter", "render"):
        if not isinstance(spec.get(key), dict) or "file" not in spec[key] or "sha256" not in spec[key]:
            raise ModelError(f"{path}: the pipeline has no {key} file and sha256")
    return spec
