"""ExportPlan: what one export makes, from which weights, and how it is checked; built and
validated once, before any minute of work.

    plan = ExportPlan.build("cpu", (512, 768), precision="int8", calibration="photos/")
    report = export_track(plan, "artifacts")          # pipeline.py: it only runs the plan

Every rule that ties the options together is checked here and nowhere else: the track and
its precision and outputs (tracks.get_track), the render scale, the size the track accepts,
and that a calibration set means static int8 (and is a usable one). export-tflite, the
benchmark and the tests all build their exports through `ExportPlan.build`, so they refuse
the same things with the same words (export-tflite's `--segmenter` alone, which names a
file for the portrait export, stays with the command line). No torch here unless a
calibration folder is checked: the command line builds its plans before loading it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from ..contract import DEFAULT_SIZE, RENDER_SCALES, artifact_stem
from ..model.config import BackboneConfig
from . import parity
from .calibration import check_folder
from .tracks import Track, check_size, get_track


@dataclass(frozen=True)
class Calibration:
    """Static int8's calibration set (calibration.py): the folder, resolved, and its photos."""

    folder: Path
    photos: tuple[Path, ...]

    @classmethod
    def check(cls, folder: str | Path) -> Calibration:
        """ValueError unless every photo reads, there are enough, and none is held out for the
        int8 gate."""
        return cls(Path(folder).resolve(), tuple(check_folder(folder)))


@dataclass(frozen=True)
class ExportPlan:
    """One export, decided: build it with `ExportPlan.build`, which checks the options."""

    track: Track                            # name, contract, precision, outputs, render scale
    size: tuple[int, int]                   # model input (H, W)
    checkpoint: str | Path | None = None    # None: seeded untrained weights (render: analytic)
    backbone: BackboneConfig | None = None  # an authors' checkpoint of a non-paper width, or tests' tiny one
    calibration: Calibration | None = None  # int8: static, calibrated on these photos; None: dynamic range
    gates: Mapping = field(default_factory=lambda: parity.GATES)   # by precision (+ "accelerator")
    parity_images: int = 2                  # generated scenes PyTorch, ONNX Runtime and TFLite compare on
    require_gpu: bool = False               # float16: GpuRequiredError, not "verified": false, without Vulkan
    sidecar_extra: Mapping = field(default_factory=dict)   # more sidecar keys (export_portrait's)

    @classmethod
    def build(cls, track: str, size: tuple[int, int] = DEFAULT_SIZE, *, precision: str | None = None,
              outputs: tuple[str, ...] | None = None, render_scale: int = 1,
              calibration: str | Path | None = None, **settings) -> ExportPlan:
        """The plan for `track` at model size `size` (H, W).

        `precision`: None for the track's own; `outputs`: None for all of the track's, ("bokeh",)
        for the one-output variant; `render_scale` 2: the render track's layers on coarser grids;
        `calibration`: a folder of photos for static int8 (with precision "int8"). `settings`
        are the fields that need no check: checkpoint, backbone, gates, parity_images,
        require_gpu, sidecar_extra. Raises ValueError naming the option that does not fit.
        """
        if outputs is not None and track == "portrait":
            raise ValueError("--outputs bokeh does not go with --track portrait: the portrait pipeline blends "
                             "with the defocus map at the photo's resolution")
        chosen = get_track(track, precision, outputs)
        if render_scale not in RENDER_SCALES:
            raise ValueError(f"--render-scale must be one of {', '.join(map(str, RENDER_SCALES))}, "
                             f"got {render_scale!r}")
        if render_scale != 1:
            if chosen.name != "render":
                raise ValueError("--render-scale goes with --track render (the portrait model always renders "
                                 "at half resolution)")
            chosen = replace(chosen, render_scale=render_scale)
        size = (int(size[0]), int(size[1]))
        check_size(chosen, size)
        if calibration is not None:
            if chosen.precision != "int8":
                raise ValueError("--calibration goes with --precision int8")
            calibration = Calibration.check(calibration)
        return cls(chosen, size, calibration=calibration, **settings)

    @property
    def stem(self) -> str:
        """The file stem of everything it writes: bokeh_<track>_<H>x<W>[...] (contract.artifact_stem);
        the portrait model renders at half resolution without saying so in its name."""
        half = self.track.render_scale if self.track.name == "render" else 1
        return artifact_stem(self.track.name, self.size, self.track.precision, self.track.outputs, half)

    @property
    def for_gpu(self) -> bool:
        """float16: rewritten for LiteRT's GPU accelerator, gated on fp16 arithmetic and run on it."""
        return self.track.precision == "float16"
