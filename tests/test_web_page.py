"""The page (web/), in a real headless Chromium, served by bokeh-web: its pictures match
bokeh-render's on the same model and photo at the native gate, on wasm and on WebGPU
(SwiftShader, the browser's default limits) where the model is within them; a bad photo, a
model without a contract and a WebGPU failure each give one clear message; no request leaves
the server; it works on a phone-sized touch screen.

Set BOKEHLITE_WEB_SCREENSHOT=docs/web_phone.png to write the phone screenshot there."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from native_support import python_render, read
from web_support import (check_parity, copy_models, drive, finish, page_url, require_browser, serve,
                         without_shader_breaks)

PHONE = {"viewport": [390, 844], "mobile": True, "scale": 2}


@pytest.fixture(scope="module", autouse=True)
def browser():
    """Skip (or, in CI, fail) before any export is made when the browser cannot run."""
    require_browser()


@pytest.fixture(scope="module")
def web_models(tiny_export, portrait, tmp_path_factory) -> Path:
    """One folder, as export-tflite -o writes it: the tiny gpu and render models with their
    sidecars, and the portrait model with its sidecar and segmenter."""
    folder = copy_models(tmp_path_factory.mktemp("web_models"), tiny_export("gpu")[0], tiny_export("render")[0])
    for f in portrait.iterdir():
        if f.suffix in (".tflite", ".json"):
            shutil.copy2(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def site(web_models):
    with serve(web_models) as base:
        yield base


def model_file(folder: Path, track: str) -> Path:
    return next(folder.glob(f"bokeh_{track}_*.tflite"))


@pytest.mark.parametrize("accelerator", ["wasm", "webgpu"])
def test_gpu_track_matches_bokeh_render(site, web_models, photos, tmp_path, accelerator):
    model = model_file(web_models, "gpu")
    steps = [{"goto": page_url(site, model.name, accelerator)}, {"waitState": ["ready", "error"]}]
    for n, name in enumerate(("odd", "grey"), 1):
        steps += [{"setFiles": ["#photo", [str(photos[name])]]}, {"waitRenders": n},
                  {"download": ["#save", str(tmp_path / f"{name}_web.png")], "as": f"saved_{name}"}]
    steps += [{"text": "#accelerator-line", "as": "line"}, {"text": "#timing-line", "as": "timing"},
              {"eval": "window.bokehPage.error", "as": "error"}]
    values = finish(drive(steps, tmp_path), site)
    assert values["error"] is None
    assert values["saved_odd"] == "odd_bokeh.png" and values["saved_grey"] == "grey_bokeh.png"
    assert values["line"].startswith("Ran on WebGPU" if accelerator == "webgpu" else "Ran on wasm"), values["line"]
    print(f"timing: gpu {accelerator}: {values['timing']}")
    for name in ("odd", "grey"):
        ref = python_render(photos[name], "-m", model, out=tmp_path / "py") / photos[name].name
        check_parity(tmp_path / f"{name}_web.png", ref, f"gpu track, {name} photo, {accelerator}")


@pytest.mark.parametrize("accelerator", ["wasm", "webgpu"])
def test_render_track_tap_to_focus_and_aperture_match_bokeh_render(site, web_models, photos, depth_maps, tmp_path,
                                                                   accelerator):
    """Default focus, a tap (column 128, row 384 of the 512x512 photo) and a new aperture."""
    model = model_file(web_models, "render")
    steps = [{"goto": page_url(site, model.name, accelerator)}, {"waitState": ["ready", "error"]},
             {"setFiles": ["#photo", [str(photos["astronaut"])]]},
             {"setFiles": ["#depth", [str(depth_maps["ramp16"])]]}, {"waitRenders": 1},
             {"download": ["#save", str(tmp_path / "default.png")]}, {"text": "#warning", "as": "warning"},
             {"tap": ["#after", 128.5 / 512, 384.5 / 512]}, {"waitRenders": 2},
             {"eval": "window.bokehPage.focus", "as": "focus"},
             {"download": ["#save", str(tmp_path / "tap.png")]},
             {"fill": ["#aperture", "35"]}, {"waitRenders": 3},
             {"download": ["#save", str(tmp_path / "aperture.png")]},
             {"text": "#accelerator-line", "as": "line"}, {"eval": "window.bokehPage.error", "as": "error"}]
    values = finish(drive(steps, tmp_path), site)
    assert values["error"] is None
    assert "stretched to fit" in values["warning"]          # the 320x200 map on a square photo (R10)
    assert values["line"].startswith("Ran on WebGPU" if accelerator == "webgpu" else "Ran on wasm"), values["line"]
    for name, args in [("default", []), ("tap", ["--focus", "128,384"]),
                       ("aperture", ["--focus", "128,384", "--aperture", "35"])]:
        out = tmp_path / f"py_{name}"
        python_render(photos["astronaut"], "-m", model, "--depth", depth_maps["ramp16"], *args, out=out)
        check_parity(tmp_path / f"{name}.png", out / "astronaut.png", f"render track, {name}, {accelerator}")


@pytest.mark.parametrize("accelerator", ["wasm", "auto"])
def test_portrait_track_matches_bokeh_render(site, web_models, photos, tmp_path, accelerator):
    """On wasm; and under auto on WebGPU, within its default limits since the export broke the
    compositing chain that needed 17 sampled textures (export/gpu_rewrite.py)."""
    model = model_file(web_models, "portrait")
    steps = [{"goto": page_url(site, model.name, accelerator)}, {"waitState": ["ready", "error"]},
             {"setFiles": ["#photo", [str(photos["astronaut"])]]}, {"waitRenders": 1},
             {"download": ["#save", str(tmp_path / "default.png")]},
             {"fill": ["#aperture", "30"]}, {"waitRenders": 2},
             {"download": ["#save", str(tmp_path / "aperture.png")]},
             {"text": "#accelerator-line", "as": "line"}, {"eval": "window.bokehPage.error", "as": "error"},
             {"eval": "window.bokehPage.result.personShare", "as": "share"}]
    values = finish(drive(steps, tmp_path), site)
    assert values["error"] is None and values["share"] > 0.01
    if accelerator == "auto":
        assert values["line"].startswith("Ran on WebGPU") and "segmenter on WebGPU" in values["line"], values["line"]
    for name, args in [("default", []), ("aperture", ["--aperture", "30"])]:
        out = tmp_path / f"py_{name}"
        python_render(photos["astronaut"], "--portrait", "--models", web_models, *args, out=out)
        check_parity(tmp_path / f"{name}.png", out / "astronaut.png", f"portrait track, {name}, {accelerator}")


def error_of(values: dict) -> str:
    assert values["state"] == "error", values
    assert values["visible"], "the message is not shown"
    assert values["controls"] > 0, "the page went blank"
    return values["message"]


ERROR_PROBES = [{"eval": "document.body.dataset.state", "as": "state"},
                {"eval": "!document.getElementById('error').hidden", "as": "visible"},
                {"eval": "document.querySelectorAll('select, input, button').length", "as": "controls"},
                {"text": "#error", "as": "message"}]


@pytest.fixture(scope="module")
def unbroken(portrait, tmp_path_factory) -> Path:
    """The portrait model with its shader break taken out (17 sampled textures on WebGPU, over
    the default limit of 16), its sidecar saying the export's WebGPU check found it wrong."""
    import json

    model = without_shader_breaks(next(portrait.glob("bokeh_portrait_*.tflite")), tmp_path_factory.mktemp("unbroken"))
    sidecar = json.loads(model.with_suffix(".json").read_text())
    sidecar["webgpu"] = {"ran": True, "ok": False, "psnr": None, "reason": f"WebGPU failed compiling {model.name}: "
                         "The number of sampled textures (17) in the Compute stage exceeds the maximum per-stage limit "
                         "(16)."}
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    return model


