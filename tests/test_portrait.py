"""Portrait mode on real photos: the segmenter obtained as a user would, the person kept sharp.

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
    out = tmp_path_factory.mktemp("portrait")
    proc = export("-o", str(out))
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


def test_pipeline_sidecar_names_both_models_their_source_and_licence(pipeline):
    spec = json.loads((pipeline / f"bokeh_portrait_{SIZE}.json").read_text())
    seg, rend = spec["segmenter"], spec["render"]
    assert seg["source"]["licence"] == "Apache-2.0" and seg["source"]["package"] == "mediapipe==0.10.21"
    assert seg["original_sha256"] == SHA256 and sha256(pipeline / seg["file"]) == seg["sha256"]
    assert sha256(pipeline / rend["file"]) == rend["sha256"] and rend["file"] == f"bokeh_render_{SIZE}.tflite"


def test_astronaut_face_stays_sharp_and_flag_and_shuttle_blur(pipeline, photos, tmp_path):
    out = tmp_path / "out"
    proc = render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", out, "--save-depth")
    assert proc.returncode == 0, proc.stderr
    before, after = cv2.imread(str(photos / "astronaut.png")), cv2.imread(str(out / "astronaut.png"))
    face = (slice(70, 180), slice(175, 275))
    assert psnr(before[face], after[face]) >= 30.0
    for name, region in {"flag": (slice(10, 200), slice(0, 70)), "shuttle": (slice(20, 250), slice(380, 460))}.items():
        kept = gradient_energy(after[region]) / gradient_energy(before[region])
        assert kept < 0.5, (name, kept)
    depth = cv2.imread(str(out / "astronaut_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (512, 512)
    assert depth[face].mean() > 0.9 * 65535 and depth[10:200, 0:70].mean() < 0.1 * 65535


def test_saved_depth_goes_back_in_with_depth_and_gives_the_same_picture(pipeline, photos, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", first,
                  "--save-depth").returncode == 0
    proc = render(photos / "astronaut.png", "--depth", first / "astronaut_depth.png", "--focus-disparity", "1",
                  "-m", pipeline / f"bokeh_render_{SIZE}.tflite", "-o", second)
    assert proc.returncode == 0, proc.stderr
    assert psnr(cv2.imread(str(first / "astronaut.png")), cv2.imread(str(second / "astronaut.png"))) > 40.0


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
    assert (tmp_path / name).read_bytes() == source.read_bytes()


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
    wrong.write_bytes((pipeline / f"bokeh_render_{SIZE}.tflite").read_bytes())
    proc = export("-o", str(tmp_path / "out"), "--segmenter", str(wrong))
    assert proc.returncode == 2 and "not the selfie segmentation model" in proc.stderr


def test_no_xnnpack_renders_the_same_portrait(pipeline, photos, tmp_path):
    """--no-xnnpack applies to the render model: the segmenter's custom op
    (Convolution2DTransposeBias) exists only in XNNPACK, so it keeps XNNPACK."""
    on, off = tmp_path / "on", tmp_path / "off"
    assert render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", on).returncode == 0
    proc = render(photos / "astronaut.png", "--portrait", "--models", pipeline, "-o", off, "--no-xnnpack")
    assert proc.returncode == 0, proc.stderr
    assert psnr(cv2.imread(str(on / "astronaut.png")), cv2.imread(str(off / "astronaut.png"))) > 40.0


def test_portrait_export_with_require_gpu_verifies_its_render_track_on_the_accelerator(gpu_adapter, tmp_path):
    proc = export("--require-gpu", "--input-size", "128x192", "-o", str(tmp_path))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    sidecar = json.loads((tmp_path / "bokeh_render_128x192.json").read_text())
    assert sidecar["gpu_accelerator"]["verified"] is True
