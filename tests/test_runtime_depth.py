"""Depth-guided rendering (render track) on a real tiny export: focus, aperture, depth files."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.runtime.variants import variant

from bokehlite.model.synthetic import plane_scene
from bokehlite.runtime import BokehRenderer, DepthError, ModelError, centre_focus, focus_at, load_disparity
from bokehlite.runtime.cli import main
from bokehlite.runtime.depth import read_depth, to_disparity

H, W = 192, 288                     # 1.5x the tiny model's 128x192: the model sees less detail
BAND = W // 3                       # plane_scene: three planes side by side, disparity 0.2 / 0.5 / 0.8
MARGIN = 24                         # px kept away from plane edges and photo borders
CENTRES = [(BAND * b + BAND // 2, H // 2) for b in range(3)]     # (X, Y) inside each plane


@pytest.fixture(scope="session")
def render_model(tiny_export):
    return tiny_export("render")[0]


@pytest.fixture(scope="session")
def renderer(render_model):
    return BokehRenderer(render_model)


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> dict:
    """plane_scene as files: an 8-bit photo, its disparity as 16-bit PNG and .npy, and as depth."""
    folder = tmp_path_factory.mktemp("scene")
    image, disparity = plane_scene(H, W)
    photo = np.rint(image * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "photo.png"), photo[:, :, ::-1])
    cv2.imwrite(str(folder / "disp16.png"), np.rint(disparity * 65535).astype(np.uint16))
    np.save(folder / "disp.npy", disparity)
    np.save(folder / "depth.npy", 1.0 / disparity)          # metric-like: larger = farther
    return {"dir": folder, "photo": photo, "disparity": disparity}


def run(args, capsys) -> tuple[int, str, list[str]]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def plane(image: np.ndarray, band: int, bands: int = 3) -> np.ndarray:
    """The interior of one plane, MARGIN px away from its edges and the photo's borders."""
    width = image.shape[1] // bands
    return image[MARGIN:-MARGIN, band * width + MARGIN:(band + 1) * width - MARGIN]


def normalised(disparity: np.ndarray) -> np.ndarray:
    return ((disparity - disparity.min()) / (disparity.max() - disparity.min())).astype(np.float32)


@pytest.mark.parametrize("depth_file, focus_args, sharp", [
    ("disp16.png", ["--focus", "{1}"], 1),                 # tap on the middle plane
    ("disp16.png", ["--focus", "{0}"], 0),                 # tap on the far plane
    ("disp.npy", ["--focus-disparity", "1.0"], 2),         # the nearest plane, by value
    ("disp.npy", [], 1),                                   # default: the centre of the photo
])
def test_focused_plane_stays_sharp_at_40_db_and_the_others_blur(render_model, scene, tmp_path, capsys,
                                                                depth_file, focus_args, sharp):
    points = [f"{x},{y}" for x, y in CENTRES]
    args = [a.format(*points) for a in focus_args]
    code, _, err = run([scene["dir"] / "photo.png", "--depth", scene["dir"] / depth_file, *args,
                        "--aperture", 20, "-m", render_model, "-o", tmp_path], capsys)
    assert code == 0 and len(err) == 1 and "rendered 1 of 1" in err[0], err
    result = cv2.imread(str(tmp_path / "photo.png"))[:, :, ::-1].astype(np.float64) / 255
    photo = scene["photo"] / 255
    for band in range(3):
        quality = psnr(plane(result, band), plane(photo, band))
        if band == sharp:
            assert quality >= 40.0, (band, quality)
        else:                                               # |d - d_f| >= 0.5: radius >= 10 px
            assert quality < 30.0, (band, quality)


def test_in_focus_pixels_keep_the_photo_detail_the_model_cannot_see(renderer, scene):
    # Eq. 9 at full resolution: the middle plane comes from the photo itself. The model's own
    # output, upsampled, has lost the fine texture, so the check below can fail.
    photo, disparity = scene["photo"], normalised(scene["disparity"])
    result = renderer.render(photo, disparity, focus=0.5, aperture=20)
    assert psnr(plane(result / 255, 1), plane(photo / 255, 1)) >= 40.0
    x, box = renderer.prepare(photo)
    low = renderer.run_model(x, **renderer.prepare_depth(box, disparity, 0.5, 20))["bokeh"][0]
    upsampled = cv2.resize(low[box.top:box.top + box.height, box.left:box.left + box.width], (W, H),
                           interpolation=cv2.INTER_LINEAR)
    assert psnr(plane(upsampled, 1), plane(photo / 255, 1)) < 35.0


