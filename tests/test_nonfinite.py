"""NaN and inf: every gate fails on them, the runtime refuses them, and reports stay strict JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fixtures.runtime.variants import poisoned

from bokehlite.compare import compare, merge, worst_psnr
from bokehlite.export.parity import ACCELERATOR_GATE, GATES


@pytest.fixture(scope="module")
def nan_model(tiny_export, tmp_path_factory):
    return poisoned(tiny_export("gpu")[0], tmp_path_factory.mktemp("poisoned"))


def reference() -> np.ndarray:
    return np.random.default_rng(0).random((1, 64, 96, 3)).astype(np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("share", ["all", "one value"])
def test_every_gate_fails_on_nan_or_inf(bad, share):
    ref = reference()
    got = np.full_like(ref, bad) if share == "all" else ref.copy()
    if share == "one value":
        got[0, 10, 20, 1] = bad
    stats = compare(ref, got)
    assert stats["nonfinite"] > 0
    for name, gate in [*GATES.items(), ("accelerator", ACCELERATOR_GATE)]:
        if name == "int8":
            photo = {"photo": "x.png", "bokeh_psnr": stats["psnr"], "defocus_mae": 0.0,
                     "nonfinite": stats["nonfinite"]}
            failures = gate.failures({"photos": [photo]})
        else:
            failures = gate.failures(stats)
        assert any("NaN or infinite" in f for f in failures), (name, failures)


def test_figures_stay_finite_and_strict_json():
    ref = reference()
    stats = compare(ref, np.full_like(ref, np.nan))
    assert stats["max_abs"] == 1.0 and stats["psnr"] == 0.0 and stats["off_fraction"] == 1.0
    json.dumps(stats, allow_nan=False)


def test_merging_never_loses_a_bad_figure_to_the_order():
    good = {"max_abs": 0.01, "psnr": 50.0, "off_fraction": 0.0, "nonfinite": 0.0}
    bad = {"max_abs": float("nan"), "psnr": float("nan"), "off_fraction": float("nan"), "nonfinite": 0.0}
    for stats in ([good, bad], [bad, good]):
        merged = merge(stats)
        assert merged["psnr"] == 0.0 and merged["max_abs"] == float("inf")
    assert worst_psnr([50.0, float("nan")]) == worst_psnr([float("nan"), 50.0]) == 0.0
    assert worst_psnr([None, None]) is None


def test_a_model_that_computes_nan_is_refused_and_writes_nothing(nan_model, tmp_path):
    import cv2
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((40, 60, 3), 128, np.uint8))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", str(photo), "-m", str(nan_model),
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "NaN or infinite" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_check_gpu_calls_a_model_that_computes_nan_incompatible(nan_model, gpu_adapter):
    proc = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--check-gpu", str(nan_model), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    on_gpu = json.loads(proc.stdout)["gpu_accelerator"]
    assert on_gpu["compatible"] is False and "NaN or infinite" in on_gpu["reason"]
