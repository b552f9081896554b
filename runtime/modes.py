"""bokeh-render's three ways to render a photo, each opened once and then run photo by photo:

    plain      an image-only model (cpu or gpu track, or bokeh-only): the photo alone
    depth      a depth-guided (render-track) model and one photo's disparity map (--depth)
    portrait   the person segmenter and the portrait model of a pipeline (--portrait)

Each mode has `render(pixels, name) -> Result` and `report() -> dict` (its own part of
bokeh-render's --json report); `renderer`, the BokehRenderer whose backend, threads and
contract the report names; and `model`, the model's path as the report names it. The CLI (cli.py) picks one from the flags, and keeps files, names
and the report; the arithmetic is in the renderers (renderer.py, portrait.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .depth import centre_focus, fit_disparity, focus_at
from .host_steps import chosen_aperture
from .portrait import PortraitRenderer
from .renderer import BokehRenderer
from .sidecar import HostParameters


@dataclass(frozen=True)
class Result:
    """One photo rendered by a mode."""

    pixels: np.ndarray                    # the output, same shape and dtype as the photo
    warning: str | None = None            # one line for the user (bokeh-render prints "warning: " + it)
    unchanged: bool = False               # portrait without a person: the photo, as it was
    focus: float | None = None            # depth: the focal plane's disparity
    person_share: float | None = None     # portrait: share of the model's pixels with p > 0.5
    depth: np.ndarray | None = None       # portrait with save_depth: (H, W) disparity in [0, 1] to save


class PlainMode:
    """An image-only model: the photo alone."""

    def __init__(self, renderer: BokehRenderer):
        self.renderer = renderer
        self.model = renderer.model_path

    def render(self, pixels: np.ndarray, name: str) -> Result:
        """The photo's own pixels take the result: one full-size array less."""
        return Result(self.renderer.render(pixels, out=pixels))

    def report(self) -> dict:
        return {}


@dataclass
class DepthSettings:
    """--depth and its companions; the map is read and normalised before the photo is."""

    path: Path
    is_depth: bool
    disparity: np.ndarray                 # normalised, at the map's own size
    notes: list[str]                      # repairs already made, for the warning line
    point: tuple[int, int] | None
    focus: float | None
    aperture: float                       # photo pixels (`host_steps.chosen_aperture`)
    host: HostParameters                  # the model's focus window, centre box and ratio tolerance

    def for_photo(self, size: tuple[int, int]) -> tuple[np.ndarray, float, list[str]]:
        """(disparity at the photo's size, focal-plane disparity, notes) for one photo."""
        disparity, notes = fit_disparity(self.disparity, size, self.host.ratio_tolerance)
        if self.point is not None:
            focus = focus_at(disparity, *self.point, window=self.host.focus_window)
        elif self.focus is not None:
            focus = self.focus
        else:
            focus = centre_focus(disparity, self.host.centre_box)
        return disparity, focus, self.notes + notes


class DepthMode:
    """A depth-guided model and one photo's disparity map, focus and aperture."""

    def __init__(self, renderer: BokehRenderer, settings: DepthSettings):
        self.renderer = renderer
        self.model = renderer.model_path
        self.settings = settings

    def render(self, pixels: np.ndarray, name: str) -> Result:
        disparity, focus, notes = self.settings.for_photo(pixels.shape[:2])
        warning = f"depth map {self.settings.path}: " + "; ".join(notes) if notes else None
        out = self.renderer.render(pixels, disparity, focus=focus, aperture=self.settings.aperture, out=pixels)
        return Result(out, warning, focus=focus)

    def report(self) -> dict:
        s = self.settings
        focus = ({"point": list(s.point)} if s.point is not None
                 else {"disparity": s.focus} if s.focus is not None else "centre")
        return {"depth": {"map": str(s.path), "is_depth": s.is_depth, "aperture": s.aperture, "focus": focus}}


class PortraitMode:
    """A portrait pipeline: the segmenter finds the person, the model derives depth and focus."""

    def __init__(self, pipeline: PortraitRenderer, model: Path, aperture: float | None = None,
                 save_depth: bool = False):
        """model: the pipeline as the user named it (or find_pipeline found it), for the report;
        aperture: photo pixels, None for the model's default; save_depth: return the depth."""
        self.pipeline = pipeline
        self.renderer = pipeline.renderer
        self.model = model
        self.aperture = aperture
        self.save_depth = save_depth

    def render(self, pixels: np.ndarray, name: str) -> Result:
        """Into the photo's own array, as PlainMode; `name` says which photo a warning is about."""
        portrait = self.pipeline.render(pixels, self.aperture, out=pixels)
        warning = None if portrait.warning is None else f"{name}: {portrait.warning}"
        depth = portrait.disparity if self.save_depth and not portrait.unchanged else None
        return Result(portrait.pixels, warning, unchanged=portrait.unchanged, person_share=portrait.person_share,
                      depth=depth)

    def report(self) -> dict:
        return {"portrait": {"pipeline": str(self.model), "segmenter": self.pipeline.spec["segmenter"]["file"],
                             "aperture": chosen_aperture(self.renderer.contract.host, self.aperture)}}