def test_webgpu_failure_is_one_clear_message(unbroken, photos, tmp_path):
    """accelerator=webgpu (no fallback) on a model over WebGPU's default limit; under auto the
    page does not even try WebGPU when the sidecar says it failed there, and says why."""
    with serve(unbroken.parent) as base:
        steps = [{"goto": page_url(base, unbroken.name, "webgpu")}, {"waitState": ["error", "ready"]}, *ERROR_PROBES,
                 {"setFiles": ["#photo", [str(photos["astronaut"])]]}, {"waitState": ["error"]},
                 {"text": "#error", "as": "after_photo"}, {"eval": "window.bokehPage.renders", "as": "renders"},
                 {"goto": page_url(base, unbroken.name, "auto")}, {"waitState": ["ready", "error"]},
                 {"text": "#accelerator-line", "as": "auto_line"}]
        values = finish(drive(steps, tmp_path), base)
    message = error_of(values)
    assert message.startswith("WebGPU failed compiling bokeh_portrait_"), message
    assert "sampled textures (17)" in message and "no fallback" in message
    assert "\n" not in message
    # A photo chosen after it gets the same message, not a blank result.
    assert values["after_photo"] == message and values["renders"] == 0
    assert "Not WebGPU: the export found it wrong on WebGPU: WebGPU failed compiling" in values["auto_line"], \
        values["auto_line"]


