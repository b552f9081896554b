"""Shared fixtures: real tiny exports and native builds, made once per test run (made_once.py:
also once when pytest-xdist runs the files in several processes)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bokehlite.onednn import cap_isa_for_float16

cap_isa_for_float16()      # before torch is imported: float16 convolutions stall on AVX512-FP16 CPUs

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from made_once import made_once  # noqa: E402
from native_support import JAVA_SRC, PORTRAIT_SIZE, cmake_build, java_tool  # noqa: E402

TINY_SIZES = {"gpu": (128, 192), "cpu": (128, 256), "render": (128, 192)}

# The files that take minutes, longest first. Under xdist (`--dist loadfile
# --no-loadscope-reorder`) a process that runs dry takes the next file in collection order, so
# these start at once, one on each process, and the short files fill in around them; in
# xdist's default order (most tests first) the two processes finished 130 s apart.
LONGEST_FIRST = ("test_export_fullsize.py", "test_arm64.py", "test_portrait.py", "test_export_int8.py",
                 "test_portrait_half_render.py", "test_runtime_real_photo.py", "test_native_parity.py",
                 "test_model_train.py")


def pytest_collection_modifyitems(items):
    """The files of LONGEST_FIRST first, the rest in their usual order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


SLOW_LEFT_OUT = pytest.StashKey[int]()


def pytest_deselected(items):
    if items:
        config = items[0].config
        config.stash[SLOW_LEFT_OUT] = (config.stash.get(SLOW_LEFT_OUT, 0)
                                       + sum(1 for item in items if item.get_closest_marker("slow")))


def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):           # an xdist process: tell the controller
        session.config.workeroutput["slow_left_out"] = session.config.stash.get(SLOW_LEFT_OUT, 0)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist's controller collects nothing itself; each process collected every file."""
    config = node.config
    config.stash[SLOW_LEFT_OUT] = max(config.stash.get(SLOW_LEFT_OUT, 0),
                                      getattr(node, "workeroutput", {}).get("slow_left_out", 0))


def pytest_terminal_summary(terminalreporter, config):
    """Say, last, which checks pyproject's addopts left out and how to run them: a count of
    deselected tests (which xdist does not even print) does not say which."""
    left_out = config.stash.get(SLOW_LEFT_OUT, 0)
    if left_out and not hasattr(config, "workerinput"):
        terminalreporter.write_line(f"{left_out} paper-size check(s) (marked slow) did not run: "
                                    "`.venv/bin/python -m pytest -m slow` runs them; CI runs both.")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """tiny_export(track, precision=None) -> (tflite path, report): a real export of a
    tiny-backbone model (the render track has no backbone and ignores it), through ONNX,
    onnx2tf and the parity gates (precision None: the track's own), made once per run."""
    from bokehlite.contract import artifact_stem
    from bokehlite.export.pipeline import export_track
    from bokehlite.export.plan import ExportPlan
    from bokehlite.model import BackboneConfig

    def get(track: str, precision: str | None = None):
        size = TINY_SIZES[track]
        folder, report = made_once(tmp_path_factory, f"tiny-{track}-{precision}", lambda out: export_track(
            ExportPlan.build(track, size, backbone=BackboneConfig.tiny(), precision=precision), out))
        return folder / f"{artifact_stem(track, size, report['precision'])}.tflite", report

    return get


@pytest.fixture(scope="session")
def full_size_export(tmp_path_factory):
    """full_size_export(track, precision=None) -> (tflite path, report): a paper-size 1024x1536
    export with one parity image (precision None: the track's own), made once per run (the
    slow tests of several files share it)."""
    from bokehlite.contract import DEFAULT_SIZE, artifact_stem
    from bokehlite.export.pipeline import export_track
    from bokehlite.export.plan import ExportPlan

    def get(track: str, precision: str | None = None):
        folder, report = made_once(tmp_path_factory, f"full-size-{track}-{precision}", lambda out: export_track(
            ExportPlan.build(track, DEFAULT_SIZE, precision=precision, parity_images=1), out))
        return folder / f"{artifact_stem(track, DEFAULT_SIZE, report['precision'])}.tflite", report

    return get


