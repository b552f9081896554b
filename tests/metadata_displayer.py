"""An independent reader of our TFLite Model Metadata: tflite-support 0.4.4's MetadataDisplayer.

Run it with the Python of a separate venv (tflite-support needs protobuf<4, which cannot
sit beside TensorFlow 2.21; its import needs Debian's libusb-1.0-0):

    python3.11 -m venv /tmp/tfs && /tmp/tfs/bin/pip install tflite-support==0.4.4
    /tmp/tfs/bin/python tests/metadata_displayer.py MODEL.tflite [...] [--print]

For each model it checks what Android tooling relies on: one SubGraphMetadata whose
TensorMetadata are as many as the subgraph's inputs and outputs and carry the signature's
names in the subgraph's order; name, version, author and licence set; min_parser_version
what tflite-support computes for the fields used; the associated files recorded are the
ones packed; image inputs normalised from pixels. For our models (not the segmenter) the
embedded contract is our sidecar without its sha256. Exit 0 when all pass, 1 otherwise,
one line per problem. --print writes each model's metadata JSON as the displayer gives it.
Only tflite-support and the standard library are imported (not bokehlite).
"""
from __future__ import annotations

import json
import sys

from tflite_support import metadata as md
from tensorflow_lite_support.metadata import schema_py_generated as tflite_schema
from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version

CONTRACT_FILE = "bokehlite_contract.json"


def signature_order(model: bytes) -> tuple[list[str], list[str]]:
    root = tflite_schema.Model.GetRootAsModel(model, 0)
    for i in range(root.SignatureDefsLength()):
        sig = root.SignatureDefs(i)
        if sig.SignatureKey() != b"serving_default":
            continue
        graph = root.Subgraphs(sig.SubgraphIndex())
        names = {}
        for get, n in ((sig.Inputs, sig.InputsLength()), (sig.Outputs, sig.OutputsLength())):
            for k in range(n):
                names[get(k).TensorIndex()] = get(k).Name().decode()
        return ([names[graph.Inputs(k)] for k in range(graph.InputsLength())],
                [names[graph.Outputs(k)] for k in range(graph.OutputsLength())])
    raise ValueError("no serving_default signature")


def check(path: str, show: bool) -> list[str]:
    problems = []
    with open(path, "rb") as f:
        model = f.read()
    displayer = md.MetadataDisplayer.with_model_file(path)
    meta = json.loads(displayer.get_metadata_json())
    if show:
        print(f"== {path}\n{displayer.get_metadata_json()}")
        print(f"packed associated files: {displayer.get_packed_associated_file_list()}")
    for key in ("name", "version", "author", "license", "description"):
        if not meta.get(key) and not (key in ("author", "license", "version") and meta.get("name") == "ImageSegmenter"):
            problems.append(f"{key} is missing")
    wanted = _pywrap_metadata_version.GetMinimumMetadataParserVersion(bytes(displayer.get_metadata_buffer()))
    if meta.get("min_parser_version") != wanted:
        problems.append(f"min_parser_version {meta.get('min_parser_version')!r}, tflite-support computes {wanted!r}")
    subgraphs = meta.get("subgraph_metadata", [])
    if len(subgraphs) != 1:
        problems.append(f"{len(subgraphs)} SubGraphMetadata, expected 1")
        return problems
    inputs, outputs = signature_order(model)
    sub = subgraphs[0]
    for kind, names in (("input", inputs), ("output", outputs)):
        got = [t.get("name") for t in sub.get(f"{kind}_tensor_metadata", [])]
        if got != names and not (meta.get("name") == "ImageSegmenter"):     # MediaPipe names its own
            problems.append(f"{kind} TensorMetadata names {got}, the signature in subgraph order is {names}")
        if len(got) != len(names):
            problems.append(f"{len(got)} {kind} TensorMetadata for {len(names)} {kind}s")
    for t in sub.get("input_tensor_metadata", []):
        if t.get("content", {}).get("content_properties_type") == "ImageProperties":
            norm = [u["options"] for u in t.get("process_units", [])
                    if u.get("options_type") == "NormalizationOptions"]
            if not norm or norm[0].get("std") != [255.0] or norm[0].get("mean") != [0.0]:
                problems.append(f"input {t.get('name')!r}: expected NormalizationOptions mean [0] std [255], got {norm}")
    recorded = sorted(a["name"] for a in meta.get("associated_files", []) +
                      [a for s in subgraphs for t in s.get("input_tensor_metadata", []) + s.get("output_tensor_metadata", [])
                       for a in t.get("associated_files", [])])
    packed = sorted(displayer.get_packed_associated_file_list())
    if recorded != packed:
        problems.append(f"associated files recorded {recorded}, packed {packed}")
    if CONTRACT_FILE in packed:
        inner = json.loads(displayer.get_associated_file_buffer(CONTRACT_FILE))
        if inner.get("format") != "bokehlite-tflite" or "sha256" in inner:
            problems.append(f"{CONTRACT_FILE} is not our sidecar without sha256")
        if [o["name"] for o in inner.get("outputs", [])] and sorted(o["name"] for o in inner["outputs"]) != sorted(outputs):
            problems.append(f"{CONTRACT_FILE} outputs differ from the signature's")
    elif meta.get("name") != "ImageSegmenter":
        problems.append(f"no {CONTRACT_FILE} packed")
    return problems


def main(argv: list[str]) -> int:
    show = "--print" in argv
    paths = [a for a in argv if a != "--print"]
    if not paths:
        print("usage: metadata_displayer.py MODEL.tflite [...] [--print]", file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        try:
            problems = check(path, show)
        except Exception as exc:          # the displayer refusing a file is the finding
            problems = [f"{type(exc).__name__}: {exc}"]
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        print(f"{path}: {'ok' if not problems else 'FAILED'}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
