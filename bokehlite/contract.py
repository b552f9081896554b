"""The export -> runtime contract, in one place: tracks, tensors, sidecar, artifact names.

export-tflite writes each sidecar through `input_specs`, `output_spec` and `postprocess`;
the runtime checks a model against the same functions (runtime/sidecar.py); the
benchmark and the tests name files with `artifact_stem`. Plain Python only, so every
stage, the phone-side runtime included, can import it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SIZE = (1024, 1536)     # EBB! / AIM 2020 full resolution, (H, W)
# The render track's largest blur radius in model pixels: its largest kernel is 2 * 34 + 1 = 69
# (paper Table 1, stage 3). model/config.py checks that the kernels agree.
MAX_BLUR_RADIUS = 34
EQ9_ETA, EQ9_TAU = 20.0, 0.125  # Eq. 9 mask M = sigmoid(eta * (tau - D)), the paper's constants
# The host steps' own numbers (docs/contract.md). Every sidecar and embedded contract carries
# them under "host" (`host_parameters`), and both runtimes, Python and libbokeh, read them
# from there: no front end keeps a copy.
DEFAULT_APERTURE = 20.0         # photo pixels of blur per unit |disparity - focus| when none is given
MIN_PERSON = 0.01               # portrait: a photo with less person than this is left unchanged
FOCUS_WINDOW = 9                # tap to focus: the median of this many pixels square around the tap
CENTRE_BOX = 0.1                # default focus: the median over the centred box this share of each side
RATIO_TOLERANCE = 0.01          # a depth map whose aspect ratio differs by more is stretched, with a warning

SIDECAR_FORMAT = "bokehlite-tflite"
# 2: the "host" block and the preprocess "rules" (docs/contract.md); version 1 had neither.
SIDECAR_VERSION = 2
# Inside every export (TFLite Model Metadata, export/metadata.py): the sidecar as an associated
# file, without the keys that describe the final file (its sha256 and size cannot be inside it).
CONTRACT_FILE = "bokehlite_contract.json"
EMBEDDED_OMITS = ("sha256", "size_bytes", "metadata")
# The same embedded contract, also as a model metadata buffer under this key: LiteRT's C API
# reads a buffer by key (LiteRtGetModelMetadata), so libbokeh opens a lone .tflite without
# unpacking the ZIP that holds the associated file.
CONTRACT_METADATA_KEY = "bokehlite_contract"
# export-tflite --outputs: every output of the track, or the bokeh alone (one image in, one
# out, which Android Studio's ML Model Binding wraps; no full-resolution Eq. 9 without defocus).
OUTPUT_SETS = {"all": None, "bokeh": ("bokeh",)}
BOKEH_ONLY = ("bokeh",)
SIGNATURE = "serving_default"
# Portrait track: the person segmenter's input and output side (export/segmenter.py).
SEGMENTER_SIZE = (256, 256)
# int8: dynamic-range quantized weights, float32 activations and I/O (cpu track only)
PRECISIONS = ("float32", "float16", "int8")
IMAGE = "image"


@dataclass(frozen=True)
class TensorRole:
    """One named signature tensor: float32, NHWC with `channels`, or a [1, 1] scalar (channels None)."""

    name: str
    channels: int | None
    value_range: tuple[float, float]
    meaning: str
    color: str | None = None
    fixed: tuple[int, int] | None = None      # (H, W) whatever the model size (the segmenter's mask)

    def shape(self, size: tuple[int, int], factor: int = 1) -> tuple[int, ...]:
        """NHWC shape at model size (H, W), or at 1/factor of it; (1, 1) for a scalar."""
        if self.channels is None:
            return (1, 1)
        if self.fixed is not None:
            return (1, *self.fixed, self.channels)
        return (1, size[0] // factor, size[1] // factor, self.channels)


INPUTS = {
    IMAGE: TensorRole(IMAGE, 3, (0.0, 1.0), "the photo, RGB, fitted into the model size (aspect kept, "
                      "borders mirrored)", color="RGB"),
    "disparity": TensorRole("disparity", 1, (0.0, 1.0), "disparity normalised to [0, 1], larger = nearer"),
    "focus": TensorRole("focus", None, (0.0, 1.0), "focal-plane disparity in [0, 1]"),
    "aperture": TensorRole("aperture", None, (0.0, 100.0), "blur radius in pixels per unit of "
                           f"|disparity - focus| (radius capped at {MAX_BLUR_RADIUS} px)"),
    "person": TensorRole("person", 1, (0.0, 1.0), "the person segmenter's output as it comes out: "
                         "person probability, where the segmenter's input was the model image fitted "
                         f"into {SEGMENTER_SIZE[0]}x{SEGMENTER_SIZE[1]} (aspect kept, borders mirrored)",
                         fixed=SEGMENTER_SIZE),
}
OUTPUTS = {
    "bokeh": TensorRole("bokeh", 3, (0.0, 1.0), "bokeh image at the input size"),
    "blur": TensorRole("blur", 3, (0.0, 1.0), "rendered bokeh at the render resolution, before the "
                       "Eq. 9 blend"),
    "defocus": TensorRole("defocus", 1, (0.0, 1.0), f"defocus map D in [0, 1] (render track: blur radius "
                          f"/ {MAX_BLUR_RADIUS} px); Eq. 9 mask M = sigmoid(eta * (tau - D))"),
    "disparity": TensorRole("disparity", 1, (0.0, 1.0), "the disparity derived from the person mask, "
                            "larger = nearer (bokeh-render --save-depth writes it)"),
    "person_share": TensorRole("person_share", None, (0.0, 1.0), "share of the model's pixels with person "
                               f"probability > 0.5; below {MIN_PERSON} the host leaves the photo unchanged"),
}


@dataclass(frozen=True)
class TrackContract:
    """What one exported track takes and gives, independent of how it was built."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    blend_source: str           # output holding B of Eq. 9, blended at the photo's resolution
    precision: str              # default precision of the weights (I/O stay float32)
    description: str

    @property
    def depth_guided(self) -> bool:
        return "disparity" in self.inputs