@pytest.fixture(scope="session")
def gpu_adapter():
    """The Vulkan adapter LiteRT's GPU accelerator runs on here. Without one the test skips,
    unless BOKEHLITE_REQUIRE_GPU is set (.ci/run sets it: there a missing adapter is a broken
    install, not a reason to skip)."""
    from bokehlite.runtime import BackendError
    from bokehlite.runtime.gpu_adapter import find_adapter
    try:
        return find_adapter()
    except BackendError as exc:
        if os.environ.get("BOKEHLITE_REQUIRE_GPU"):
            pytest.fail(f"BOKEHLITE_REQUIRE_GPU is set, but: {exc}")
        pytest.skip(str(exc))


# --- the native library: one CMake build, photos, depth maps and tiny exports per session -------

@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    return made_once(tmp_path_factory, "native-build", cmake_build)[0]


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """astronaut, coffee, chelsea, rocket, an odd 451x300 size, a grey PNG and an RGBA PNG."""
    import skimage.data

    folder = tmp_path_factory.mktemp("native_photos")
    astronaut = skimage.data.astronaut()
    images = {"astronaut": astronaut[..., ::-1], "coffee": skimage.data.coffee()[..., ::-1],
              "chelsea": skimage.data.chelsea()[..., ::-1], "rocket": skimage.data.rocket()[..., ::-1],
              "odd": cv2.resize(skimage.data.coffee()[..., ::-1], (451, 300), interpolation=cv2.INTER_AREA),
              "grey": skimage.data.camera()}
    alpha = np.tile(np.linspace(0, 255, astronaut.shape[1]).astype(np.uint8), (astronaut.shape[0], 1))
    images["rgba"] = np.dstack([astronaut[..., ::-1], alpha])
    return write_pngs(folder, images)


@pytest.fixture(scope="session")
def depth_maps(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("native_depth")
    rows = np.linspace(0.0, 1.0, 200)[:, None] * np.ones((1, 320))
    cols = np.linspace(0.0, 1.0, 451)[None, :] * np.ones((300, 1))
    maps = {"ramp16": (rows * 65535).astype(np.uint16),          # another size than the photo
            "odd8": (cols * 255).astype(np.uint8),                # the odd photo's own size
            "colour": np.dstack([(rows * 255).astype(np.uint8)] * 2 + [np.zeros((200, 320), np.uint8)])}
    return write_pngs(folder, maps)


def write_pngs(folder: Path, images: dict[str, np.ndarray]) -> dict[str, Path]:
    """Each image as folder/<name>.png (OpenCV's BGR order); name -> path."""
    paths = {name: folder / f"{name}.png" for name in images}
    for name, pixels in images.items():
        cv2.imwrite(str(paths[name]), pixels)
    return paths


@pytest.fixture(scope="session")
def tiny_gpu_int8(tiny_export) -> tuple[Path, dict]:
    """(tflite, report): the gpu track's int8 export for the CPU fallback (export-tflite --track
    gpu --precision int8), tiny (test_export_int8.py and test_arm64.py)."""
    return tiny_export("gpu", "int8")


@pytest.fixture(scope="session")
def tiny_int8(tiny_export) -> tuple[Path, dict]:
    """(tflite path, report) of the tiny cpu track's int8 export (dynamic range)."""
    return tiny_export("cpu", "int8")


@pytest.fixture(scope="session")
def models(tiny_export, tiny_int8) -> dict[str, Path]:
    """Every track the exporter makes, at a tiny size."""
    return {**{track: tiny_export(track)[0] for track in ("gpu", "cpu", "render")}, "int8": tiny_int8[0]}


@pytest.fixture(scope="session")
def portrait(tmp_path_factory) -> Path:
    """A portrait export at a tiny size, as export-tflite writes it: the folder with the
    portrait model, its sidecar and the segmenter the sidecar names."""
    def make(folder: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", "portrait", "--input-size",
                               PORTRAIT_SIZE, "-o", str(folder)], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"export-tflite --track portrait failed: {proc.stderr[-1500:]}"

    return made_once(tmp_path_factory, "tiny-portrait", make)[0]


@pytest.fixture(scope="session")
def java_classes(build, tmp_path_factory) -> Path:
    assert (build / "libbokeh_jni.so").is_file(), "libbokeh_jni.so was not built (no JDK's jni.h found)"
    out = tmp_path_factory.mktemp("java_classes")
    sources = [str(p) for p in JAVA_SRC.rglob("*.java")]
    proc = subprocess.run([java_tool("javac"), "-d", str(out), *sources], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def asan_build(tmp_path_factory) -> Path:
    return made_once(tmp_path_factory, "native-asan", lambda folder: cmake_build(
        folder, "-DBOKEH_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DBOKEH_BUILD_JNI=OFF"))[0]


