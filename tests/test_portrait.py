"""Portrait mode on real photos: the segmenter obtained as a user would, the person kept sharp,
and the reduced-resolution portrait model held to the full-resolution exact render (issue 21).

The segmenter comes through `export-tflite --track portrait`, which takes it from the
mediapipe wheel on PyPI (or the cache): where it cannot be had, these tests fail with
that reason; they do not skip.
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
import skimage.data

from bokehlite.export.segmenter import SHA256
from bokehlite.files import sha256

SIZE = "256x384"


def export(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", "portrait",
                           "--input-size", SIZE, *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def render(*args):
    return subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Path:
    """export-tflite --track portrait, with --require-gpu where there is a GPU adapter: then the
    model must be verified on the accelerator or the export fails (one export for both)."""
    from bokehlite.export.accelerator import adapter_or_reason
    adapter, _ = adapter_or_reason()
    out = tmp_path_factory.mktemp("portrait")
    proc = export(*(["--require-gpu"] if adapter else []), "-o", str(out))
    assert proc.returncode == 0, f"export-tflite --track portrait failed: {proc.stderr[-1500:]}"
    return out


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "rocket"):
        cv2.imwrite(str(folder / f"{name}.png"), getattr(skimage.data, name)()[..., ::-1])
    return folder


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def gradient_energy(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float(np.sum(cv2.Sobel(grey, cv2.CV_64F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_64F, 0, 1) ** 2))


def test_portrait_sidecar_is_the_models_own_and_names_the_segmenter_its_source_and_licence(pipeline):
    spec = json.loads((pipeline / f"bokeh_portrait_{SIZE}.json").read_text())
    assert spec["format"] == "bokehlite-tflite" and spec["track"] == "portrait" and spec["render_scale"] == 2
    assert sha256(pipeline / f"bokeh_portrait_{SIZE}.tflite") == spec["sha256"]
    assert [i["name"] for i in spec["inputs"]] == ["image", "person", "aperture"]
    assert spec["inputs"][1]["shape"] == [1, 256, 256, 1]
    assert [o["name"] for o in spec["outputs"]] == ["blur", "defocus", "disparity", "person_share"]
    assert spec["postprocess"]["source"] == "blur" and spec["postprocess"]["defocus"] == "defocus"
    assert spec["gpu_check"]["compatible"] and spec["fp16_arithmetic_psnr"] >= 40.0
    seg = spec["segmenter"]
    assert seg["licence"] == "Apache-2.0" and seg["source"]["package"] == "mediapipe==0.10.21"
    assert seg["original_sha256"] == SHA256 and sha256(pipeline / seg["file"]) == seg["sha256"]
    assert seg["input"]["shape"] == [1, 256, 256, 3] and seg["output"]["name"] == "person"
    assert "weighted by" in spec["portrait"]["focus"]


def test_astronaut_face_stays_sharp_and_flag_and_shuttle_blur(pipeline, photos, tmp_path):
    out = tmp_path / "out"
    proc = render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", out, "--save-depth")
    assert proc.returncode == 0, proc.stderr
    before, after = cv2.imread(str(photos / "astronaut.png")), cv2.imread(str(out / "astronaut.png"))
    face = (slice(70, 180), slice(175, 275))
    assert psnr(before[face], after[face]) >= 30.0         # the box holds wall too; in-focus pixels: 35 dB below
    for name, region in {"flag": (slice(10, 200), slice(0, 70)), "shuttle": (slice(20, 250), slice(380, 460))}.items():
        kept = gradient_energy(after[region]) / gradient_energy(before[region])
        assert kept < 0.5, (name, kept)
    depth = cv2.imread(str(out / "astronaut_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (512, 512)
    assert depth[face].mean() > 0.9 * 65535 and depth[10:200, 0:70].mean() < 0.1 * 65535


def test_an_old_pipeline_sidecar_is_refused_with_one_line(photos, tmp_path):
    old = {"format": "bokehlite-portrait", "version": 1, "input_size": [256, 384],
           "segmenter": {"file": "bokeh_portrait_segmenter.tflite", "sha256": "0" * 64},
           "render": {"file": "bokeh_render_256x384.tflite", "sha256": "0" * 64}}
    (tmp_path / "bokeh_portrait_256x384.json").write_text(json.dumps(old))
    proc = render(photos / "astronaut.png", "--portrait", "--models", tmp_path, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "older portrait pipeline" in proc.stderr and "export-tflite --track portrait" in proc.stderr


@pytest.mark.parametrize("name", ["rocket.png", "rocket.jpg"])
def test_a_photo_without_a_person_is_left_unchanged_byte_for_byte_with_one_warning(pipeline, photos, tmp_path,
                                                                                   name):
    source = photos / name
    if not source.exists():         # a JPEG: decoding and encoding it again would change its bytes
        cv2.imwrite(str(source), cv2.imread(str(photos / "rocket.png")), [cv2.IMWRITE_JPEG_QUALITY, 80])
    proc = render(source, "--portrait", "--models", pipeline, "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "no person found" in warnings[0]
    assert str(source) in warnings[0], "in a batch the warning must name the photo"
    assert (tmp_path / name).read_bytes() == source.read_bytes()


def test_save_depth_writes_no_depth_map_for_a_photo_left_unchanged(pipeline, photos, tmp_path):
    proc = render(photos / "rocket.png", photos / "astronaut.png", "--portrait", "--models", pipeline,
                  "-o", tmp_path / "out", "--save-depth")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astronaut.png", "astronaut_depth.png",
                                                                   "rocket.png"]


def test_save_depth_names_are_collision_checked_and_never_rendered_again(pipeline, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    astronaut = cv2.imread(str(photos / "astronaut.png"))
    cv2.imwrite(str(folder / "a.png"), astronaut)
    cv2.imwrite(str(folder / "a_depth.png"), astronaut)       # a photo that happens to have that name
    proc = render(folder, "--portrait", "--models", pipeline, "-o", tmp_path / "out", "--save-depth")
    assert proc.returncode == 2
    assert "already written for" in proc.stderr and "a_depth.png" in proc.stderr
    (folder / "a_depth.png").unlink()
    for _ in range(2):                  # the second run must not take the first one's depth map as a photo
        proc = render(folder, "--portrait", "--models", pipeline, "-o", folder, "--suffix", "_p", "--save-depth")
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a_p.png", "a_p_depth.png"]
        assert "rendered 1 of 1" in proc.stderr


@pytest.mark.parametrize("extra, message", [
    (["--depth", "d.png"], "--depth does not go with --portrait"),
    (["--focus", "3,4"], "--focus does not go with --portrait"),
    (["--save-depth"], None),
])
def test_portrait_flag_combinations(pipeline, photos, tmp_path, extra, message):
    args = [photos / "astronaut.png", "-o", tmp_path, *extra]
    if message is None:        # --save-depth alone, without --portrait
        message = "--save-depth goes with --portrait"
    else:
        args += ["--portrait", "--models", pipeline]
    proc = render(*args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_pipeline_in_the_folder_says_how_to_make_one(photos, tmp_path):
    proc = render(photos / "astronaut.png", "--portrait", "--models", tmp_path, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "export-tflite --track portrait" in proc.stderr


def test_offline_without_a_cached_segmenter_is_one_line_and_exit_2(tmp_path):
    # pip with no index it can reach: no configuration files, no local wheel folders, an index on a closed port.
    offline = {"BOKEHLITE_HOME": str(tmp_path / "home"), "PIP_CONFIG_FILE": os.devnull,
               "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "",
               "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1"}
    proc = export("-o", str(tmp_path / "out"), env=offline)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "--segmenter FILE" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.tflite"))


def test_a_wrong_segmenter_file_is_refused(pipeline, tmp_path):
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes((pipeline / f"bokeh_portrait_{SIZE}.tflite").read_bytes())
    proc = export("-o", str(tmp_path / "out"), "--segmenter", str(wrong))
    assert proc.returncode == 2 and "not the selfie segmentation model" in proc.stderr


def test_no_xnnpack_renders_the_same_portrait(pipeline, photos, tmp_path):
    """--no-xnnpack applies to the portrait model: the segmenter's custom op
    (Convolution2DTransposeBias) exists only in XNNPACK, so it keeps XNNPACK."""
    on, off = tmp_path / "on", tmp_path / "off"
    assert render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", on).returncode == 0
    proc = render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", off, "--no-xnnpack")
    assert proc.returncode == 0, proc.stderr
    assert psnr(cv2.imread(str(on / "astronaut.png")), cv2.imread(str(off / "astronaut.png"))) > 40.0


def test_portrait_export_with_require_gpu_verifies_its_model_on_the_accelerator(gpu_adapter, pipeline):
    sidecar = json.loads((pipeline / f"bokeh_portrait_{SIZE}.json").read_text())
    assert sidecar["gpu_accelerator"]["verified"] is True and sidecar["gpu_accelerator"]["fully_accelerated"]
    assert sidecar["gpu_accelerator"]["psnr_vs_pytorch"] >= 40.0


# ------------------------------------------- quality: reduced resolution vs the exact render


@pytest.fixture(scope="module")
def astronaut_run(pipeline):
    """The real segmenter and the real exported portrait model (LiteRT) on the astronaut, and the
    PyTorch portrait model's focus for the same inputs (the focus is not a model output)."""
    import torch
    from bokehlite.export.track_model import portrait_net
    from bokehlite.runtime.portrait import PortraitRenderer
    renderer = PortraitRenderer(pipeline / f"bokeh_portrait_{SIZE}.json")
    x, seg_input, aperture, box = renderer.prepare(skimage.data.astronaut(), 20.0)
    person = renderer.segmenter(image=seg_input)["person"]
    out = renderer.renderer.run_model(x, person=person, aperture=aperture)
    net = portrait_net(renderer.renderer.input_size).eval()
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))    # noqa: E731
    with torch.no_grad():
        mine = net(nchw(x), nchw(person), torch.from_numpy(aperture))
    return x, person, aperture, out, mine, net