TRACKS = {
    "cpu": TrackContract("cpu", (IMAGE,), ("bokeh", "defocus"), "bokeh", "float32",
                         "stage 1 + residual module, float32, XNNPACK-friendly (AIM 2020 track 1)"),
    "gpu": TrackContract("gpu", (IMAGE,), ("bokeh", "blur", "defocus"), "blur", "float16",
                         "stage 3 + Eq. 9, float16 weights, TFLite GPU delegate (AIM 2020 track 2)"),
    "render": TrackContract("render", (IMAGE, "disparity", "focus", "aperture"), ("bokeh", "defocus"),
                            "bokeh", "float16", "depth-guided renderer: photo + disparity + focus + "
                            "aperture (paper Eq. 1-2, 4-8)"),
    "portrait": TrackContract("portrait", (IMAGE, "person", "aperture"),
                              ("blur", "defocus", "disparity", "person_share"), "blur", "float16",
                              "portrait mode: photo + person segmenter mask + aperture; the mask refined to "
                              "the photo's edges, depth and focus derived, rendered at reduced resolution"),
}


def track_contract(name: str) -> TrackContract:
    if name not in TRACKS:
        raise ValueError(f"unknown track {name!r}; expected one of {', '.join(TRACKS)}")
    return TRACKS[name]


def parse_size(text: str) -> tuple[int, int]:
    """'1024x1536' -> (1024, 1536); ValueError naming the expected form otherwise."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"expected HxW such as 1024x1536, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"sizes must be positive, got {text!r}")
    return h, w


def artifact_stem(track: str, size: tuple[int, int], precision: str | None = None,
                  outputs: tuple[str, ...] | None = None, render_scale: int = 1) -> str:
    """File stem of an export: bokeh_<track>_<H>x<W>, plus _half for the render track at half
    resolution (`render_scale` 2), plus _<precision> when it is not the track's default, so
    two precisions of one track can share a folder, plus _bokeh for the bokeh-only variant
    (`outputs` == BOKEH_ONLY)."""
    default = track_contract(track).precision
    stem = f"bokeh_{track}_{size[0]}x{size[1]}"
    if render_scale not in RENDER_SCALES:
        raise ValueError(f"render_scale must be one of {RENDER_SCALES}, got {render_scale!r}")
    if render_scale != 1:       # the exporter decides which tracks take it (export/plan.py)
        stem += "_half"
    if precision is not None and precision != default:
        stem += f"_{precision}"
    if outputs is not None and tuple(outputs) != track_contract(track).outputs:
        if tuple(outputs) != BOKEH_ONLY:
            raise ValueError(f"outputs must be all of the track's or {list(BOKEH_ONLY)}, got {list(outputs)}")
        stem += "_bokeh"
    return stem


def sidecar_path(model_path: str | Path) -> Path:
    """The sidecar JSON that travels with a .tflite: same stem, .json."""
    return Path(model_path).with_suffix(".json")


def input_specs(names, size: tuple[int, int]) -> dict[str, dict]:
    """Sidecar entry of each named input at model size (H, W)."""
    specs = {}
    for name in names:
        role = INPUTS[name]
        shape = role.shape(size)
        spec = {"name": name, "shape": list(shape), "dtype": "float32",
                "layout": "NHWC" if len(shape) == 4 else "N1", "meaning": role.meaning,
                "range": list(role.value_range)}
        if role.color:
            spec["color"] = role.color
        specs[name] = spec
    return specs


def output_spec(name: str, shape, track: str, outputs: tuple[str, ...] | None = None) -> dict:
    """Sidecar entry of one output of `track` (exported with `outputs`, default all of its
    outputs); its meaning says whether Eq. 9 is already in it."""
    role, tc = OUTPUTS[name], track_contract(track)
    meaning = role.meaning
    if outputs is not None and tuple(outputs) == BOKEH_ONLY:
        meaning = (f"{OUTPUTS['bokeh'].meaning}, the model's only output: the host upsamples it to the "
                   "photo's resolution (no defocus, so no full-resolution Eq. 9 blend: in-focus "
                   "pixels keep the model size's resolution)")
    elif name == tc.blend_source:
        meaning += "; before Eq. 9: the B that the host blends with the photo at its resolution (postprocess)"
    elif name == "bokeh":
        meaning += (f"; Eq. 9 applied at the model resolution (a preview: the host blends "
                    f"{tc.blend_source!r} at the photo's resolution instead)")
    shape = [int(s) for s in shape]
    return {"name": name, "shape": shape, "dtype": "float32", "layout": "NHWC" if len(shape) == 4 else "N1",
            "range": list(role.value_range), "meaning": meaning}


def postprocess(source: str, eta: float, tau: float) -> dict:
    """The Eq. 9 blend the runtime applies at the photo's resolution."""
    return {"blend": "eq9", "source": source, "defocus": "defocus", "eta": float(eta), "tau": float(tau),
            "at": "the original photo's resolution",
            "formula": "M = sigmoid(eta*(tau - D)); out = M*I + (1-M)*B"}


