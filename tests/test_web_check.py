"""export/webgpu_check.py: a model on WebGPU in headless Chromium (SwiftShader, the default
limits) against the Python LiteRT interpreter. The tiny gpu model passes; the portrait model
needs 17 sampled textures where WebGPU's default limit is 16, which LiteRT's native GPU check
does not see: this one must."""
from __future__ import annotations


import numpy as np
import pytest

from web_support import require_browser


def test_hash_inputs_are_the_pages():
    from bokehlite.export.webgpu_check import hash_inputs, hash_values

    # web/check.mjs hashValues(5, 3) and hashValues(100000, 7)[99999], as Node computes them.
    assert hash_values(5, 3).tolist() == [0.9663463830947876, 0.5590901374816895, 0.7432048320770264,
                                          0.3228684663772583, 0.2854035496711731]
    assert float(hash_values(100000, 7)[99999]) == np.float32(0.6212235689163208)
    inputs = hash_inputs({"image": (1, 2, 2, 3), "aperture": (1, 1)}, 0)
    assert inputs["image"].dtype == np.float32 and inputs["image"].shape == (1, 2, 2, 3)
    assert inputs["aperture"][0, 0] == np.float32(hash_values(1, 0)[0] * np.float32(40))   # "aperture" sorts first


def test_gpu_model_runs_correctly_on_webgpu(tiny_export):
    require_browser()
    from bokehlite.export.webgpu_check import webgpu_check

    result = webgpu_check(tiny_export("gpu")[0])
    assert result["ran"] and result["ok"], result
    assert result["psnr"] > 100 and set(result["outputs"]) == {"bokeh", "blur", "defocus"}
    assert result["max_sampled_textures"] == 16 and result["limits"] == "default"
    print(f"webgpu_check: gpu 128x192: {result['psnr']:.1f} dB")


def test_portrait_model_over_the_default_texture_limit_is_caught(portrait):
    require_browser()
    from bokehlite.export.webgpu_check import webgpu_check

    model = next(portrait.glob("bokeh_portrait_*.tflite"))
    result = webgpu_check(model)
    assert result["ran"] and not result["ok"], result
    assert result["reason"].startswith(f"WebGPU failed compiling {model.name}: The number of sampled textures (17)")
    assert "\n" not in result["reason"]
    segmenter = webgpu_check(portrait / "bokeh_portrait_segmenter.tflite")
    assert segmenter["ok"], segmenter                # its custom op Convolution2DTransposeBias included


def test_missing_browser_says_so_in_one_line(tiny_export, monkeypatch):
    from bokehlite.export import webgpu_check as check

    monkeypatch.setattr(check, "CHROMIUM", "/nonexistent/chromium")
    result = check.webgpu_check(tiny_export("gpu")[0])
    assert result["ran"] is False and result["ok"] is False and result["psnr"] is None
    assert result["reason"] == "WebGPU check not run: no Chromium at /nonexistent/chromium (apt-get install chromium)"


@pytest.mark.slow
def test_full_size_gpu_track_over_the_texture_limit_is_caught(full_size_export):
    require_browser()
    from bokehlite.export.webgpu_check import webgpu_check

    model = full_size_export("gpu")[0]
    result = webgpu_check(model)
    assert result["ran"] and not result["ok"], result
    assert "The number of sampled textures (29)" in result["reason"], result["reason"]
