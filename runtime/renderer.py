"""BokehRenderer: one exported model, ready to render photos of any size.

    renderer = BokehRenderer("artifacts/bokeh_gpu_1024x1536.tflite")
    result = renderer.render(rgb)          # same shape and dtype as rgb

    renderer = BokehRenderer("artifacts/bokeh_render_1024x1536.tflite")    # depth-guided
    disparity, notes = load_disparity("disparity.png", rgb.shape[:2])
    result = renderer.render(rgb, disparity, focus=focus_at(disparity, x, y), aperture=40)

`run_model` is the raw model on already prepared float32 arrays, for benchmarks;
`render` adds the letterbox fit and the full-resolution Eq. 9 blend (a bokeh-only model,
`export-tflite --outputs bokeh`, has no defocus map for it: its bokeh is sampled up).
The model's contract comes from its sidecar JSON, or, for a .tflite alone, from the copy
that export-tflite embedded in its TFLite Model Metadata.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..contract import gpu_refusal
from . import backends
from .depth import centre_focus
from .errors import DepthError, ModelError
from .fit import Letterbox
from .host_steps import (blend_photo, check_disparity, check_finite, check_image, check_number, check_out,
                         colour_view, model_aperture)
from .sidecar import INPUT_NAME, ModelContract, check_contract, check_identity, read_sidecar


class BokehRenderer:
    """Load and check one exported .tflite (with its sidecar JSON, or alone: the contract
    embedded in it), then render photos.

    threads: interpreter threads (default: every core this process may use).
    backend: a name from backends.REGISTRY ("litert": LiteRT's CompiledModel on the CPU,
        XNNPACK in low memory; "litert-interpreter", "tflite_runtime", "tensorflow"; or
        "litert-gpu": LiteRT's GPU accelerator, GPU-only), or None/"auto" for the first of
        the CPU backends that works.
    xnnpack: apply the XNNPACK CPU delegate (the interpreters' default).
    Raises ModelError for a missing, corrupt or non-conforming model, or for "litert-gpu" one
    whose contract records no verified run on it (docs/contract.md, F9), and BackendError
    when no interpreter can run here.
    """

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None,
                 backend: str | None = None, xnnpack: bool = True):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        if self.model_path.stat().st_size == 0:
            raise ModelError(f"{self.model_path}: model file is empty")
        with open(self.model_path, "rb") as f:
            if f.read(8)[4:8] != b"TFL3":       # a photo or a sidecar given as -m, say, before its sidecar is sought
                raise ModelError(f"{self.model_path}: not a TFLite model (no TFL3 identifier); give the "
                                 ".tflite that export-tflite wrote")
        sidecar = read_sidecar(self.model_path)
        verified = check_identity(self.model_path, sidecar)      # before minutes of GPU compiling
        refusal = gpu_refusal(sidecar) if backend == "litert-gpu" else None
        if refusal is not None:          # F9: the cpu track and int8 exports are made for the CPU
            raise ModelError(f"{self.model_path}: {refusal}")
        self._runner = backends.open_model(self.model_path, backend, threads, xnnpack=xnnpack,
                                           **({"verified": True} if verified else {}))
        self.contract: ModelContract = check_contract(self.model_path, sidecar,
                                                      self._runner.inputs, self._runner.outputs)

    @property
    def backend(self) -> str:
        """The backend in use: "litert", "litert-interpreter", "tflite_runtime", "tensorflow"
        or "litert-gpu"."""
        return self._runner.backend

    @property
    def threads(self) -> int:
        return self._runner.threads

    @property
    def adapter(self) -> dict | None:
        """The GPU it runs on ({"name": "SwiftShader Device (Subzero)", "type", "software",
        ...}) for the litert-gpu backend; None for the CPU interpreters."""
        return self._runner.info.get("adapter")

    @property
    def xnnpack(self) -> bool:
        return self._runner.xnnpack

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the model's fixed input."""
        return self.contract.input_size

    @property
    def delegated_nodes(self) -> int | None:
        """Nodes the XNNPACK delegate took over (known after the first run; None if unknown)."""
        return self._runner.delegated_nodes

    def run_model(self, image: np.ndarray, **depth: np.ndarray) -> dict[str, np.ndarray]:
        """Raw model: (1, H, W, 3) float32 RGB in [0, 1] -> {output name: NHWC float32 array}.

        A render-track model also takes, as keywords, disparity (1, H, W, 1) in [0, 1],
        focus (1, 1) and aperture (1, 1), float32, all at the model's resolution.
        """
        given = {INPUT_NAME: image, **depth}
        expected = self.contract.input_shapes()
        if set(given) != set(expected):
            raise ValueError(f"this {self.contract.track}-track model takes {list(expected)}, "
                             f"got {list(given)}")
        for name, shape in expected.items():
            value = given[name]
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != np.float32:
                got = (f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray)
                       else type(value).__name__)
                raise ValueError(f"expected float32 {name} of shape {shape}, got {got}")
        return self._runner(**{name: np.ascontiguousarray(value) for name, value in given.items()})

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """Photo (as `render` accepts it) -> model input (1, H, W, 3) float32 and its letterbox."""
        return self.fit(check_image(image))

    def fit(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """`prepare` for a photo already through `host_steps.check_image`."""
        color, scale = colour_view(image)
        box = Letterbox.fit(image.shape[:2], self.input_size)
        return box.to_model(color, scale), box

    def prepare_depth(self, box: Letterbox, disparity: np.ndarray, focus: float | None = None,
                      aperture: float | None = None) -> dict[str, np.ndarray]:
        """Render track: the photo's disparity, focus and aperture -> the model's other inputs.

        The disparity is letterboxed exactly as the photo is. The aperture is in photo pixels
        and is scaled by the letterbox's factor to model pixels, so one aperture gives the
        same look at any photo size. Arguments as in `render`.
        """
        disparity = check_disparity(disparity, box.photo_size)
        host = self.contract.host
        focus = (centre_focus(disparity, host.centre_box) if focus is None
                 else check_number("focus", focus, 1.0))
        return {"disparity": box.map_to_model(disparity), "focus": np.array([[focus]], np.float32),
                "aperture": model_aperture(host, box, aperture)}

    def render(self, image: np.ndarray, disparity: np.ndarray | None = None, focus: float | None = None,
               aperture: float | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Render bokeh on a photo; returns an array of the same shape and dtype.

        out: where to write the result (same shape and dtype as `image`), `image` itself
        included: the blend reads each tile before it writes it, so a caller that has no
        further use for the photo saves a full-resolution copy (bokeh-render does).

        image: (H, W, 3) RGB, (H, W, 4) RGBA (alpha is copied through), or (H, W) /
        (H, W, 1) grey (rendered as RGB, returned as grey); uint8, uint16, or float32
        in [0, 1]. Any size of at least 2x2 and any aspect ratio.

        A depth-guided (render-track) model needs, and only it takes:
        disparity: (H, W) float array in [0, 1] aligned with the photo, larger = nearer
            (`depth.load_disparity` makes one from a depth file of any size);
        focus: the in-focus disparity in [0, 1] (default: `depth.centre_focus`, the median
            over the middle 10% of each side; `depth.focus_at` for tap to focus);
        aperture: blur radius in photo pixels per unit of |disparity - focus| (default
            the contract's default_aperture, 20); the model caps the radius at 34 pixels of its own resolution.
        Raises DepthError when these do not match the model's track.
        """
        check_out(check_image(image), out)
        x, box = self.fit(image)
        c = self.contract
        if c.depth_guided:
            if disparity is None:
                raise DepthError(f"{self.model_path.name} is a depth-guided (render-track) model: "
                                 "it needs the photo's disparity map")
            depth = self.prepare_depth(box, disparity, focus, aperture)
        elif disparity is not None or focus is not None or aperture is not None:
            raise DepthError(f"{self.model_path.name} is a {c.track}-track model and takes "
                             "no disparity, focus or aperture; those need a render-track model "
                             "(export-tflite --track render)")
        else:
            depth = {}
        outputs = self.run_model(x, **depth)
        read = (c.blend_source,) if c.defocus is None else (c.blend_source, c.defocus)
        check_finite(outputs, read, self.model_path.name)
        # Only what the blend reads stays alive through it (the model input is 19 MB at 1024x1536).
        bokeh = outputs[c.blend_source][0]
        defocus = None if c.defocus is None else outputs[c.defocus][0, :, :, 0]
        del x, depth, outputs
        return blend_photo(image, bokeh, defocus, box, c, out)

    def __repr__(self) -> str:
        h, w = self.input_size
        return (f"BokehRenderer({str(self.model_path)!r}, track={self.contract.track}, input={h}x{w}, "
                f"backend={self.backend}, threads={self.threads}, xnnpack={self.xnnpack})")

