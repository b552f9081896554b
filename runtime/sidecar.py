"""A model's sidecar, read and checked against the contract (bokehlite/contract.py) at load time.

Two sources must agree: the sidecar JSON that export-tflite writes next to the model
(same stem, .json) and the model's own `serving_default` signature. A .tflite alone is
read by the copy of the sidecar that export-tflite puts inside it (an associated file of
its TFLite Model Metadata; that copy lacks the final file's sha256, so the file is then
verified as a flatbuffer instead). We check the
sidecar's claims against the signature rather than trusting either alone, so a model
that was swapped, re-converted by hand, or exported for another runtime is refused
with a message that names the first mismatch.
"""
from __future__ import annotations

import json
import math
import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from ..contract import CHECKED_INPUT_KEYS, IMAGE as INPUT_NAME, SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path
from ..files import sha256
from ..tflite_metadata import MetadataError, associated_files, decode_metadata, model_metadata_buffer
from .runner import TensorSpec
from .errors import ModelError


@dataclass(frozen=True)
class HostParameters:
    """The host steps' numbers, as the model's sidecar gives them (its "host" block, written
    from bokehlite/contract.py): libbokeh reads the same block, so neither runtime keeps a copy."""

    default_aperture: float            # photo pixels per unit |disparity - focus| when none is given
    min_person: float                  # portrait: less person than this and the photo is left unchanged
    focus_window: int                  # tap to focus: the median of this many pixels square
    centre_box: float                  # default focus: the median over this centred share of each side
    ratio_tolerance: float             # depth maps of another aspect ratio beyond this get a warning
    max_aperture: float                # the aperture input's range, in model pixels (0: no aperture input)


@dataclass(frozen=True)
class ModelContract:
    """What the runtime needs to know about one exported model."""

    track: str                         # "cpu", "gpu" or "render"
    input_size: tuple[int, int]        # (H, W) of the float32 NHWC RGB [0, 1] input 'image'
    inputs: tuple[str, ...]            # the track's contract inputs
    outputs: dict[str, tuple[int, ...]]
    blend_source: str                  # output holding B of Eq. 9 (the bokeh-only variant: "bokeh")
    defocus: str | None                # output holding D of Eq. 9; None: bokeh only, sampled up
    eta: float
    tau: float
    precision: str
    weights: str                       # "trained" or "untrained"
    host: HostParameters

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, *self.input_size, 3)

    @property
    def depth_guided(self) -> bool:
        """True for models that also take disparity, focus and aperture (the render track)."""
        return "disparity" in self.inputs

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return input_shapes(self.inputs, self.input_size)


