"""What our exports say about themselves in the standard TFLite Model Metadata, and writing it in.

Every .tflite that export-tflite makes carries a TFLITE_METADATA buffer (the encoding is
bokehlite/tflite_metadata.py) built from its sidecar: the model's name, version, author,
licence, and one TensorMetadata per signature tensor in the subgraph's order (matched by
signature name: the converter orders outputs its own way), with the contract's ranges and
normalisation. The sidecar rides along inside as the associated file CONTRACT_FILE (type
DESCRIPTIONS), so a lone .tflite is enough for bokeh-render; that copy leaves out the keys
that describe the final file and so cannot be inside it (EMBEDDED_OMITS), which the
sidecar beside the model keeps.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import contract
from ..files import atomic_write
from ..tflite_metadata import (METADATA_NAME, MIN_PARSER_VERSION, SCHEMA_VERSION, associated_files,
                               MetadataError, decode_metadata, encode_metadata, model_metadata_buffer,
                               repack, signature_io, with_metadata, without_metadata)

AUTHOR = "bokehlite"
# The project declares no licence yet; the metadata says so rather than inventing one.
LICENCE = "No licence declared by the bokehlite project; ask its authors before redistributing"
SEGMENTER_AUTHOR = "Google (MediaPipe)"
SEGMENTER_LICENCE = "Apache-2.0"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("bokehlite")
    except PackageNotFoundError:
        return "unknown"


def _stats(lo: float, hi: float) -> dict:
    return {"max": [float(hi)], "min": [float(lo)]}


def tensor_metadata(spec: dict, kind: str) -> dict:
    """TensorMetadata of one sidecar tensor spec ("inputs"/"outputs" entry). Images and maps
    say how 8-bit pixels become the tensor's [0, 1] (inputs: x / 255) and back (outputs:
    x * 255); [1, 1] scalars are features with their range."""
    shape, (lo, hi) = spec["shape"], spec["range"]
    meta = {"name": spec["name"], "description": f"{spec['meaning']}; float32 {list(shape)}, "
                                                 f"range [{lo:g}, {hi:g}]",
            "stats": _stats(lo, hi)}
    if len(shape) == 4:
        meta["content"] = {"content_properties": {"ImageProperties": {
            "color_space": "RGB" if shape[3] == 3 else "GRAYSCALE",
            "default_size": {"width": int(shape[2]), "height": int(shape[1])}}}}
        std = 255.0 if kind == "input" else float(np.float32(1.0 / 255.0))   # as float32 stores it
        meta["process_units"] = [{"options": {"NormalizationOptions": {"mean": [0.0], "std": [std]}}}]
    else:
        meta["content"] = {"content_properties": {"FeatureProperties": {}}}
    return meta


def model_metadata(sidecar: dict, model: bytes) -> dict:
    """ModelMetadata (as tflite_metadata.encode_metadata takes it) for one of our exports."""
    inputs, outputs = signature_io(model)
    specs = {"input": {s["name"]: s for s in sidecar["inputs"]},
             "output": {s["name"]: s for s in sidecar["outputs"]}}
    for kind, names in (("input", inputs), ("output", outputs)):
        if sorted(names) != sorted(specs[kind]):
            raise ValueError(f"signature {kind}s {names} are not the sidecar's {sorted(specs[kind])}")
    h, w = sidecar["input_size"]
    post = sidecar["postprocess"]
    if post.get("blend") == "eq9":
        use = (f"The host blends {post['source']!r} with the photo by Eq. 9 at the photo's resolution "
               f"(M = sigmoid({post['eta']:g} * ({post['tau']:g} - {post['defocus']})))")
    else:
        use = "The host upsamples 'bokeh' to the photo's resolution (no full-resolution Eq. 9 blend)"
    only = " (bokeh output only)" if [o["name"] for o in sidecar["outputs"]] == ["bokeh"] else ""
    return {
        "name": f"bokehlite {sidecar['track']} track {h}x{w}{only}",
        "description": (f"{sidecar['description']}. Input: the photo letterboxed into {h}x{w} "
                        f"(aspect kept, borders mirrored). {use}. The contract is the associated "
                        f"file {contract.CONTRACT_FILE}."),
        "version": f"{_version()} ({sidecar['precision']}, {sidecar['weights']} weights)",
        "author": AUTHOR, "license": LICENCE,
        "subgraph_metadata": [{
            "name": sidecar["track"],
            "input_tensor_metadata": [tensor_metadata(specs["input"][n], "input") for n in inputs],
            "output_tensor_metadata": [tensor_metadata(specs["output"][n], "output") for n in outputs]}],
        "associated_files": [{"name": contract.CONTRACT_FILE, "type": "DESCRIPTIONS",
                              "description": "the bokehlite sidecar contract (JSON) without "
                                             + ", ".join(contract.EMBEDDED_OMITS)}],
        "min_parser_version": MIN_PARSER_VERSION,
    }


def embedded_contract(sidecar: dict) -> bytes:
    """The sidecar as it goes inside the model: without the keys about the final file."""
    inner = {k: v for k, v in sidecar.items() if k not in contract.EMBEDDED_OMITS}
    return (json.dumps(inner, indent=2, allow_nan=False) + "\n").encode()


def write_metadata(tflite: Path, sidecar: dict) -> dict:
    """Rewrite `tflite` (atomically) with its Model Metadata and the embedded contract; the
    sidecar's `metadata` entry. `sidecar` is the report without its final sha256/size yet."""
    model = tflite.read_bytes()
    wanted = model_metadata(sidecar, model)
    meta = encode_metadata(wanted)
    inner = embedded_contract(sidecar)
    out = with_metadata(model, meta, {contract.CONTRACT_FILE: inner}, {contract.CONTRACT_METADATA_KEY: inner})
    # Verified, not trusted: it decodes back, and without it the model is what it was.
    if decode_metadata(model_metadata_buffer(out)) != wanted:
        raise MetadataError("the metadata written does not decode back to what was meant")
    if without_metadata(out) != repack(model):
        raise MetadataError("adding the metadata changed something else in the model")
    if (associated_files(out) != {contract.CONTRACT_FILE: inner}
            or model_metadata_buffer(out, contract.CONTRACT_METADATA_KEY) != inner):
        raise MetadataError("the embedded contract does not read back")
    atomic_write(tflite, out)
    return _entry(meta, {contract.CONTRACT_FILE: inner})


