"""LiteRT's GPU accelerator (`litert-gpu`): the GPU track compiled GPU-only and run on a real
Vulkan device (a GPU driver, or SwiftShader in CI), as a second opinion beside our checker.

Without an adapter the tests that need one skip (conftest's `gpu_adapter`), unless
BOKEHLITE_REQUIRE_GPU is set, as .ci/run does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bokehlite.compare import compare
from bokehlite.export import parity
from bokehlite.export.accelerator import check_file, verify_export
from bokehlite.export.gpu_rewrite import MAX_TEXTURE_ROWS, rewrite_for_gpu
from bokehlite.export.track_model import build_model
from bokehlite.export.tracks import get_track
from bokehlite.model import BackboneConfig, BokehNet, stage_config
from bokehlite.runtime import BackendError, gpu_adapter as adapters
from bokehlite.runtime.backends import open_model
from bokehlite.runtime.cli import main as render_main
from native_support import stderr_on_a_terminal

HOW_TO = "apt-get install chromium-common libvulkan1"
MOCK_ICD = Path("/usr/lib/chromium/libVkICD_mock_icd.so")


@pytest.fixture(scope="session")
def adapter(gpu_adapter):
    return gpu_adapter


def cli(module: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def tf_model(path: Path, fn, *specs) -> Path:
    """A .tflite of a tf.function, converted with builtin ops (crafted test models)."""
    import tensorflow as tf
    concrete = tf.function(fn, input_signature=[tf.TensorSpec(s, tf.float32) for s in specs])
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete.get_concrete_function()]).convert())
    return path


# --- the exported GPU track on the accelerator ------------------------------------------------

def test_small_gpu_track_export_runs_gpu_only_and_matches_pytorch(tiny_export, adapter):
    path, report = tiny_export("gpu")
    on_gpu = report["gpu_accelerator"]
    assert on_gpu["verified"] and on_gpu["fully_accelerated"] and on_gpu["adapter"] == adapter.name
    assert on_gpu["psnr_vs_pytorch"] >= parity.ACCELERATOR_GATE.min_psnr
    assert on_gpu["vs_cpu_interpreter"]["psnr"] is None or on_gpu["vs_cpu_interpreter"]["psnr"] >= 40.0
    # Independently, in this process: a fresh scene on the accelerator against PyTorch.
    runner = open_model(path, "litert-gpu")
    assert runner.info["fully_accelerated"] and runner.info["adapter"]["name"] == adapter.name
    model, _ = build_model(get_track("gpu"), backbone=BackboneConfig.tiny())
    x = parity.scenes(*report["input_size"], count=3)[2]
    with torch.no_grad():
        expected = [parity.nhwc(o.numpy()) for o in model(torch.from_numpy(x))]
    got = runner(image=parity.nhwc(x))
    for name, ref in zip(get_track("gpu").outputs, expected):
        assert compare(ref, got[name])["psnr"] >= 40.0, name


def test_sidecar_names_the_layers_rewritten_for_the_gpu_and_why(tiny_export):
    _, report = tiny_export("gpu")
    # The tiny backbone's first stage has 2 channels per group: made dense for the accelerator;
    # the 15 layers' compositing chain is broken after every 6th (69 px down to 1: blurs 9 and 3).
    record, *breaks = report["gpu_rewrites"]
    assert record["layer"] == "defocus_net.encoder.layer1.0.conv2"
    assert "dense" in record["rewrite"] and "multiples of 4" in record["reason"]
    assert [b["layer"] for b in breaks] == ["renderer.blurs.9", "renderer.blurs.3"]
    assert all("1x1 identity convolution" in b["rewrite"] and "maxSampledTexturesPerShaderStage (16)" in b["reason"]
               for b in breaks)
    cpu = tiny_export("cpu")[1]
    assert cpu["gpu_rewrites"] == []          # float32: the graph is left alone
    assert cpu["webgpu"]["ran"] is False and cpu["webgpu"]["reason"] == ("float32 export: made for the CPU, "
                                                                         "not run on WebGPU")


def test_paper_size_adapters_are_split_below_the_texture_limit_exactly():
    torch.manual_seed(0)
    net = BokehNet(stage_config("inference")).eval()
    rewritten = BokehNet(stage_config("inference")).eval()
    rewritten.load_state_dict(net.state_dict())        # checkpoints load into the reference as before
    records = {r["layer"]: r for r in rewrite_for_gpu(rewritten)}
    assert set(records) == {"defocus_net.adapters.2", "defocus_net.adapters.3", "renderer.blurs.9",
                            "renderer.blurs.3"}     # the last two: shader breaks (test_web_check.py)
    assert "2 input-channel groups of 512" in records["defocus_net.adapters.2"]["rewrite"]
    assert "4 input-channel groups of 512" in records["defocus_net.adapters.3"]["rewrite"]
    assert "9216 texture rows" in records["defocus_net.adapters.2"]["reason"]
    for module in rewritten.modules():
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            assert module.in_channels // module.groups * kh * kw <= MAX_TEXTURE_ROWS
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = net(x), rewritten(x)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_a_convolution_over_the_texture_limit_fails_check_gpu_and_its_split_passes(tmp_path, adapter):
    """The full-size failure in miniature: a 3x3 conv with 1024 inputs at 32x48 packs its weights
    into 9216 rows. Our static checker accepts it; the accelerator says why it cannot."""
    import tensorflow as tf
    k = tf.constant((np.random.default_rng(0).standard_normal((3, 3, 1024, 256)) * 0.02).astype(np.float32))
    wide = tf_model(tmp_path / "wide.tflite", lambda x: {"y": tf.nn.conv2d(x, k, 1, "SAME")}, [1, 32, 48, 1024])

    def halves(x):
        a, b = tf.split(x, 2, axis=-1)
        return {"y": tf.nn.conv2d(a, k[:, :, :512], 1, "SAME") + tf.nn.conv2d(b, k[:, :, 512:], 1, "SAME")}

    split = tf_model(tmp_path / "split.tflite", halves, [1, 32, 48, 1024])
    result = cli("bokehlite.export.cli", "--check-gpu", wide)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "all 1 ops are accepted by the TFLite GPU delegate" in result.stdout
    assert "exceeded maximum texture size" in result.stdout and "height:9216" in result.stdout
    report = check_file(split)
    assert report["compatible"] is True and report["fully_accelerated"] is True
    [agreement] = report["agreement_with_cpu"].values()
    assert agreement["psnr"] > 100


def test_int64_argmax_model_fails_check_gpu_with_the_accelerators_message(tmp_path, adapter):
    import tensorflow as tf
    model = tf_model(tmp_path / "argmax.tflite", lambda x: {"index": tf.argmax(x, axis=-1)}, [1, 8, 8, 3])
    result = cli("bokehlite.export.cli", "--check-gpu", model)
    assert result.returncode == 1
    assert "op ARG_MAX is not supported by the GPU delegate" in result.stdout          # our checker
    assert ("Following operations are not supported by GPU delegate: ARG_MAX: Tensor type(INT64) "
            "is not supported") in result.stdout                                     # LiteRT's
    assert result.stderr == ""


def test_a_failing_accelerator_gate_leaves_no_file(tmp_path, adapter):
    gates = {**parity.GATES, "accelerator": parity.Gate(None, 1e9, None)}
    from bokehlite.export.pipeline import ExportError, export_track
    from bokehlite.export.plan import ExportPlan
    with pytest.raises(ExportError, match=r"GPU accelerator check failed: its outputs on .* miss the gate"):
        export_track(ExportPlan.build("gpu", (128, 192), backbone=BackboneConfig.tiny(), gates=gates), tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- bokeh-render --backend litert-gpu ---------------------------------------------------------

def test_bokeh_render_on_the_accelerator_agrees_with_the_cpu_on_a_photo(tiny_export, tmp_path, adapter,
                                                                         capsys):
    import skimage.data
    photo = tmp_path / "cat.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
    model = tiny_export("gpu")[0]
    # In a child process: the accelerator's notices must stay off stdout, which the JSON owns.
    result = cli("bokehlite.runtime.cli", photo, "-m", model, "-o", tmp_path / "gpu", "--backend",
                 "litert-gpu", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["backend"], report["adapter"], report["xnnpack"]) == ("litert-gpu", adapter.name, False)
    [summary] = result.stderr.strip().splitlines()
    assert summary.startswith("bokeh-render: rendered 1 of 1 photos") and f"on {adapter.name}" in summary
    assert render_main([str(photo), "-m", str(model), "-o", str(tmp_path / "cpu")]) == 0
    capsys.readouterr()
    gpu = cv2.imread(str(tmp_path / "gpu" / "cat.png")).astype(np.float32) / 255
    cpu = cv2.imread(str(tmp_path / "cpu" / "cat.png")).astype(np.float32) / 255
    assert compare(cpu, gpu)["psnr"] is None or compare(cpu, gpu)["psnr"] >= 40.0


def test_a_model_the_accelerator_fails_on_is_one_line_and_exit_2_without_litert_info_lines(tiny_export, tmp_path,
                                                                                         adapter):
    """Issue 35: the tiny cpu track, its sidecar forged to claim a verified GPU run (F9 lets it through),
    fails WebGPU validation while compiling (2-channel groups). The error was followed by LiteRT's
    "INFO: ... DestroyAccelerator" lines at exit."""
    source = tiny_export("cpu")[0]
    model = tmp_path / "m" / source.name
    model.parent.mkdir()
    model.write_bytes(source.read_bytes())
    sidecar = json.loads(source.with_suffix(".json").read_text())
    sidecar["gpu_accelerator"] = {"verified": True}
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((96, 144, 3), 90, np.uint8))
    result = cli("bokehlite.runtime.cli", photo, "-m", model, "-o", tmp_path / "out", "--backend", "litert-gpu")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bokeh-render: error: {model}: LiteRT's GPU accelerator reported an error while "
                               "compiling it: Validation error"), lines[0]
    assert result.stdout == "" and not list(tmp_path.glob("out/*"))


def test_on_a_terminal_bokeh_render_says_first_that_it_compiles_for_the_accelerator(tiny_export, tmp_path, adapter):
    """Compiling on SwiftShader takes minutes at full size (issue 35): a terminal hears why it
    waits before it waits; a script's stderr (the test above) still has its one line."""
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((96, 144, 3), 90, np.uint8))
    model = tiny_export("gpu")[0]
    code, seen = stderr_on_a_terminal([sys.executable, "-m", "bokehlite.runtime.cli", photo, "-m", model, "-o",
                                       tmp_path / "out", "--backend", "litert-gpu"])
    assert code == 0, seen
    first = seen.strip().splitlines()[0]
    assert first == (f"bokeh-render: compiling {model} for LiteRT's GPU accelerator (on a software GPU "
                     "such as SwiftShader, minutes for a full-size model)")