def _psnr01(a, b, where=None):
    err = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    err = err.mean(axis=-1) if err.ndim == 3 else err
    return 10 * np.log10(1.0 / np.mean(err if where is None else err[where]))


def test_half_resolution_portrait_is_within_36_db_of_the_full_resolution_exact_render(pipeline):
    """The portrait model's render against the exact full-resolution render of its own disparity
    and focus, on the astronaut with the real segmenter's mask, at 256x384 and the default
    aperture: the default 1024x1536 scaled by a quarter, where the small layers are the largest
    share of the picture (36.5 dB here; 512x768 gives more, and costs 15 times the exact render's
    time). In PyTorch: the export's own gate holds the .tflite to this network (61.9 dB at
    1024x1536)."""
    import torch
    from bokehlite.export.track_model import portrait_net
    from bokehlite.model.depth_render import DepthRenderNet
    from bokehlite.runtime import backends
    from bokehlite.runtime.fit import Letterbox
    from bokehlite.contract import DEFAULT_APERTURE
    size = (256, 384)
    segmenter = backends.open_model(pipeline / "bokeh_portrait_segmenter.tflite", "litert")
    box = Letterbox.fit((512, 512), size)
    x = box.to_model(skimage.data.astronaut(), 255.0)
    person = segmenter(image=Letterbox.fit(size, (256, 256)).to_model(x[0], 1.0))["person"]
    aperture = torch.tensor([[DEFAULT_APERTURE * box.scale]])
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))    # noqa: E731
    with torch.no_grad():
        mine = portrait_net(size).eval()(nchw(x), nchw(person), aperture)
        exact = DepthRenderNet(render_mode="exact")(nchw(x), mine["disparity"], mine["focus"], aperture)["bokeh"]
    bokeh, reference = (t[0].numpy().transpose(1, 2, 0) for t in (mine["bokeh"], exact))
    assert _psnr01(bokeh, reference) >= 36.0
    radius = mine["radius"][0, 0].numpy()
    gy, gx = np.gradient(mine["disparity"][0, 0].numpy() * float(aperture))
    edge = cv2.dilate((np.hypot(gx, gy) > 0.5).astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    assert 0.05 < edge.mean() < 0.8
    assert _psnr01(bokeh, reference, edge) >= 32.0
    in_focus = radius < 0.5
    assert in_focus.mean() > 0.1
    assert _psnr01(bokeh, x[0], in_focus) >= 35.0


def test_the_guided_filter_puts_the_masks_edges_on_the_photos_edges(pipeline):
    """At the default model size a segmenter pixel is 6 model pixels: the raw mask is blocky.
    Refined, where its gradient is strong the photo's is too (correlation of the magnitudes)."""
    import torch
    from bokehlite.export.track_model import portrait_net
    from bokehlite.runtime import backends
    from bokehlite.runtime.fit import Letterbox
    size = (1024, 1536)
    segmenter = backends.open_model(pipeline / "bokeh_portrait_segmenter.tflite", "litert")
    x = Letterbox.fit((512, 512), size).to_model(skimage.data.astronaut(), 255.0)
    person = segmenter(image=Letterbox.fit(size, (256, 256)).to_model(x[0], 1.0))["person"]
    net = portrait_net(size).eval()
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))    # noqa: E731
    with torch.no_grad():
        raw = net.unletterbox(nchw(person), size)[0, 0].numpy().astype(np.float64)
        refined = net.refine(nchw(x), nchw(person))[0, 0].numpy().astype(np.float64)
    grey = cv2.cvtColor((x[0] * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    magnitude = lambda a: np.hypot(cv2.Sobel(a, cv2.CV_64F, 1, 0), cv2.Sobel(a, cv2.CV_64F, 0, 1)).ravel()  # noqa: E731
    agreement = lambda m: np.corrcoef(magnitude(m), magnitude(grey))[0, 1]         # noqa: E731
    assert agreement(refined) > 1.5 * agreement(raw)
    assert ((refined > 0.5) != (raw > 0.5)).mean() < 0.05              # refined, not redrawn


def test_the_graph_inverts_the_letterbox_as_the_runtime_samples_it(astronaut_run):
    import torch
    from bokehlite.runtime.fit import Letterbox
    _, person, _, _, _, net = astronaut_run
    mask = person[0, :, :, 0]
    graph = net.unletterbox(torch.from_numpy(person.transpose(0, 3, 1, 2).copy()), net.size)[0, 0].numpy()
    box = Letterbox.fit(net.size, mask.shape)
    host = box.sample(mask, slice(0, net.size[0]), slice(0, net.size[1]))
    inner = (slice(1, -1), slice(1, -1))          # the graph clamps the outermost half pixel to the box
    assert np.abs(graph[inner] - host[inner]).max() < 0.02
    assert np.abs(graph - host).mean() < 2e-3
