"""The portrait pipeline's two models carry TFLite Model Metadata: the portrait model ours, the
segmenter MediaPipe's own (its labels.txt kept), or ours with MediaPipe's name and licence."""
from __future__ import annotations

import hashlib
import json

import pytest

from bokehlite import contract
from bokehlite.tflite_metadata import (associated_files, decode_metadata, model_metadata_buffer, signature_io,
                                       without_metadata)
from native_support import PORTRAIT_SIZE

SIZE = PORTRAIT_SIZE


@pytest.fixture(scope="module")
def pipeline(portrait):
    """The session's tiny portrait export (conftest.py), as export-tflite --track portrait writes it."""
    return portrait


def test_portrait_models_both_carry_metadata(pipeline):
    spec = json.loads((pipeline / f"bokeh_portrait_{SIZE}.json").read_text())
    seg = (pipeline / spec["segmenter"]["file"]).read_bytes()
    meta = decode_metadata(model_metadata_buffer(seg))
    assert meta["name"] == "ImageSegmenter" and spec["segmenter"]["metadata"]["source"] == "mediapipe"
    assert list(associated_files(seg)) == ["labels.txt"]            # MediaPipe's, kept
    assert spec["segmenter"]["metadata"]["sha256"] == hashlib.sha256(model_metadata_buffer(seg)).hexdigest()
    assert spec["segmenter"]["sha256"] == hashlib.sha256(seg).hexdigest()
    assert signature_io(seg) == (["image"], ["person"])
    model = (pipeline / f"bokeh_portrait_{SIZE}.tflite").read_bytes()
    rmeta = decode_metadata(model_metadata_buffer(model))
    assert rmeta["name"] == "bokehlite portrait track 128x192"
    assert [t["name"] for t in rmeta["subgraph_metadata"][0]["input_tensor_metadata"]] == signature_io(model)[0]
    assert sorted(signature_io(model)[0]) == ["aperture", "image", "person"]
    embedded = json.loads(associated_files(model)[contract.CONTRACT_FILE])
    assert embedded["track"] == "portrait" and embedded["segmenter"]["sha256"] == spec["segmenter"]["sha256"]


def test_a_segmenter_without_metadata_gets_ours_with_mediapipes_name_and_licence(tmp_path):
    from bokehlite.export.segmenter import SOURCE, segmenter_bytes, with_signature, write_segmenter
    original = without_metadata(segmenter_bytes())            # as if MediaPipe had shipped none
    entry = write_segmenter(tmp_path / "seg.tflite", with_signature(original), original)
    data = (tmp_path / "seg.tflite").read_bytes()
    meta = decode_metadata(model_metadata_buffer(data))
    assert entry["metadata"]["source"] == "bokehlite" and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["name"] == SOURCE["model"] and meta["license"] == "Apache-2.0" and "MediaPipe" in meta["author"]
    (sub,) = meta["subgraph_metadata"]
    assert [t["name"] for t in sub["input_tensor_metadata"]] == ["image"]
    assert [t["name"] for t in sub["output_tensor_metadata"]] == ["person"]
    assert sub["input_tensor_metadata"][0]["process_units"][0]["options"]["NormalizationOptions"]["std"] == [255.0]
