"""export/webgpu_check.py: a model on WebGPU in headless Chromium (SwiftShader, the default
limits) against the Python LiteRT interpreter, and the export's step that runs it. Every
float16 export runs correctly there and its sidecar says so: the portrait model and the
full-size gpu track once needed 17 and 29 sampled textures in one compute shader where WebGPU's
default limit is 16, which LiteRT's native GPU check does not see, until the export broke their
compositing chains (export/gpu_rewrite.py). With the breaks taken out again the check catches
the model and the export fails."""
from __future__ import annotations


import numpy as np
import pytest

from web_support import require_browser, without_shader_breaks


def test_hash_inputs_are_the_pages():
    from bokehlite.export.webgpu_check import hash_inputs, hash_values

    # web/check.mjs hashValues(5, 3) and hashValues(100000, 7)[99999], as Node computes them.
    assert hash_values(5, 3).tolist() == [0.9663463830947876, 0.5590901374816895, 0.7432048320770264,
                                          0.3228684663772583, 0.2854035496711731]
    assert float(hash_values(100000, 7)[99999]) == np.float32(0.6212235689163208)
    inputs = hash_inputs({"image": (1, 2, 2, 3), "aperture": (1, 1)}, 0)
    assert inputs["image"].dtype == np.float32 and inputs["image"].shape == (1, 2, 2, 3)
    assert inputs["aperture"][0, 0] == np.float32(hash_values(1, 0)[0] * np.float32(40))   # "aperture" sorts first


def shader_breaks(report: dict) -> list[dict]:
    return [r for r in report["gpu_rewrites"] if "identity convolution" in r["rewrite"]]


def test_gpu_model_runs_correctly_on_webgpu_and_its_sidecar_says_so(tiny_export):
    require_browser()
    from bokehlite.export.webgpu_check import webgpu_check

    model, report = tiny_export("gpu")
    result = webgpu_check(model)
    assert result["ran"] and result["ok"], result
    assert result["psnr"] > 100 and set(result["outputs"]) == {"bokeh", "blur", "defocus"}
    assert result["max_sampled_textures"] == 16 and result["limits"] == "default"
    recorded = report["webgpu"]          # the export's own run, before the metadata went in
    assert recorded["ran"] and recorded["ok"] and recorded["psnr"] > 100 and recorded["reason"] == ""
    assert recorded["max_sampled_textures"] == 16 and recorded["seconds"] > 0
    print(f"webgpu_check: gpu 128x192: {result['psnr']:.1f} dB; the export's check took {recorded['seconds']} s")


def test_rewritten_portrait_model_runs_correctly_on_webgpu(portrait):
    require_browser()
    import json

    from bokehlite.export.webgpu_check import webgpu_check

    model = next(portrait.glob("bokeh_portrait_*.tflite"))
    report = json.loads(model.with_suffix(".json").read_text())
    # Its 9 layers on the coarsest grid: one shader break after the 6th.
    [record] = shader_breaks(report)
    assert "one of 9 layers composited in one shader" in record["was"], record
    assert "maxSampledTexturesPerShaderStage (16)" in record["reason"]
    result = webgpu_check(model)
    assert result["ran"] and result["ok"], result
    assert result["psnr"] > 100, result
    assert report["webgpu"]["ran"] and report["webgpu"]["ok"] and report["webgpu"]["psnr"] > 100
    segmenter = webgpu_check(portrait / "bokeh_portrait_segmenter.tflite")
    assert segmenter["ok"], segmenter                # its custom op Convolution2DTransposeBias included
    print(f"webgpu_check: portrait 128x192: {result['psnr']:.1f} dB, segmenter {segmenter['psnr']:.1f} dB")


def test_a_model_over_the_default_texture_limit_fails_the_export(portrait, tmp_path):
    """The portrait model without its shader break needs 17 sampled textures: the export's
    WebGPU step raises, in one line."""
    require_browser()
    from bokehlite.export.webgpu_check import WebGpuError, verify_export

    model = without_shader_breaks(next(portrait.glob("bokeh_portrait_*.tflite")), tmp_path / "unbroken")
    lines = []
    with pytest.raises(WebGpuError) as caught:        # export_track: ExportError, nothing written
        verify_export(model, lines.append)
    message = str(caught.value)
    assert message.startswith(f"WebGPU failed compiling {model.name}: The number of sampled textures (17)"), message
    assert "\n" not in message


def test_missing_browser_is_one_line_and_ran_false_in_the_sidecar(tiny_export, monkeypatch):
    from bokehlite.export import webgpu_check as check

    monkeypatch.setattr(check, "CHROMIUM", "/nonexistent/chromium")
    lines = []
    result = check.verify_export(tiny_export("gpu")[0], lines.append)
    assert result["ran"] is False and result["ok"] is False and result["psnr"] is None
    assert result["reason"] == "WebGPU check not run: no Chromium at /nonexistent/chromium (apt-get install chromium)"
    assert lines == [result["reason"]]
