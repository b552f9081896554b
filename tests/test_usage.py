"""Every command answers bad usage with one line and exit 2, not argparse's usage block."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command, bad", [
    ("bokeh-render", ["photo.jpg", "--backend", "onnx"]),
    ("bench-runtime", ["--track", "npu"]),
    ("export-tflite", ["--track", "npu"]),
    ("export-tflite", ["--input-size"]),
    ("train-bokeh", ["--stage", "4", "--out", "run"]),
    ("train-bokeh", ["--no-such-option"]),
    ("export-tflite", ["--input-size", "100x100"]),           # parsed, then refused by the track
    ("train-bokeh", ["--out", "r"]),                           # no data folder
    ("train-bokeh", ["{ebb}", "--stage", "1", "--out", "x", "--no-vgg"]),   # 4 pairs, 470 held out
])
def test_bad_usage_is_one_line_and_exit_2(command, bad, tmp_path, tmp_path_factory):
    if "{ebb}" in bad:
        from bokehlite.model.synthetic_ebb import write_synthetic_ebb
        ebb = write_synthetic_ebb(tmp_path_factory.mktemp("ebb"), 4, (64, 96), seed=0)
        bad = [str(ebb) if a == "{ebb}" else a for a in bad]
    proc = subprocess.run([str(BIN / command), *bad], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{command}: error: ") and lines[0].endswith(f"(see {command} --help)")
    assert proc.stdout == "" and not list(tmp_path.iterdir())
