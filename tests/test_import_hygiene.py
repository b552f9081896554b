"""--help and argument errors answer without loading the heavy toolchain (issue 9).

Each check runs in a fresh interpreter, calls the CLI's main() and lists which heavy
packages ended up in sys.modules: an import at module level anywhere on the path fails it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "tensorflow", "onnx2tf", "onnxruntime", "onnx", "tf_keras")
CLIS = {"bokeh-render": "bokehlite.runtime.cli", "export-tflite": "bokehlite.export.cli",
        "bench-runtime": "bokehlite.benchmarks.cli", "train-bokeh": "bokehlite.model.train_cli",
        "bokeh-web": "bokehlite.runtime.web"}
PROBE = """
import json, sys
from {module} import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))}}))
"""


def probe(module: str, argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module, argv=argv, heavy=HEAVY)],
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


CASES = [
    ("bokeh-render", ["--help"], 0), ("bokeh-render", ["photo.jpg"], 2),
    ("bokeh-render", ["photo.jpg", "-o", "out", "--threads", "0"], 2),
    ("export-tflite", ["--help"], 0), ("export-tflite", ["--track", "tpu"], 2),
    ("export-tflite", ["--track", "cpu", "--input-size", "100x100"], 2),
    ("export-tflite", ["--input-size", "big"], 2),
    ("bench-runtime", ["--help"], 0), ("bench-runtime", ["--runs", "0"], 2),
    ("bokeh-web", ["--help"], 0), ("bokeh-web", [], 2), ("bokeh-web", ["--models", "no_such_dir"], 2),
    ("bench-runtime", ["--track", "cpu", "--size", "100x100"], 2),
    ("train-bokeh", ["--help"], 0), ("train-bokeh", ["--stage", "4", "--out", "run"], 2),
    ("train-bokeh", ["ebb", "--stage", "1", "--out", "run", "--crop", "100"], 2),
    ("train-bokeh", ["ebb", "--stage", "1", "--out", "run"], 2),                 # no VGG19 weights
    ("train-bokeh", ["no_such_dir", "--stage", "1", "--out", "run", "--no-vgg"], 2),
]


@pytest.mark.parametrize("cli, argv, code", CASES, ids=[" ".join([c, *a]) for c, a, _ in CASES])
def test_help_and_argument_errors_load_no_heavy_package(cli, argv, code):
    result = probe(CLIS[cli], argv)
    assert result["code"] == code
    assert result["heavy"] == []


@pytest.mark.parametrize("module", ["bokehlite.model.synthetic", "bokehlite.model.config", "bokehlite.contract",
                                    "bokehlite.export.tracks", "bokehlite.benchmarks.suite", "bokehlite.runtime"])
def test_torch_free_modules_import_without_torch(module):
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: a module that does import torch is reported."""
    code = f"import sys, bokehlite.model.bokehnet; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "torch" in out.stdout
