"""Portrait mode: bokeh from a photo alone, as phones do it (Wadhwa et al. 2018, the paper's [35]).

Two models and the contract's blend, nothing else (issue 21):

1. fit the photo into the portrait model's size, and that model image into the person
   segmenter's 256x256 input (the same letterbox, runtime/fit.py);
2. the segmenter (MediaPipe's selfie model, export/segmenter.py) gives its person mask;
3. the portrait model (model/portrait_net.py) takes the model image, that mask as it
   comes out, and the aperture; in the graph it refines the mask to the photo's edges,
   derives the disparity (the person a plane in front, a receding ground plane behind) and
   the focus, and renders the blur on grids 2 and 4 times coarser (depth_render.py);
4. Eq. 9 blends its `blur` with the photo at the photo's own resolution, through the
   letterbox, exactly as for the gpu track (runtime/blend.py).

A photo with no person in it (person_share, the share of model pixels with p > 0.5, below
contract.MIN_PERSON) is left unchanged, with one warning: a uniformly blurred photo would
be garbage.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import contract
from ..files import sha256
from . import backends
from .errors import ModelError
from .fit import Letterbox
from .host_steps import blend_photo, check_finite, check_image, check_out, model_aperture
from .renderer import BokehRenderer
from .sidecar import read_sidecar


@dataclass
class Portrait:
    """One portrait render: the photo with its bokeh, and what the model found."""

    pixels: np.ndarray                # the result, same shape and dtype as the photo
    person_share: float               # share of the model's pixels with p > 0.5
    model_disparity: np.ndarray = field(repr=False)     # (h, w) float32, the model's own
    box: Letterbox = field(repr=False)                  # the photo's letterbox into the model
    warning: str | None = None        # no person: why the photo was left unchanged

    @property
    def unchanged(self) -> bool:
        """No person: the photo is returned as it was."""
        return self.warning is not None

    @cached_property
    def disparity(self) -> np.ndarray:
        """The derived disparity at the photo's resolution, (H, W) float32 in [0, 1], larger =
        nearer (for --save-depth); sampled from the model's on first use."""
        return _sample(self.model_disparity, self.box)


def find_pipeline(models: str | os.PathLike) -> Path:
    """The portrait model in folder `models`, bokeh_portrait_<H>x<W>.tflite: the default size
    if there, else the only one. Its sidecar .json is optional (the contract is inside the
    model, R11 of docs/contract.md); its segmenter must be beside it."""
    folder = Path(models)
    found = sorted(p for p in folder.glob("bokeh_portrait_*x*.tflite") if _PORTRAIT_NAME.fullmatch(p.name))
    if not found:
        for old in sorted(folder.glob("bokeh_portrait_*x*.json")):
            _read_file(old)                 # the old two-model pipeline's sidecar: refused by name
        raise ModelError(f"no portrait pipeline in {folder}: make one with `export-tflite --track portrait"
                         f" -o {folder}` (or pass --models DIR)")
    default = folder / f"{contract.portrait_stem(contract.DEFAULT_SIZE)}.tflite"
    if default in found:
        return default
    if len(found) > 1:
        raise ModelError(f"{folder} holds several portrait pipelines ({', '.join(p.name for p in found)}) "
                         f"and none at the default size; keep one, or use another --models folder")
    return found[0]


_PORTRAIT_NAME = re.compile(r"bokeh_portrait_\d+x\d+\.tflite")


