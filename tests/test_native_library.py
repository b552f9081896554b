"""libbokeh's handle API and the Java class, used as an app uses them (and misuses them).

C programs under android/native/tests/ (api_*.c) are compiled here against the built
libbokeh.so and run on the tiny real exports; Java mains under android/java/test/ run on
the JVM with the JNI bridge. The build, the exports and the compiled Java classes are
session fixtures (conftest.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from native_support import NATIVE, asan_env, assert_clean, gpu_env, java_tool, litert_dir, native, one_line


def harness(build: Path, name: str, out: Path) -> Path:
    """android/native/tests/NAME compiled against BUILD's libbokeh.so."""
    exe = out / Path(name).stem
    proc = subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(NATIVE / "include"),
                           str(NATIVE / "tests" / name), "-o", str(exe), "-L", str(build), "-lbokeh", "-lm",
                           "-pthread", f"-Wl,-rpath,{build}:{litert_dir()}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return exe


def run(exe: Path, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=exe.parent)


def java_main(build: Path, classes: Path, main: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    # cwd: a JVM that crashes writes its hs_err_pid*.log there, not into the checkout.
    return subprocess.run([java_tool("java"), f"-Djava.library.path={build}", "-cp", str(classes), main,
                           *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def _ok(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == ["ok"], \
        f"{what}: rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


# --- the C handle API, under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer ------

def test_a_pipeline_whose_open_failed_refuses_every_call_under_sanitizers(asan_build, models, tmp_path):
    # A sidecar whose blur output shape was edited: the model compiles, then the contract
    # check fails. Every call on that handle but bokeh_message and bokeh_close must say
    # "the pipeline is not open" (it used to give OK info with a NULL track, and render
    # through NULL).
    bad = tmp_path / "bad"
    bad.mkdir()
    model = bad / models["gpu"].name
    shutil.copy(models["gpu"], model)
    sidecar = json.loads(models["gpu"].with_suffix(".json").read_text())
    blur = [o for o in sidecar["outputs"] if o["name"] == "blur"]
    assert blur, sidecar["outputs"]
    blur[0]["shape"] = [1, 32, 48, 3]
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    proc = run(harness(asan_build, "api_misuse.c", tmp_path), "failed-open", model, env=asan_env())
    assert_clean(proc, "failed open")
    _ok(proc, "failed open")
    assert "blur" in proc.stdout, proc.stdout          # bokeh_open's own message, before the refusals


def test_rendering_in_place_needs_the_same_stride_and_a_refused_render_leaves_the_photo(asan_build, models, tmp_path):
    # out == pixels with another stride used to be let through (the overlap check skipped
    # equal pointers) and corrupted most rows of the photo.
    proc = run(harness(asan_build, "api_misuse.c", tmp_path), "in-place", models["gpu"], env=asan_env())
    assert_clean(proc, "in place")
    _ok(proc, "in place")


def test_focus_at_refuses_nan_and_out_of_range_disparity(asan_build, models, tmp_path):
    # A NaN in the tapped window used to give OK with a NaN focus, which bokeh_render then
    # took for "not given" and quietly focused on the centre.
    proc = run(harness(asan_build, "api_misuse.c", tmp_path), "focus-nan", models["render"], env=asan_env())
    assert_clean(proc, "focus at")
    _ok(proc, "focus at")


# --- the software GPU's wait, with another pipeline busy on another thread ---------------------

@pytest.mark.parametrize("other", ["cpu", "gpu"])
def test_a_software_gpu_render_finishes_while_another_pipeline_renders_on_another_thread(build, models, gpu_adapter,
                                                                                         other, tmp_path):
    # The wait for SwiftShader's threads used to poll the whole process's CPU time: with a
    # CPU pipeline rendering in a loop on another thread, the GPU render never returned.
    # Now: a render beside the other thread takes about what the two take one after the
    # other (SwiftShader's worker threads are shared, so two GPU runs take turns).
    exe = harness(build, "api_two_pipelines.c", tmp_path)
    proc = run(exe, models["gpu"], models[other], other, env=gpu_env(gpu_adapter))
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    figures = {k: float(v) for k, v in (kv.split("=") for kv in proc.stdout.strip().splitlines()[-1].split())}
    assert figures["other_renders"] >= 1, figures            # the other pipeline did render meanwhile
    sequential = figures["alone_ms"] + figures["other_alone_ms"]
    assert figures["busy_ms"] <= 5 * sequential, figures


# --- without a Vulkan driver: the GPU's refusal names it, as bokeh-render does ---------------

# No driver variable of the caller's may leak in: VK_DRIVER_FILES would take the loader's choice.
NO_DRIVER_VARIABLES = {"VK_ICD_FILENAMES": "", "VK_DRIVER_FILES": "", "VK_ADD_DRIVER_FILES": ""}


def _gpu_refusal(build: Path, model: Path, photo: Path, accelerator: str, env: dict, out: Path) -> str:
    """What bokeh-native says when the GPU cannot be had: the error of --accelerator gpu
    (exit 2, nothing written), or the report's fallback of auto (which renders on the CPU)."""
    proc = native(build, "-m", model, "--accelerator", accelerator, "--json", photo, out, env=env)
    if accelerator == "gpu":
        assert proc.returncode == 2 and not out.exists(), f"rc {proc.returncode}: {proc.stderr}"
        return one_line(proc)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accelerator"] == "cpu", report
    return report["fallback"]


@pytest.mark.parametrize("accelerator", ["gpu", "auto"])
def test_a_vulkan_driver_file_that_does_not_exist_is_named_when_the_gpu_is_refused(build, models, photos,
                                                                                   accelerator, tmp_path):
    # It used to say only "compiling failed (runtime failure)", LiteRT's status, where
    # bokeh-render --backend litert-gpu says which driver file is missing.
    env = {**NO_DRIVER_VARIABLES, "VK_ICD_FILENAMES": "/nonexistent.json"}
    said = _gpu_refusal(build, models["gpu"], photos["astronaut"], accelerator, env, tmp_path / "out.png")
    assert "no Vulkan driver: VK_ICD_FILENAMES names /nonexistent.json, which does not exist" in said, said
    assert "runtime failure" not in said, said


@pytest.mark.parametrize("accelerator", ["gpu", "auto"])
def test_no_vulkan_driver_in_the_loaders_folders_is_named_when_the_gpu_is_refused(build, models, photos,
                                                                                 accelerator, tmp_path):
    # HOME and the XDG folders point at an empty folder; only the loader's fixed system
    # folders are left, and a machine with a driver there cannot show this.
    fixed = [Path(d) / "vulkan" / "icd.d" for d in ("/etc", "/usr/local/etc")]
    installed = [str(f) for d in fixed if d.is_dir() for f in d.glob("*.json")]
    if installed:
        pytest.skip(f"a Vulkan driver is installed here: {', '.join(installed)}")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**NO_DRIVER_VARIABLES, "HOME": str(empty), "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": "",
           "XDG_CONFIG_DIRS": str(empty), "XDG_DATA_DIRS": str(empty)}
    said = _gpu_refusal(build, models["gpu"], photos["astronaut"], accelerator, env, tmp_path / "out.png")
    assert "no Vulkan driver (no ICD file in the Vulkan loader's folders" in said, said
    assert "VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json" in said, said


# --- the Java class ------------------------------------------------------------------------------

def test_java_close_during_a_render_waits_for_it_and_every_later_call_throws(build, java_classes, models, tmp_path):
    # close() on one thread while another renders used to free the native pipeline under the
    # render: "corrupted double-linked list", SIGSEGV in libLiteRt.so, the JVM gone.
    proc = java_main(build, java_classes, "PipelineThreads", "close-during-render", models["gpu"], 40, cwd=tmp_path)
    _ok(proc, "close during render")


def test_java_renders_from_two_threads_on_one_pipeline_give_the_pixels_of_one(build, java_classes, models, tmp_path):
    proc = java_main(build, java_classes, "PipelineThreads", "concurrent-renders", models["gpu"], 20, cwd=tmp_path)
    _ok(proc, "concurrent renders")


def test_java_refuses_an_infinite_aperture_with_the_library_message(build, java_classes, models, tmp_path):
    proc = java_main(build, java_classes, "PipelineThreads", "aperture", models["render"], cwd=tmp_path)
    _ok(proc, "aperture")
    assert "aperture Infinity: expected aperture in [0, " in proc.stdout and "got inf" in proc.stdout, proc.stdout
