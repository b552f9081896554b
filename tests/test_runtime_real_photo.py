"""The render track on a real photo with its measured disparity: Middlebury 2014
"Motorcycle" (left view and ground-truth disparity with invalid pixels), which ships
inside scikit-image's wheel, so nothing is downloaded."""
from __future__ import annotations

import importlib.resources

import cv2
import numpy as np
import pytest

from bokehlite.runtime import focus_at, load_disparity
from bokehlite.runtime.cli import main

FOCUS_XY = (420, 200)          # the motorcycle's tank
APERTURE = 40.0


@pytest.fixture(scope="module")
def motorcycle(tmp_path_factory):
    data = importlib.resources.files("skimage") / "data"
    folder = tmp_path_factory.mktemp("motorcycle")
    photo = folder / "motorcycle.png"
    photo.write_bytes((data / "motorcycle_left.png").read_bytes())
    with importlib.resources.as_file(data / "motorcycle_disp.npz") as npz:
        np.save(folder / "disparity.npy", np.load(npz)["arr_0"])
    return photo, folder / "disparity.npy"


@pytest.fixture(scope="module")
def render_512x768(tmp_path_factory):
    """A render-track export at about the photo's size (741x500), as an app would pick. In
    float32: what is tested is the depth mode on a real photo, which the CPU runs the same
    from either precision, and a float32 export skips the two GPU runs (23 s) a float16 one
    makes (the float16 render track on real photos: test_native_parity.py, test_arm64.py)."""
    from bokehlite.export.pipeline import export_track
    from bokehlite.export.plan import ExportPlan
    out = tmp_path_factory.mktemp("render_512x768")
    export_track(ExportPlan.build("render", (512, 768), precision="float32", parity_images=1), out)
    return out / "bokeh_render_512x768_float32.tflite"


def gradient_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    return float(np.mean(np.diff(g, axis=0)[:, :-1] ** 2 + np.diff(g, axis=1)[:-1, :] ** 2))


def test_real_photo_keeps_the_focused_subject_sharp_and_blurs_the_rest(motorcycle, render_512x768, tmp_path,
                                                                      capsys):
    photo_path, depth_path = motorcycle
    model = render_512x768
    code = main([str(photo_path), "--depth", str(depth_path), "--focus", "%d,%d" % FOCUS_XY,
                 "--aperture", str(APERTURE), "-m", str(model), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "NaN or infinite" in err                  # Middlebury marks unknown disparity as inf
    photo = cv2.imread(str(photo_path))
    result = cv2.imread(str(tmp_path / "out" / "motorcycle.png"))
    assert result.shape == photo.shape and result.dtype == photo.dtype

    disparity, _ = load_disparity(depth_path, photo.shape[:2])
    focus = focus_at(disparity, *FOCUS_XY)
    blur_px = APERTURE * np.abs(disparity - focus)
    sharp = cv2.erode((blur_px < 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    far = cv2.erode((blur_px > 10).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert sharp.sum() > 1000 and far.sum() > 20000
    diff = (result.astype(np.float64) - photo) / 255.0
    assert 10 * np.log10(1.0 / np.mean(diff[sharp] ** 2)) >= 40.0
    rows, cols = np.where(far)
    box = np.s_[rows.min():rows.max(), cols.min():cols.max()]
    assert gradient_energy(result[box]) < 0.5 * gradient_energy(photo[box])
