"""The runtime stays installable without PyTorch and TensorFlow: checked in fresh processes."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def gpu_model(tiny_export):
    return tiny_export("gpu")[0]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (120, 170, 3), dtype=np.uint8))
    return path


def python(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


def test_importing_the_runtime_loads_no_framework_and_no_interpreter():
    code = ("import sys, bokehlite.runtime; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'tensorflow', 'ai_edge_litert', 'tflite_runtime', 'keras'}))")
    result = python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_selfcheck_renders_a_photo_without_torch_or_tensorflow(gpu_model, photo):
    result = python("-m", "bokehlite.runtime.selfcheck", str(gpu_model), str(photo))
    assert result.returncode == 0, result.stderr
    assert "selfcheck: ok" in result.stdout and "litert" in result.stdout


def test_selfcheck_fails_when_a_framework_gets_imported(gpu_model, photo, capsys):
    # In this test process torch is loaded (the exporter needs it): the check must notice.
    pytest.importorskip("torch")
    from bokehlite.runtime.selfcheck import main
    assert main([str(gpu_model), str(photo)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the runtime imported" in err[0] and "torch" in err[0]


def test_selfcheck_bad_input_is_exit_2(gpu_model, tmp_path):
    result = python("-m", "bokehlite.runtime.selfcheck", str(gpu_model), str(tmp_path / "none.png"))
    assert result.returncode == 2 and "no such file" in result.stderr
