"""tflite-support 0.4.4's MetadataDisplayer, an independent reader, accepts every export.

tflite-support cannot be installed beside TensorFlow 2.21 (it needs protobuf<4), so it
lives in its own venv and tests/metadata_displayer.py runs there. Set
BOKEHLITE_TFLITE_SUPPORT to that venv's python (.ci/run does); without it this skips,
unless BOKEHLITE_REQUIRE_TFLITE_SUPPORT is set too.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("metadata_displayer.py")


@pytest.fixture(scope="module")
def displayer_python():
    python = os.environ.get("BOKEHLITE_TFLITE_SUPPORT")
    if not python:
        reason = "BOKEHLITE_TFLITE_SUPPORT (a python with tflite-support==0.4.4) is not set"
        if os.environ.get("BOKEHLITE_REQUIRE_TFLITE_SUPPORT"):
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def run(python, *paths):
    return subprocess.run([python, str(SCRIPT), *map(str, paths)], capture_output=True, text=True, timeout=300)


def test_tflite_supports_displayer_reads_every_track(displayer_python, tiny_export):
    paths = [tiny_export(track)[0] for track in ("gpu", "cpu", "render")]
    proc = run(displayer_python, *paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": ok") == 3


def test_the_displayer_check_fails_on_metadata_in_pytorch_order(displayer_python, tiny_export, tmp_path):
    from bokehlite.export.metadata import model_metadata
    from bokehlite.tflite_metadata import encode_metadata, with_metadata, without_metadata
    path, report = tiny_export("gpu")
    bare = without_metadata(path.read_bytes())
    meta = model_metadata(report, bare)
    outputs = meta["subgraph_metadata"][0]["output_tensor_metadata"]
    outputs.sort(key=lambda t: ("bokeh", "blur", "defocus").index(t["name"]))     # PyTorch's order
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(with_metadata(bare, encode_metadata(meta), {}))
    proc = run(displayer_python, wrong)
    assert proc.returncode == 1 and "subgraph order" in proc.stderr, proc.stdout + proc.stderr