def input_shapes(names, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """NHWC shape (or [1, 1] for a scalar) of each named signature input at model size (H, W)."""
    return {name: contract.INPUTS[name].shape(size) for name in names}


def read_sidecar(model_path: str | Path) -> dict:
    """The sidecar beside the model, else the contract embedded in it (`embedded_sidecar`)."""
    path = sidecar_path(model_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        embedded = embedded_sidecar(model_path)
        if embedded is None:
            raise ModelError(f"{path}: sidecar JSON not found, and {Path(model_path).name} carries no "
                             f"embedded contract ({contract.CONTRACT_FILE} in its TFLite Model "
                             "Metadata); export-tflite writes both: copy the .json with the .tflite, "
                             "or export it again") from None
        return embedded
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the sidecar JSON ({exc.strerror or exc})") from None
    data = _loads(text, f"{path}: sidecar")
    if not isinstance(data, dict):
        raise ModelError(f"{path}: sidecar must be a JSON object")
    return data


def _loads(text: str, what: str):
    """json.loads, refusing as libbokeh's cJSON does: deep nesting is not a traceback."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelError(f"{what} is not valid JSON (nested too deeply)") from None


def embedded_sidecar(model_path: str | Path) -> dict | None:
    """The contract export-tflite embedded in the model (Model Metadata's DESCRIPTIONS file
    CONTRACT_FILE), or None when the model has no Model Metadata or no such file; ModelError
    when the metadata or the file is damaged."""
    where = Path(model_path)
    try:
        with open(where, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            buffer = model_metadata_buffer(data)
            if buffer is None:
                return None
            meta = decode_metadata(buffer)
            named = [a.get("name") for a in meta.get("associated_files", [])
                     if a.get("type") == "DESCRIPTIONS"]
            if contract.CONTRACT_FILE not in named:
                return None
            files = associated_files(where)
    except MetadataError as exc:
        raise ModelError(f"{where}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{where}: cannot read the model's metadata ({exc})") from None
    if contract.CONTRACT_FILE not in files:
        raise ModelError(f"{where}: its metadata names {contract.CONTRACT_FILE}, but the model carries "
                         "no such file (the ZIP after the model is missing or cut off)")
    try:
        text = files[contract.CONTRACT_FILE].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{where}: the embedded {contract.CONTRACT_FILE} is not valid JSON ({exc})") from None
    data = _loads(text, f"{where}: the embedded {contract.CONTRACT_FILE}")
    if not isinstance(data, dict):
        raise ModelError(f"{where}: the embedded {contract.CONTRACT_FILE} must be a JSON object")
    return data


def check_identity(model_path: str | Path, sidecar: dict) -> bool:
    """The cheap checks, made before any interpreter opens the file (compiling for a GPU
    takes minutes): the sidecar's format and version, and that it belongs to this very
    file. True when its sha256 matched (the file is the verified export itself)."""
    def fail(message: str):
        raise ModelError(f"{model_path}: {message}")

    if sidecar.get("format") != SIDECAR_FORMAT:
        fail(f"sidecar format is {sidecar.get('format')!r}, expected {SIDECAR_FORMAT!r}")
    if sidecar.get("version") != SIDECAR_VERSION:
        fail(f"sidecar version {sidecar.get('version')!r} is not supported "
             f"(this runtime reads version {SIDECAR_VERSION}); export the model again")
    expected_sha = sidecar.get("sha256")
    if expected_sha is not None and sha256(model_path) != expected_sha:
        fail("the sidecar JSON belongs to a different .tflite (sha256 mismatch); "
             "copy the model and its sidecar from the same export")
    if sidecar.get("track") not in contract.TRACKS:
        fail(f"track {sidecar.get('track')!r} is not supported by this runtime "
             f"(supported: {', '.join(contract.TRACKS)})")
    return expected_sha is not None


def check_contract(model_path: str | Path, sidecar: dict, inputs: dict[str, TensorSpec],
                   outputs: dict[str, TensorSpec]) -> ModelContract:
    """Validate the sidecar (already through `check_identity`) against the signature's
    tensors; ModelError on the first mismatch."""
    where = str(model_path)

    def fail(message: str):
        raise ModelError(f"{where}: {message}")

    def get(mapping: dict, key: str, what: str):
        if not isinstance(mapping, dict) or key not in mapping:
            fail(f"sidecar has no {what!r}")
        return mapping[key]

    track = sidecar["track"]
    if track not in contract.TRACKS:
        fail(f"track {track!r} is not supported by this runtime (supported: {', '.join(contract.TRACKS)})")

    # Inputs: 'image' float32 [1, H, W, 3] NHWC RGB [0, 1]; the render track adds 'disparity'
    # [1, H, W, 1] in [0, 1] and the scalars 'focus' and 'aperture' [1, 1].
    expected_names = contract.TRACKS[track].inputs
    declared_inputs = get(sidecar, "inputs", "inputs")
    if not isinstance(declared_inputs, list) or not all(isinstance(i, dict) for i in declared_inputs):
        fail("sidecar inputs must be a list of objects")
    names = [i.get("name") for i in declared_inputs]
    if sorted(map(str, names)) != sorted(expected_names):
        fail(f"sidecar inputs are {names}, the {track} track takes {list(expected_names)}")
    size = _pair(get(sidecar, "input_size", "input_size"))
    if size is None:
        fail(f"input_size must be [H, W] with positive integers, got {sidecar.get('input_size')!r}")
    in_shapes = input_shapes(expected_names, size)
    expected_specs = contract.input_specs(expected_names, size)
    for spec in declared_inputs:
        name = spec["name"]
        wanted = {k: v for k, v in expected_specs[name].items() if k in CHECKED_INPUT_KEYS}
        for key, value in wanted.items():
            if _normal(spec.get(key)) != _normal(value):
                what = "input" if name == INPUT_NAME else f"input {name!r}"
                fail(f"{what} {key} is {spec.get(key)!r} in the sidecar, expected {value!r}")
    host = _host(fail, sidecar, declared_inputs)
    if set(inputs) != set(expected_names):
        fail(f"signature inputs are {sorted(inputs)}, expected {sorted(expected_names)}")
    for name in expected_names:
        _check_tensor(fail, "input", name, inputs[name], list(in_shapes[name]))

    # Outputs: the sidecar's list and the signature must name the same tensors.
    declared = get(sidecar, "outputs", "outputs")
    if not isinstance(declared, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                 for o in declared):
        fail("sidecar outputs must be a list of objects with a name")
    names = [o["name"] for o in declared]
    if sorted(names) != sorted(outputs):
        fail(f"signature outputs are {sorted(outputs)}, the sidecar declares {sorted(names)}")
    shapes = {}
    for o in declared:
        scalar = isinstance(o.get("shape"), list) and len(o["shape"]) == 2     # [1, 1] (portrait: person_share)
        if o.get("dtype") != "float32" or o.get("layout") != ("N1" if scalar else "NHWC"):
            fail(f"output {o['name']!r} must be float32 {'N1' if scalar else 'NHWC'}, the sidecar says "
                 f"{o.get('dtype')!r} {o.get('layout')!r}")
        shape = _whole(o.get("shape"))
        _check_tensor(fail, "output", o["name"], outputs[o["name"]], shape)
        shapes[o["name"]] = tuple(shape)

    # Eq. 9 post-processing: which outputs, and mask parameters; or, for the bokeh-only
    # variant (export-tflite --outputs bokeh), none: its bokeh is sampled up to the photo.
    post = get(sidecar, "postprocess", "postprocess")
    if get(post, "blend", "postprocess.blend") == "none":
        if sorted(shapes) != list(contract.BOKEH_ONLY) or post.get("source") != "bokeh":
            fail(f"postprocess blend 'none' is for a bokeh-only model, this one has outputs {sorted(shapes)}")
        shape = shapes["bokeh"]
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            fail(f"output 'bokeh' must have shape [1, h, w, 3], got {list(shape)}")
        return ModelContract(track=track, input_size=size, inputs=expected_names, outputs=shapes,
                             blend_source="bokeh", defocus=None, eta=math.nan, tau=math.nan,
                             precision=str(sidecar.get("precision", "unknown")),
                             weights=str(sidecar.get("weights", "unknown")), host=host)
    if post.get("blend") != "eq9":
        fail(f"postprocess blend {post.get('blend')!r} is not supported (expected 'eq9', or 'none' "
             "for a bokeh-only model)")
    source, defocus = get(post, "source", "postprocess.source"), get(post, "defocus", "postprocess.defocus")
    for role, name, channels in (("source", source, 3), ("defocus", defocus, 1)):
        if not isinstance(name, str) or name not in shapes:
            fail(f"postprocess {role} {name!r} is not one of the outputs {sorted(shapes)}")
        shape = shapes[name]
        if len(shape) != 4 or shape[0] != 1 or shape[3] != channels:
            fail(f"output {name!r} must have shape [1, h, w, {channels}], got {list(shape)}")
        if size[0] % shape[1] or size[1] % shape[2] or size[0] // shape[1] != size[1] // shape[2]:
            fail(f"output {name!r} {list(shape)} is not the input {size[0]}x{size[1]} "
                 "divided by one integer factor")
    eta, tau = get(post, "eta", "postprocess.eta"), get(post, "tau", "postprocess.tau")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (eta, tau)):
        fail(f"postprocess eta and tau must be finite numbers, got {eta!r} and {tau!r}")
    return ModelContract(track=track, input_size=size, inputs=expected_names, outputs=shapes,
                         blend_source=source,
                         defocus=defocus, eta=float(eta), tau=float(tau),
                         precision=str(sidecar.get("precision", "unknown")),
                         weights=str(sidecar.get("weights", "unknown")), host=host)


def _host(fail, sidecar: dict, inputs: list[dict]) -> HostParameters:
    """The sidecar's "host" block, checked as libbokeh checks it (android/native/src/contract.c)."""
    host = sidecar.get("host")
    if not isinstance(host, dict):
        fail("the sidecar has no 'host' block (the host steps' numbers); export it again")

    def number(key: str, lo: float, hi: float, what: str) -> float:
        value = host.get(key)
        if not (_is_number(value) and math.isfinite(value) and lo <= value <= hi):
            fail(f"host {key} must be a number {what}, got {value!r}")
        return float(value)

    window = number("focus_window", 1, 1001, "from 1 to 1001")
    if window != int(window) or int(window) % 2 == 0:
        fail(f"host focus_window must be an odd integer from 1 to 1001, got {host.get('focus_window')!r}")
    box = number("centre_box", 0, 1, "in (0, 1]")
    if box <= 0:
        fail(f"host centre_box must be a number in (0, 1], got {box!r}")
    aperture = next((spec.get("range") for spec in inputs if spec.get("name") == "aperture"), [0.0, 0.0])
    return HostParameters(default_aperture=number("default_aperture", 0, math.inf, ">= 0"),
                          min_person=number("min_person", 0, 1, "in [0, 1]"), focus_window=int(window),
                          centre_box=box, ratio_tolerance=number("ratio_tolerance", 0, math.inf, ">= 0"),
                          max_aperture=float(aperture[1]))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_tensor(fail, kind: str, name: str, actual: TensorSpec, shape) -> None:
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape):
        fail(f"{kind} {name!r} has no valid shape in the sidecar: {shape!r}")
    if actual.dtype != np.float32:
        fail(f"{kind} {name!r} is {actual.dtype} in the model, expected float32")
    if list(actual.shape) != list(shape):
        fail(f"{kind} {name!r} has shape {list(actual.shape)} in the model, "
             f"the sidecar says {list(shape)}")


def _whole(value):
    """A JSON list of whole numbers as ints (JSON does not tell 128 from 128.0, and cJSON,
    libbokeh's reader, cannot either: both runtimes take both); anything else unchanged."""
    if isinstance(value, list) and all(_is_number(v) and math.isfinite(v) and v == int(v) for v in value):
        return [int(v) for v in value]
    return value


def _pair(value):
    value = _whole(value)
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return (value[0], value[1])
    return None


def _normal(value):
    """Compare JSON values with ints and floats alike ([0, 1] == [0.0, 1.0])."""
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value

