"""The render track at reduced resolution (export-tflite --track render --render-scale 2, issue 21)
on a real photo with its measured disparity: Middlebury 2014 "Motorcycle", from scikit-image's
wheel. The exported model, run by LiteRT, is held to the full-resolution exact render."""
from __future__ import annotations

import importlib.resources
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from bokehlite.model.depth_render import DepthRenderNet
from bokehlite.runtime import BokehRenderer, focus_at, load_disparity

SIZE = (256, 384)
FOCUS_XY = (420, 200)          # the motorcycle's tank
APERTURE = 40.0


@pytest.fixture(scope="module")
def half_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("render_half")
    proc = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", "render", "--render-scale", "2",
                           "--input-size", f"{SIZE[0]}x{SIZE[1]}", "-o", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-1500:]
    return out / f"bokeh_render_{SIZE[0]}x{SIZE[1]}_half.tflite"


@pytest.fixture(scope="module")
def motorcycle(tmp_path_factory):
    data = importlib.resources.files("skimage") / "data"
    folder = tmp_path_factory.mktemp("motorcycle")
    with importlib.resources.as_file(data / "motorcycle_disp.npz") as npz:
        np.save(folder / "disparity.npy", np.load(npz)["arr_0"])
    photo = cv2.imread(str(data / "motorcycle_left.png"))[..., ::-1].copy()
    disparity, _ = load_disparity(folder / "disparity.npy", photo.shape[:2])
    return photo, disparity


def psnr(a, b, where=None):
    err = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean(axis=-1)
    return 10 * np.log10(1.0 / np.mean(err if where is None else err[where]))


def test_half_resolution_sidecar_says_so_and_the_name_does_not_collide(half_model):
    import json
    sidecar = json.loads(half_model.with_suffix(".json").read_text())
    assert sidecar["track"] == "render" and sidecar["render_scale"] == 2
    assert sidecar["gpu_check"]["compatible"] and sidecar["fp16_arithmetic_psnr"] >= 40.0


def test_half_resolution_render_is_within_36_db_of_the_exact_full_resolution_render(half_model, motorcycle):
    photo, disparity = motorcycle
    renderer = BokehRenderer(half_model)
    x, box = renderer.prepare(photo)
    inputs = renderer.prepare_depth(box, disparity, focus=focus_at(disparity, *FOCUS_XY), aperture=APERTURE)
    out = renderer.run_model(x, **inputs)["bokeh"][0]
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))   # noqa: E731
    with torch.no_grad():
        exact = DepthRenderNet(render_mode="exact")(nchw(x), nchw(inputs["disparity"]),
                                                     torch.from_numpy(inputs["focus"]),
                                                     torch.from_numpy(inputs["aperture"]))["bokeh"]
    reference = exact[0].numpy().transpose(1, 2, 0)
    assert psnr(out, reference) >= 36.0
    radius = inputs["disparity"][0, :, :, 0] * float(inputs["aperture"][0, 0])
    gy, gx = np.gradient(radius)
    edge = cv2.dilate((np.hypot(gx, gy) > 1.0).astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    assert 0.05 < edge.mean() < 0.8
    assert psnr(out, reference, edge) >= 32.0
    blur = float(inputs["aperture"][0, 0]) * np.abs(inputs["disparity"][0, :, :, 0] - float(inputs["focus"][0, 0]))
    sharp = blur < 0.5
    assert sharp.mean() > 0.01 and psnr(out, x[0], sharp) >= 35.0


def test_render_scale_goes_with_the_render_track_only(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", "gpu", "--render-scale", "2",
                           "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--render-scale goes with --track render" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
