"""The README's promise: both tracks export at the full 1024x1536 EBB! resolution."""
from __future__ import annotations

import pytest

from bokehlite.export.gpu_check import check_gpu_compatibility


@pytest.mark.slow
@pytest.mark.parametrize("track", ["gpu", "cpu"])
def test_full_size_export_passes_its_gates(full_size_export, track):
    tflite, report = full_size_export(track)     # shared with test_gpu_accelerator.py
    assert tflite.stat().st_size == report["size_bytes"] > 50e6   # the paper-size ResNeXt50
    assert report["inputs"][0]["shape"] == [1, 1024, 1536, 3]
    assert check_gpu_compatibility(tflite)["compatible"] or track == "cpu"
    psnr = report["parity"]["tflite_vs_pytorch"]["psnr"]
    assert psnr >= (60.0 if track == "cpu" else 45.0)