def _entry(meta: bytes, files: dict[str, bytes]) -> dict:
    return {"name": METADATA_NAME, "schema_version": SCHEMA_VERSION,
            "min_parser_version": decode_metadata(meta).get("min_parser_version"),
            "sha256": hashlib.sha256(meta).hexdigest(), "size_bytes": len(meta),
            "associated_files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size_bytes": len(d)}
                                 for n, d in sorted(files.items())]}


def segmenter_metadata(model: bytes, source: dict, inputs: dict, outputs: dict) -> dict:
    """Our ModelMetadata for a segmenter that carries none: MediaPipe's name and licence."""
    ins, outs = signature_io(model)
    specs = {inputs["name"]: (inputs, "input"), outputs["name"]: (outputs, "output")}
    missing = [n for n in ins + outs if n not in specs]
    if missing:
        raise ValueError(f"segmenter tensor {missing[0]!r} is not described")

    def tensor(name):
        spec, kind = specs[name]
        return tensor_metadata({"name": name, "shape": spec["shape"], "range": spec.get("range", [0.0, 1.0]),
                                "meaning": spec.get("meaning", "the photo, RGB")}, kind)

    return {"name": source["model"], "description": f"{source['model']}, from {source['package']} "
                                                    f"({source['member']}), with a serving_default signature added",
            "version": source["package"], "author": SEGMENTER_AUTHOR, "license": SEGMENTER_LICENCE,
            "subgraph_metadata": [{"name": "segmenter",
                                   "input_tensor_metadata": [tensor(n) for n in ins],
                                   "output_tensor_metadata": [tensor(n) for n in outs]}],
            "min_parser_version": MIN_PARSER_VERSION}


def with_segmenter_metadata(signed: bytes, original: bytes, source: dict, inputs: dict,
                            outputs: dict) -> tuple[bytes, dict]:
    """The signed segmenter with Model Metadata: MediaPipe's own (and its associated files)
    if the original has any, else ours. (bytes, the portrait sidecar's `metadata` entry)."""
    files = associated_files(original)
    meta = model_metadata_buffer(signed)
    kept = meta is not None
    if not kept:
        meta = encode_metadata(segmenter_metadata(signed, source, inputs, outputs))
    out = with_metadata(signed, meta, files)
    return out, {**_entry(meta, files), "source": "mediapipe" if kept else "bokehlite"}