def test_webgpu_asked_for_a_model_not_verified_on_a_gpu_is_refused_with_the_front_ends_line(tiny_export,
                                                                                              tmp_path):
    """F9 (docs/contract.md): the cpu track is not for the GPU; the page refuses it on WebGPU with
    the line bokeh-render and bokeh-native give, and `auto` keeps it on wasm."""
    from bokehlite.contract import gpu_refusal

    model, report = tiny_export("cpu")
    folder = copy_models(tmp_path / "cpu", model)
    with serve(folder) as base:
        steps = [{"goto": page_url(base, model.name, "webgpu")}, {"waitState": ["error", "ready"]}, *ERROR_PROBES]
        values = finish(drive(steps, tmp_path), base)
    assert error_of(values) == f"{model.name}: {gpu_refusal(report)}"


def test_text_file_as_photo_is_one_clear_message(site, web_models, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    model = model_file(web_models, "gpu")
    steps = [{"goto": page_url(site, model.name, "wasm")}, {"waitState": ["ready"]},
             {"setFiles": ["#photo", [str(text)]]}, {"waitState": ["error"]}, *ERROR_PROBES]
    message = error_of(finish(drive(steps, tmp_path), site))
    assert message == "notes.txt is not a photo this browser can decode (PNG, JPEG, WebP, ...)"


def test_model_without_contract_is_one_clear_message(web_models, tmp_path):
    from bokehlite.tflite_metadata import without_metadata

    model = model_file(web_models, "gpu")
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / model.name).write_bytes(without_metadata(model.read_bytes()))
    with serve(folder) as base:
        steps = [{"goto": page_url(base, model.name, "wasm")}, {"waitState": ["error", "ready"]}, *ERROR_PROBES]
        message = error_of(finish(drive(steps, tmp_path), base))
    assert message.startswith(f"{model.name} has no contract: no sidecar JSON beside it, and the model carries no "
                              "embedded contract"), message


def test_lone_model_reads_its_embedded_contract(web_models, photos, tmp_path):
    """A .tflite without its sidecar renders: the contract comes from the model's metadata buffer."""
    model = model_file(web_models, "gpu")
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy2(model, folder / model.name)
    with serve(folder) as base:
        steps = [{"goto": page_url(base, model.name, "wasm")}, {"waitState": ["ready", "error"]},
                 {"setFiles": ["#photo", [str(photos["odd"])]]}, {"waitRenders": 1},
                 {"eval": "window.bokehPage.pipeline.info.contract", "as": "contract"},
                 {"download": ["#save", str(tmp_path / "odd.png")]}]
        values = finish(drive(steps, tmp_path), base)
    assert values["contract"] == "embedded"
    ref = python_render(photos["odd"], "-m", model, out=tmp_path / "py") / "odd.png"
    check_parity(tmp_path / "odd.png", ref, "gpu track, embedded contract, wasm")


def test_phone_touch_and_screenshot(site, web_models, photos, depth_maps, tmp_path):
    """A phone-sized touch screen: tap to focus with a finger; the screenshot for the docs."""
    render, portrait = model_file(web_models, "render"), model_file(web_models, "portrait")
    shot = tmp_path / "web_phone.png"
    steps = [{"goto": page_url(site, render.name, "auto")}, {"waitState": ["ready", "error"]},
             {"setFiles": ["#photo", [str(photos["astronaut"])]]},
             {"setFiles": ["#depth", [str(depth_maps["ramp16"])]]}, {"waitRenders": 1},
             {"tap": ["#after", 0.5, 0.2]}, {"waitRenders": 2},
             {"eval": "window.bokehPage.focus", "as": "focus"},
             {"eval": "!document.getElementById('marker').hidden", "as": "marker"},
             {"eval": "document.documentElement.scrollWidth <= 390", "as": "fits"},
             {"goto": page_url(site, portrait.name, "auto")}, {"waitState": ["ready", "error"]},
             {"setFiles": ["#photo", [str(photos["astronaut"])]]}, {"waitRenders": 1},
             {"fill": ["#compare", "35"]}, {"screenshot": str(shot), "fullPage": True}]
    values = finish(drive(steps, tmp_path, **PHONE), site)
    assert values["marker"] and values["fits"], values
    assert values["focus"] is not None and 0 <= values["focus"] <= 1
    image = read(shot)
    assert image.shape[1] == 390 * 2
    target = os.environ.get("BOKEHLITE_WEB_SCREENSHOT")
    if target:
        shutil.copy2(shot, target)