def test_disparity_is_letterboxed_with_a_portrait_photo(renderer):
    image, disparity = plane_scene(288, 192)       # pillarboxed into 128x192: padding left and right
    result = renderer.render(image, normalised(disparity), focus=0.5, aperture=20)
    assert psnr(plane(result, 1), plane(image, 1)) >= 40.0
    assert psnr(plane(result, 0), plane(image, 0)) < 30.0 and psnr(plane(result, 2), plane(image, 2)) < 30.0


def blur_radius(renderer, scale: int, aperture: float) -> float:
    """Measured bokeh radius of the far plane's highlight, in pixels of the 1x photo.

    The same scene with and without its point highlights: the difference is the highlight's
    bokeh disk, and a uniform disk of radius R has a mean squared distance of R^2 / 2.
    """
    image, disparity = plane_scene(H, W)
    flat, _ = plane_scene(H, W, highlights=False)
    up = lambda a: np.repeat(np.repeat(a, scale, 0), scale, 1)       # noqa: E731  same scene, scale x
    d = up(normalised(disparity))
    disk = (renderer.render(up(image), d, focus=0.5, aperture=aperture)
            - renderer.render(up(flat), d, focus=0.5, aperture=aperture)).sum(axis=-1)
    x0, y0 = (CENTRES[0][0] + 0.5) * scale - 0.5, (H // 4 + 0.5) * scale - 0.5
    y, x = np.mgrid[0:H * scale, 0:W * scale]
    window = (np.abs(y - y0) < 30 * scale) & (np.abs(x - x0) < 30 * scale)
    weight = np.clip(disk, 0, None) * window
    return float(np.sqrt(2 * (weight * ((y - y0) ** 2 + (x - x0) ** 2)).sum() / weight.sum()) / scale)


def test_aperture_is_in_photo_pixels_so_a_2x_photo_with_2x_aperture_looks_the_same(renderer):
    one = blur_radius(renderer, 1, 20.0)
    assert one == pytest.approx(20.0 * 0.5, rel=0.15)        # R = A |d - d_f|, far plane at 0.5
    assert blur_radius(renderer, 2, 40.0) == pytest.approx(one, rel=0.05)
    assert blur_radius(renderer, 2, 20.0) == pytest.approx(one / 2, rel=0.15)   # not scaled: half
    # And the pictures agree: the 2x render downscaled against the 1x render, defocused planes.
    image, disparity = plane_scene(H, W)
    d = normalised(disparity)
    small = renderer.render(image, d, focus=0.5, aperture=20.0)
    big = renderer.render(np.repeat(np.repeat(image, 2, 0), 2, 1), np.repeat(np.repeat(d, 2, 0), 2, 1),
                          focus=0.5, aperture=40.0)
    down = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    assert min(psnr(plane(down, b), plane(small, b)) for b in (0, 2)) >= 45.0


def test_depth_is_depth_inverts_metric_depth(render_model, scene, tmp_path, capsys):
    # depth.npy = 1 / disparity. Focus on the largest normalised value: the nearest plane
    # (right) when inverted; read as disparity instead, the largest value is the far plane.
    photo = scene["photo"] / 255
    sharp = {}
    for flag in ([], ["--depth-is-depth"]):
        out = tmp_path / ("inverted" if flag else "raw")
        code, _, err = run([scene["dir"] / "photo.png", "--depth", scene["dir"] / "depth.npy", *flag,
                            "--focus-disparity", 1, "-m", render_model, "-o", out], capsys)
        assert code == 0, err
        result = cv2.imread(str(out / "photo.png"))[:, :, ::-1] / 255
        sharp[bool(flag)] = [b for b in range(3) if psnr(plane(result, b), plane(photo, b)) >= 40.0]
    assert sharp == {True: [2], False: [0]}
    inverted, _ = to_disparity(read_depth(scene["dir"] / "depth.npy"), is_depth=True)
    np.testing.assert_allclose(inverted, normalised(scene["disparity"]), atol=1e-6)


def test_depth_files_16_bit_png_and_npy_normalise_alike(scene):
    png, _ = load_disparity(scene["dir"] / "disp16.png", (H, W))
    npy, _ = load_disparity(scene["dir"] / "disp.npy", (H, W))
    np.testing.assert_allclose(png, npy, atol=1e-4)
    assert (png.min(), png.max()) == (0.0, 1.0)


@pytest.mark.parametrize("case, code, fragment", [
    ("nan-laden", 0, "NaN or infinite; filled from the nearest valid pixel"),
    ("wrong-ratio", 0, "aspect ratio"),
    ("constant", 0, "constant"),
    ("all-nan", 2, "no valid values"),
    ("missing", 2, "no such file"),
    ("colour", 2, "colour image"),
    ("3-d", 2, "expected a 2-D array"),
    ("garbage", 2, "not a .npy array or an image"),
])
def test_bad_depth_maps_warn_once_or_fail_in_one_line(render_model, scene, tmp_path, capsys,
                                                      case, code, fragment):
    disparity = scene["disparity"].copy()
    path = tmp_path / f"{case}.npy"
    if case == "nan-laden":
        disparity[40:90, 100:160] = np.nan
        disparity[0, :] = np.inf
        np.save(path, disparity)
    elif case == "wrong-ratio":
        np.save(path, cv2.resize(disparity, (W, H * 3 // 4), interpolation=cv2.INTER_NEAREST))
    elif case == "constant":
        np.save(path, np.full((H, W), 7.0))
    elif case == "all-nan":
        np.save(path, np.full((H, W), np.nan))
    elif case == "colour":
        path = tmp_path / "colour.png"
        cv2.imwrite(str(path), np.dstack([disparity * 255, disparity * 100, disparity * 50]).astype(np.uint8))
    elif case == "3-d":
        np.save(path, np.dstack([disparity] * 3))
    elif case == "garbage":
        path.write_bytes(b"not a depth map\n")
    out = tmp_path / "out"
    got, stdout, err = run([scene["dir"] / "photo.png", "--depth", path, "-m", render_model, "-o", out], capsys)
    assert got == code, err
    if code == 0:
        warnings = [line for line in err if line.startswith("bokeh-render: warning: ")]
        assert len(warnings) == 1 and len(err) == 2 and fragment in warnings[0] and str(path) in warnings[0]
        assert cv2.imread(str(out / "photo.png")).shape == (H, W, 3)
    else:
        assert len(err) == 1 and fragment in err[0] and str(path) in err[0] and stdout == ""
        assert not out.exists() or list(out.iterdir()) == []


def test_nan_holes_take_the_surrounding_plane_and_focus_still_works(render_model, scene, tmp_path, capsys):
    disparity = scene["disparity"].copy()
    disparity[60:130, 130:160] = np.nan                      # a hole inside the middle plane
    np.save(tmp_path / "holes.npy", disparity)
    code, stdout, err = run([scene["dir"] / "photo.png", "--depth", tmp_path / "holes.npy", "--focus",
                             "{},{}".format(*CENTRES[1]), "--json", "-m", render_model, "-o", tmp_path / "out"],
                            capsys)
    assert code == 0
    report = json.loads(stdout)
    assert report["files"][0]["focus_disparity"] == pytest.approx(0.5, abs=1e-4)
    assert "NaN" in report["files"][0]["warning"] and report["depth"]["focus"] == {"point": list(CENTRES[1])}
    result = cv2.imread(str(tmp_path / "out" / "photo.png"))[:, :, ::-1] / 255
    assert psnr(plane(result, 1), plane(scene["photo"] / 255, 1)) >= 40.0


@pytest.mark.parametrize("args, fragment", [
    (["--depth", "{disp}", "-m", "{gpu}"], "--depth needs a depth-guided model"),
    (["-m", "{render}"], "give the photo's disparity map with --depth"),
    (["--focus", "10,10", "-m", "{render}"], "--focus goes with --depth"),
    (["--aperture", "30", "-m", "{gpu}"], "--aperture goes with --depth"),
    (["--depth", "{disp}", "--focus", "288,10", "-m", "{render}"], "focus point 288,10 is outside the 288x192"),
    (["--depth", "{disp}", "--focus", "5,-1", "-m", "{render}"], "expected X,Y pixel coordinates"),
    (["--depth", "{disp}", "--focus", "5,5", "--focus-disparity", "0.5", "-m", "{render}"], "not allowed with"),
    (["--depth", "{disp}", "--focus-disparity", "1.5", "-m", "{render}"], "from 0 to 1"),
    (["--depth", "{disp}", "--aperture", "-3", "-m", "{render}"], "--aperture"),
    (["--depth", "{disp}", "--aperture", "inf", "-m", "{render}"], "finite"),
    (["--depth", "{disp}", "--aperture", "nan", "-m", "{render}"], "finite"),
    (["--depth", "{disp}", "--focus-disparity", "nan", "-m", "{render}"], "finite"),
    # Finite as a double, infinite in the model's float32: over the contract's range.
    (["--depth", "{disp}", "--aperture", "1e39", "-m", "{render}"], "expected aperture in [0, 150]"),
    (["--depth", "{disp}", "--aperture", "151", "-m", "{render}"], "expected aperture in [0, 150]"),
    (["{photo}", "--depth", "{disp}", "-m", "{render}"], "exactly one photo"),
])
def test_depth_flags_that_do_not_fit_the_model_or_photo_are_one_line_and_exit_2(
        render_model, tiny_export, scene, tmp_path, capsys, args, fragment):
    names = {"disp": scene["dir"] / "disp16.png", "gpu": tiny_export("gpu")[0], "render": render_model,
             "photo": scene["dir"] / "photo.png"}
    argv = [scene["dir"] / "photo.png", *(a.format(**names) for a in args), "-o", tmp_path / "out"]
    try:
        code, stdout, err = run(argv, capsys)
    except SystemExit as exc:                      # argparse errors
        code, stdout, err = exc.code, "", capsys.readouterr().err.strip().splitlines()
    assert code == 2 and stdout == "" and len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_render_api_refuses_depth_arguments_that_do_not_fit(renderer, tiny_export, scene):
    photo, disparity = scene["photo"], normalised(scene["disparity"])
    with pytest.raises(DepthError, match="needs the photo's disparity map"):
        renderer.render(photo)
    with pytest.raises(DepthError, match="takes no disparity"):
        BokehRenderer(tiny_export("gpu")[0]).render(photo, disparity)
    with pytest.raises(ValueError, match=r"expected disparity of shape \(192, 288\)"):
        renderer.render(photo, disparity[:100])
    with pytest.raises(ValueError, match=r"disparity values in \[0, 1\]"):
        renderer.render(photo, disparity * 2)
    with pytest.raises(ValueError, match=r"focus in \[0, 1\]"):
        renderer.render(photo, disparity, focus=1.5)
    with pytest.raises(ValueError, match="aperture"):
        renderer.render(photo, disparity, aperture=float("nan"))
    for aperture in (float("inf"), 1e39, 150.5):       # the contract's 100 model pixels is 150 photo pixels here
        with pytest.raises(DepthError, match=r"expected aperture in \[0, 150\] photo pixels"):
            renderer.render(photo, disparity, aperture=aperture)
    assert renderer.render(photo, disparity, aperture=150.0).shape == photo.shape
    with pytest.raises(ValueError, match="takes"):
        renderer.run_model(renderer.prepare(photo)[0])
    result = renderer.render(photo, disparity[:, :, None])            # (H, W, 1) is fine too
    assert result.shape == photo.shape and result.dtype == np.uint8


def test_tap_to_focus_takes_the_window_median_in_photo_coordinates(scene):
    disparity = normalised(scene["disparity"])
    assert focus_at(disparity, *CENTRES[2]) == 1.0
    assert focus_at(disparity, BAND + 2, 50) == 0.5           # 9x9 window: 2 px of the far plane
    assert focus_at(disparity, W - 1, H - 1) == 1.0           # corners are inside
    assert centre_focus(disparity) == 0.5
    with pytest.raises(DepthError, match="outside the 288x192 photo"):
        focus_at(disparity, 10, H)


def test_render_sidecar_must_declare_the_four_inputs(render_model, tiny_export, tmp_path):
    def drop_aperture(s):
        s["inputs"] = [i for i in s["inputs"] if i["name"] != "aperture"]
    with pytest.raises(ModelError, match="the render track takes"):
        BokehRenderer(variant(render_model, tmp_path / "a", drop_aperture))
    rgb_disparity = lambda s: s["inputs"][1].update(shape=[1, 128, 192, 3])     # noqa: E731
    with pytest.raises(ModelError, match=r"input 'disparity' shape"):
        BokehRenderer(variant(render_model, tmp_path / "b", rgb_disparity))
    # A GPU-track model presented as a render-track one: its signature has only 'image'.
    gpu_model = tiny_export("gpu")[0]
    model = variant(render_model, tmp_path / "c", lambda s: s.update(
        sha256=hashlib.sha256(Path(gpu_model).read_bytes()).hexdigest()))
    shutil.copyfile(gpu_model, model)
    with pytest.raises(ModelError, match=r"signature inputs are \['image'\]"):
        BokehRenderer(model)


def test_a_render_whose_file_cannot_be_written_keeps_its_depth_warning(render_model, scene, tmp_path, capsys):
    """The map was repaired (NaN holes), the render ran, the write failed: both lines are said,
    and the JSON report keeps the warning beside the error."""
    disparity = scene["disparity"].copy()
    disparity[60:130, 130:160] = np.nan
    np.save(tmp_path / "holes.npy", disparity)
    (tmp_path / "out" / "photo.png").mkdir(parents=True)          # a folder where the output goes
    code, stdout, err = run([scene["dir"] / "photo.png", "--depth", tmp_path / "holes.npy", "--json",
                             "-m", render_model, "-o", tmp_path / "out"], capsys)
    assert code != 0
    [entry] = json.loads(stdout)["files"]
    assert "NaN" in entry["warning"] and "cannot write" in entry["error"], entry
    assert any(line.startswith("bokeh-render: warning: ") and "NaN" in line for line in err), err