# --- without an adapter ------------------------------------------------------------------------

def no_adapter_cases(tmp_path) -> dict[str, str]:
    cases = {"no driver": str(tmp_path / "no_such_icd.json")}
    if MOCK_ICD.is_file():        # a Vulkan device Dawn refuses: the loader lists it, the accelerator cannot use it
        mock = tmp_path / "mock_icd.json"
        mock.write_text(json.dumps({"file_format_version": "1.0.0",
                                    "ICD": {"library_path": str(MOCK_ICD), "api_version": "1.3.0"}}))
        cases["refused device"] = str(mock)
    return cases


def test_without_an_adapter_render_and_export_exit_2_with_one_line_saying_how_to_get_one(tiny_export, tmp_path):
    model = tiny_export("gpu")[0]
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((20, 30, 3), 128, np.uint8))
    for case, icd in no_adapter_cases(tmp_path).items():
        env = {"VK_ICD_FILENAMES": icd}          # the user's explicit choice: the only one tried
        render = cli("bokehlite.runtime.cli", photo, "-m", model, "-o", tmp_path / "out", "--backend",
                     "litert-gpu", env=env)
        export = cli("bokehlite.export.cli", "--track", "gpu", "--tiny", "--input-size", "128x192",
                     "--require-gpu", "-o", tmp_path / "exported", env=env)
        for result in (render, export):
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(lines) == 1, (case, result.stderr)
            assert "no Vulkan adapter" in lines[0] and icd in lines[0], case
            # A variable that names a missing file is the user's to fix: SwiftShader is not the answer.
            assert (HOW_TO in lines[0]) == (case == "refused device"), (case, lines[0])
            assert ("which does not exist" in lines[0]) == (case == "no driver"), (case, lines[0])
        assert not (tmp_path / "exported").exists() and not list(tmp_path.glob("out/*"))


def test_without_an_adapter_the_sidecar_says_not_verified_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(adapters, "_found", adapters._found)       # restored afterwards
    monkeypatch.setenv("VK_ICD_FILENAMES", str(tmp_path / "no_such_icd.json"))
    with pytest.raises(BackendError):
        adapters.find_adapter(refresh=True)
    on_gpu = verify_export(tmp_path / "unused.tflite", [], [], parity.ACCELERATOR_GATE)
    assert on_gpu["verified"] is False and "no_such_icd.json, which does not exist" in on_gpu["reason"]
    from bokehlite.export.accelerator import NoAdapterError
    with pytest.raises(NoAdapterError):
        verify_export(tmp_path / "unused.tflite", [], [], parity.ACCELERATOR_GATE, require=True)