def host_parameters() -> dict:
    """The host steps' numbers, as a sidecar's "host" block: what both runtimes read."""
    return {"default_aperture": DEFAULT_APERTURE, "min_person": MIN_PERSON, "focus_window": FOCUS_WINDOW,
            "centre_box": CENTRE_BOX, "ratio_tolerance": RATIO_TOLERANCE}


# The rules of docs/contract.md, by number, that a track's host steps follow (the sidecar's
# preprocess "rules"): R1-R3 fit the photo, R5-R6 blend at its resolution, R4 and R7-R10 are
# the depth glue of the render track, R11 portrait's no-person rule, R12 the bokeh-only upsample.
RULES = {
    "fit": ("R1", "R2", "R3"),
    "eq9": ("R5", "R6"),
    "depth": ("R4", "R7", "R8", "R9", "R10"),
    "portrait": ("R11",),
    "upsample": ("R12",),
}


def track_rules(track: str, bokeh_only: bool = False) -> list[str]:
    """The rule numbers of docs/contract.md that an export of `track` follows on the host."""
    parts = ["fit", "upsample" if bokeh_only else "eq9"]
    if track_contract(track).depth_guided:
        parts.append("depth")
    if track == "portrait":
        parts.append("portrait")
    return [rule for part in parts for rule in RULES[part]]


def upsample_postprocess() -> dict:
    """The bokeh-only variant's postprocess: no Eq. 9, the bokeh is sampled up to the photo."""
    return {"blend": "none", "source": "bokeh", "at": "the original photo's resolution",
            "upsample": "bilinear, through the letterbox the input was fitted with",
            "formula": "out = B (upsampled); in-focus pixels keep the model size's resolution"}


# Keys of an input spec that are contract (the rest, such as `meaning`, is documentation).
CHECKED_INPUT_KEYS = ("shape", "dtype", "layout", "range", "color")


# Portrait mode: the person segmenter, then the portrait track's model (runtime/portrait.py).
# The model's own sidecar, bokeh_portrait_<H>x<W>.json, names and fingerprints the segmenter
# under the key "segmenter". The sidecar of the older pipeline (the segmenter + the render
# track, host glue between them) had this format; runtimes refuse it with one line.
OLD_PORTRAIT_FORMAT = "bokehlite-portrait"
SEGMENTER_FILE = "bokeh_portrait_segmenter.tflite"
# export-tflite --track render --render-scale 2: the large layers rendered on coarser grids.
RENDER_SCALES = (1, 2)


def portrait_stem(size: tuple[int, int]) -> str:
    return artifact_stem("portrait", size)


# F9 (docs/contract.md): a model goes to LiteRT's GPU accelerator only when its contract records
# a run there that export-tflite verified (`gpu_accelerator.verified`, written for float16 exports).
# The cpu track and every int8 export are made for the CPU and never run there at export: the tiny
# backbone's 2-channel groups fail WebGPU validation, and ResNeXt50 agrees only as far as nothing
# checks. libbokeh (android/native/src/bokeh.c) writes the same line.
NOT_VERIFIED_REASON = "the contract records no verified run"


def gpu_refusal(sidecar: dict) -> str | None:
    """None when `sidecar` records a verified run on LiteRT's GPU accelerator; otherwise why
    every front end refuses to put the model there (F9), the line that follows the model's path."""
    gpu = sidecar.get("gpu_accelerator")
    gpu = gpu if isinstance(gpu, dict) else {}
    if gpu.get("verified") is True:
        return None
    reason = gpu.get("reason") if isinstance(gpu.get("reason"), str) else NOT_VERIFIED_REASON
    return (f"not for LiteRT's GPU accelerator: not verified there at export ({reason}); "
            "the gpu track is the model for GPUs (export-tflite --track gpu); run this one on the CPU")