class PortraitRenderer:
    """The segmenter and the portrait model of one pipeline, opened once.

    `xnnpack` applies to the portrait model only: the segmenter's transposed convolution is
    the custom op Convolution2DTransposeBias, which only XNNPACK implements, so on the CPU
    the segmenter always runs with XNNPACK.
    """

    def __init__(self, model: str | os.PathLike, threads: int | None = None, backend: str | None = None,
                 xnnpack: bool = True):
        """model: the portrait model's .tflite (or its sidecar .json); its segmenter beside it."""
        self.model_path = Path(model).with_suffix(".tflite")
        spec = _check_spec(read_sidecar(self.model_path), self.model_path)
        seg = self.model_path.parent / spec["segmenter"]["file"]
        if not seg.is_file():
            raise ModelError(f"{self.model_path}: its segmenter {seg.name} is missing; copy the whole pipeline")
        if sha256(seg) != spec["segmenter"]["sha256"]:
            raise ModelError(f"{self.model_path}: {seg.name} is not the segmenter this model was "
                             "exported with (sha256 mismatch)")
        self.renderer = BokehRenderer(self.model_path, threads=threads, backend=backend, xnnpack=xnnpack)
        if self.renderer.contract.track != "portrait":
            raise ModelError(f"{self.renderer.model_path}: not a portrait-track model "
                             f"(track {self.renderer.contract.track!r})")
        self.segmenter = backends.open_model(seg, backend, threads, xnnpack=True)
        self.segmenter_size = tuple(spec["segmenter"]["input"]["shape"][1:3])
        self.spec = spec

    def prepare(self, image: np.ndarray, aperture: float | None = None):
        """(model image (1, H, W, 3), segmenter input (1, S, S, 3), aperture in model pixels
        (1, 1), the photo's letterbox): the two fits and the aperture's scale."""
        return self.fit(check_image(image), aperture)

    def fit(self, image: np.ndarray, aperture: float | None = None):
        """`prepare` for a photo already through `host_steps.check_image`."""
        x, box = self.renderer.fit(image)
        seg_box = Letterbox.fit(self.renderer.input_size, self.segmenter_size)
        return x, seg_box.to_model(x[0], 1.0), model_aperture(self.renderer.contract.host, box, aperture), box

    def run(self, x: np.ndarray, seg_input: np.ndarray, aperture: np.ndarray) -> dict[str, np.ndarray]:
        """The segmenter, then the portrait model on its mask as it comes out: the model's outputs."""
        person = self.segmenter(image=seg_input)["person"]
        return self.renderer.run_model(x, person=np.ascontiguousarray(person, np.float32), aperture=aperture)

    def render(self, image: np.ndarray, aperture: float | None = None,
               out: np.ndarray | None = None) -> Portrait:
        """Portrait bokeh on a photo (any size, as BokehRenderer.render takes it); aperture in
        photo pixels per unit of |disparity - focus| (default: the contract's). out: where to
        write the result (the photo itself included, as BokehRenderer.render). The result's
        `disparity` is the derived one at the photo's resolution (for --save-depth)."""
        check_out(check_image(image), out)
        x, seg_input, a, box = self.fit(image, aperture)
        outputs = self.run(x, seg_input, a)
        del x, seg_input
        c = self.renderer.contract
        check_finite(outputs, (c.blend_source, c.defocus, "disparity", "person_share"),
                     self.renderer.model_path.name)
        share = float(outputs["person_share"].reshape(-1)[0])
        depth = outputs["disparity"][0, :, :, 0]
        if share < c.host.min_person:
            if out is not None and out is not image:
                out[...] = image
            return Portrait(image.copy() if out is None else out, share, depth, box,
                            warning=f"no person found ({share:.1%} of the photo); left unchanged")
        blur, defocus = outputs[c.blend_source][0], outputs[c.defocus][0, :, :, 0]
        del outputs
        return Portrait(blend_photo(image, blur, defocus, box, c, out), share, depth, box)


def _sample(values: np.ndarray, box: Letterbox) -> np.ndarray:
    """A model-size map sampled onto the photo, tile by tile (bounded memory), in [0, 1]."""
    h, w = box.photo_size
    full = np.empty((h, w), np.float32)
    values = np.ascontiguousarray(values, np.float32)
    for rows, cols in box.tiles():
        full[rows, cols] = np.clip(box.sample(values, rows, cols), 0.0, 1.0)
    return full


def _read_file(path: Path) -> dict:
    """A portrait sidecar file; the old two-model pipeline's is refused with one line."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: not a readable portrait pipeline ({exc})") from None
    return _check_spec(spec, path)


def _check_spec(spec, path: Path) -> dict:
    if isinstance(spec, dict) and spec.get("format") == contract.OLD_PORTRAIT_FORMAT:
        raise ModelError(f"{path}: an older portrait pipeline (segmenter + render track, version "
                         f"{spec.get('version')}), which this runtime no longer reads; re-export with "
                         "export-tflite --track portrait")
    if not isinstance(spec, dict) or spec.get("format") != contract.SIDECAR_FORMAT or spec.get("track") != "portrait":
        raise ModelError(f"{path}: not a portrait pipeline (no format {contract.SIDECAR_FORMAT!r} with "
                         "track 'portrait')")
    seg = spec.get("segmenter")
    if (not isinstance(seg, dict) or not isinstance(seg.get("file"), str) or not isinstance(seg.get("sha256"), str)
            or "/" in seg["file"] or "input" not in seg):
        raise ModelError(f"{path}: the pipeline has no segmenter file, sha256 and input")
    return spec

