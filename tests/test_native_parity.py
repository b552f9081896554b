"""libbokeh / bokeh-native / the JNI bridge against bokeh-render, on real exports and real photos.

The native code is built with CMake once per session into a temporary folder and run as
a user runs it: the real binary, the real libLiteRt.so, and a Java main on the JVM. Every
track is rendered by both runtimes on the same model and photo and gated: PSNR >= 50 dB
and at most 0.5% of the 8-bit values off by more than 1. With BOKEH_NATIVE_FIGURES=FILE
the measured figures are written there as JSON. The build, photos and exports are session
fixtures (conftest.py); running things is tests/native_support.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from native_support import (NATIVE, OFF_GATE, PORTRAIT_SIZE, PSNR_GATE, agreement, asan_env, assert_clean, gpu_env,
                            java, litert_dir, native, one_line, python_render, python_run, read,
                            stderr_on_a_terminal)

FP16_GATE = 40.0
FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="session", autouse=True)
def _write_figures():
    yield
    if os.environ.get("BOKEH_NATIVE_FIGURES") and FIGURES:
        Path(os.environ["BOKEH_NATIVE_FIGURES"]).write_text(json.dumps(FIGURES, indent=1))


def gate(key: str, ours: Path, theirs: Path) -> None:
    psnr, off = agreement(read(ours), read(theirs))
    FIGURES[key] = {"psnr_db": round(psnr, 2), "off_by_more_than_1": round(off, 6)}
    assert psnr >= PSNR_GATE and off <= OFF_GATE, f"{key}: {psnr:.1f} dB, {off:.3%} of values off by > 1"


# --- the ABI header against the real library ------------------------------------------------

def test_every_litert_function_the_header_declares_is_exported_by_libLiteRt():
    header = (NATIVE / "src" / "litert_abi.h").read_text()
    declared = set(re.findall(r"^\s*(?:LiteRtStatus|void)\s+(LiteRt\w+)\(", header, re.M))
    assert len(declared) >= 25
    nm = subprocess.run(["nm", "-D", "--defined-only", str(litert_dir() / "libLiteRt.so")],
                        capture_output=True, text=True, check=True).stdout
    exported = {m.group(1) for m in re.finditer(r" T (LiteRt\w+)@@VERS_1\.0$", nm, re.M)}
    assert declared <= exported, f"not exported at VERS_1.0: {sorted(declared - exported)}"
    used = set(re.findall(r"\b(LiteRt[A-Z]\w+)\(", (NATIVE / "src" / "model.c").read_text() +
                          (NATIVE / "src" / "bokeh.c").read_text()))
    assert used <= declared, f"called but not declared in litert_abi.h: {sorted(used - declared)}"


# --- parity with bokeh-render, CPU -----------------------------------------------------------

IMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "odd", "grey", "rgba")


@pytest.mark.parametrize("track", ["gpu", "cpu", "int8"])
def test_image_tracks_on_the_cpu_match_bokeh_render_on_every_photo(build, models, photos, track, tmp_path):
    ref = python_render(*(photos[p] for p in IMAGE_PHOTOS), "-m", models[track], "--backend", "litert",
                        "--threads", "2", out=tmp_path / "py")
    for name in IMAGE_PHOTOS:
        ours = tmp_path / f"{name}.png"
        proc = native(build, "-m", models[track], "--accelerator", "cpu", "--threads", "2", "--runs", "1",
                      photos[name], ours)
        assert proc.returncode == 0, proc.stderr
        gate(f"{track}/cpu/{name}", ours, ref / f"{name}.png")
    alpha_in, alpha_out = read(photos["rgba"])[..., 3], read(tmp_path / "rgba.png")[..., 3]
    assert np.array_equal(alpha_in, alpha_out), "alpha must be copied through"
    assert read(tmp_path / "grey.png").ndim == 2, "a grey photo stays grey"


def test_render_track_with_depth_focus_and_aperture_matches_bokeh_render(build, models, photos, depth_maps,
                                                                         tmp_path):
    cases = {"astronaut": ("ramp16", ["--focus", "200,300", "--aperture", "30"]),
             "odd": ("odd8", []),                                       # default focus and aperture
             "coffee": ("ramp16", ["--focus-disparity", "0.25"])}
    focus = {}
    for name, (depth, extra) in cases.items():
        args = ["-m", models["render"], "--depth", depth_maps[depth], *extra]
        ref = tmp_path / f"py_{name}"
        theirs = json.loads(python_run(photos[name], *args, "--threads", "2", "--json", out=ref).stdout)
        ours = tmp_path / f"{name}.png"
        proc = native(build, *args, "--accelerator", "cpu", "--threads", "2", "--json", photos[name], ours)
        assert proc.returncode == 0, proc.stderr
        gate(f"render/cpu/{name}", ours, ref / f"{name}.png")
        # The focal plane both front ends report: the one each rendered with (R8, R9).
        focus[name] = json.loads(proc.stdout)["focus_disparity"]
        assert focus[name] == pytest.approx(theirs["files"][0]["focus_disparity"], abs=1e-6), (name, theirs)
    assert focus["coffee"] == pytest.approx(0.25, abs=1e-6), "--focus-disparity is the focus as given"


PORTRAIT_PHOTOS = ("astronaut", "rgba", "rocket")      # the rocket has no person in it


def test_portrait_model_matches_bokeh_render_and_leaves_a_photo_without_a_person_unchanged(
        build, portrait, photos, tmp_path):
    proc = python_run(*(photos[n] for n in PORTRAIT_PHOTOS), "--portrait", "--models", portrait, "--aperture", "25",
                      "--threads", "2", "--json", out=tmp_path / "py")
    theirs = {Path(f["input"]).stem: f for f in json.loads(proc.stdout)["files"]}
    reports = {}
    for name in PORTRAIT_PHOTOS:
        ours = tmp_path / f"{name}.png"
        proc = native(build, "--portrait", portrait, "--aperture", "25", "--accelerator", "cpu", "--threads", "2",
                      "--json", photos[name], ours)
        assert proc.returncode == 0, proc.stderr
        reports[name] = json.loads(proc.stdout)
        assert reports[name]["track"] == "portrait"
        assert "focus_disparity" not in reports[name] and "focus_disparity" not in theirs[name]
        gate(f"portrait/cpu/{name}", ours, tmp_path / "py" / f"{name}.png")
        # The focal plane stays inside the portrait graph (no output gives it), so neither front
        # end reports one; the person share is what they report: bokeh-native in its report and,
        # for a photo without a person, both in the same warning line.
        if name == "rocket":
            assert "no person found" in theirs[name]["warning"] and str(photos[name]) in theirs[name]["warning"]
            assert one_line(proc) == f"bokeh-native: warning: {theirs[name]['warning']}"
        else:
            assert proc.stderr.strip() == "" and "warning" not in theirs[name], (proc.stderr, theirs[name])
    assert reports["astronaut"]["person_share"] > 0.1, reports["astronaut"]
    assert reports["rocket"]["person_share"] < 0.01, reports["rocket"]
    assert np.array_equal(read(tmp_path / "rocket.png"), read(photos["rocket"]))
    assert np.array_equal(read(tmp_path / "rgba.png")[..., 3], read(photos["rgba"])[..., 3]), "alpha is copied"
    # The same model given as -m is the same portrait.
    proc = native(build, "-m", next(portrait.glob("bokeh_portrait_*x*.tflite")), "--aperture", "25",
                  "--accelerator", "cpu", "--threads", "2", photos["astronaut"], tmp_path / "m.png")
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(read(tmp_path / "m.png"), read(tmp_path / "astronaut.png"))


def test_old_portrait_pipelines_and_a_changed_or_missing_segmenter_exit_2_with_one_line(build, portrait, photos,
                                                                                        tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / f"bokeh_portrait_{PORTRAIT_SIZE}.json").write_text(json.dumps(
        {"format": "bokehlite-portrait", "version": 1, "segmenter": {"file": "bokeh_portrait_segmenter.tflite"},
         "render": {"file": f"bokeh_render_{PORTRAIT_SIZE}.tflite"}}))
    changed, missing = tmp_path / "changed", tmp_path / "missing"
    shutil.copytree(portrait, changed)
    shutil.copytree(portrait, missing)
    segmenter = json.loads(next(portrait.glob("bokeh_portrait_*x*.json")).read_text())["segmenter"]["file"]
    with open(changed / segmenter, "ab") as f:
        f.write(b"\0")
    (missing / segmenter).unlink()
    cases = {"old pipeline": (["--portrait", old], "re-export with export-tflite --track portrait"),
             "changed segmenter": (["--portrait", changed], "sha256 mismatch"),
             "missing segmenter": (["--portrait", missing], "missing"),
             "depth for a portrait": (["-m", next(portrait.glob("bokeh_portrait_*x*.tflite")), "--focus-disparity",
                                       "0.5"], "does not go with a portrait model")}
    for name, (args, expected) in cases.items():
        out = tmp_path / "out.png"
        proc = native(build, *args, photos["astronaut"], out)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        line = one_line(proc)
        assert line.startswith("bokeh-native: error: ") and expected in line, (name, line)
        assert not out.exists(), name


# --- the GPU accelerator (SwiftShader here) ---------------------------------------------------

def test_gpu_track_on_the_gpu_accelerator_matches_bokeh_render_litert_gpu(build, models, photos, gpu_adapter,
                                                                          tmp_path):
    names = ("astronaut", "odd", "rgba")
    ref = python_render(*(photos[n] for n in names), "-m", models["gpu"], "--backend", "litert-gpu",
                        out=tmp_path / "py")
    for name in names:
        ours = tmp_path / f"{name}.png"
        proc = native(build, "-m", models["gpu"], "--accelerator", "gpu", "--json", photos[name], ours,
                      env=gpu_env(gpu_adapter))
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["accelerator"] == "gpu" and report["fully_accelerated"] is True
        gate(f"gpu/gpu/{name}", ours, ref / f"{name}.png")


@pytest.mark.parametrize("accelerator, where", [("gpu", ""), ("auto", " where its export verified it")])
def test_on_a_terminal_bokeh_native_says_first_that_it_compiles_for_the_accelerator(build, models, photos,
                                                                                    gpu_adapter, tmp_path,
                                                                                    accelerator, where):
    """bokeh-render's note (test_gpu_accelerator.py), word for word: minutes on SwiftShader at
    full size (issue 35) are not spent in silence. A script's stderr, a pipe, gets no note:
    test_native_contract.py's refusal of the cpu track on the GPU reads it as one line."""
    code, seen = stderr_on_a_terminal([build / "bokeh-native", "-m", models["gpu"], "--accelerator", accelerator,
                                       photos["astronaut"], tmp_path / "out.png"], env=gpu_env(gpu_adapter))
    assert code == 0, seen
    assert seen.strip().splitlines()[0] == (f"bokeh-native: compiling {models['gpu']} for LiteRT's GPU "
                                            f"accelerator{where} (on a software GPU such as SwiftShader, "
                                            "minutes for a full-size model)")


def test_portrait_on_the_gpu_accelerator_matches_bokeh_render_litert_gpu(build, portrait, photos, gpu_adapter,
                                                                         tmp_path):
    ref = python_render(*(photos[n] for n in PORTRAIT_PHOTOS), "--portrait", "--models", portrait, "--backend",
                        "litert-gpu", out=tmp_path / "py")
    for name in PORTRAIT_PHOTOS:
        ours = tmp_path / f"{name}.png"
        proc = native(build, "--portrait", portrait, "--accelerator", "gpu", "--runs", "1", "--json", photos[name], ours,
                      env=gpu_env(gpu_adapter))
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["accelerator"] == report["segmenter_accelerator"] == "gpu", report
        assert report["fully_accelerated"] is True, report
        gate(f"portrait/gpu/{name}", ours, ref / f"{name}.png")
    assert np.array_equal(read(tmp_path / "rocket.png"), read(photos["rocket"]))


@pytest.mark.parametrize("track", ["cpu", "render", "portrait"])
def test_auto_puts_render_and_portrait_on_the_gpu_and_keeps_the_cpu_track_on_the_cpu(build, models, portrait, photos,
                                                                                     depth_maps, gpu_adapter, track,
                                                                                     tmp_path):
    if track == "portrait":
        args = ["--portrait", portrait]
        py_args = ["--portrait", "--models", portrait]
    else:
        args = ["-m", models[track]] + (["--depth", depth_maps["ramp16"]] if track == "render" else [])
        py_args = args
    ref = python_render(photos["astronaut"], *py_args, "--backend", "litert", out=tmp_path / "py")
    ours = tmp_path / "astronaut.png"
    proc = native(build, *args, "--accelerator", "auto", "--json", photos["astronaut"], ours,
                  env=gpu_env(gpu_adapter))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # The cpu track is a float32 export, never verified on the GPU accelerator (its grouped
    # convolutions compute garbage there): auto keeps it on the CPU and says why.
    assert report["accelerator"] == ("cpu" if track == "cpu" else "gpu"), report
    if track == "cpu":
        assert "not verified on the GPU" in report["fallback"]
    FIGURES[f"{track}/auto-accelerator"] = {"accelerator": report["accelerator"],
                                            "segmenter": report["segmenter_accelerator"]}
    gate(f"{track}/auto-{report['accelerator']}-vs-cpu/astronaut", ours, ref / "astronaut.png")


def test_auto_without_a_vulkan_device_runs_on_the_cpu_and_says_so_and_gpu_exits_2(build, models, photos,
                                                                                  tmp_path):
    env = {"VK_ICD_FILENAMES": str(tmp_path / "no_such_icd.json"), "VK_DRIVER_FILES": ""}
    proc = native(build, "-m", models["gpu"], "--json", photos["astronaut"], tmp_path / "auto.png", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accelerator"] == "cpu" and report["fallback"].startswith("GPU:"), report
    out = tmp_path / "gpu.png"
    proc = native(build, "-m", models["gpu"], "--accelerator", "gpu", photos["astronaut"], out, env=env)
    assert proc.returncode == 2 and not out.exists()
    assert "GPU accelerator" in one_line(proc)


def native_gpu_run(build, model, photo, out: Path, precision: str, gpu_adapter, timeout=300) -> dict:
    """bokeh-native on the GPU accelerator at `precision`: its --json report."""
    proc = native(build, "-m", model, "--accelerator", "gpu", "--gpu-precision", precision, "--runs", "1",
                  "--json", photo, out, env=gpu_env(gpu_adapter), timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accelerator"] == "gpu", report
    return report


def test_fp16_on_a_gpu_without_float16_shaders_runs_fp32_and_says_so(build, models, photos, gpu_adapter,
                                                                     tmp_path):
    """fp16 where the device has float16 shaders; elsewhere fp32, with the reason, never the
    garbage that unvalidated f16 kernels give (19 dB on SwiftShader, measured)."""
    out = {p: tmp_path / f"{p}.png" for p in ("fp16", "fp32")}
    reports = {p: native_gpu_run(build, models["gpu"], photos["astronaut"], out[p], p, gpu_adapter) for p in out}
    assert reports["fp32"]["gpu_precision"] == "fp32"
    if reports["fp16"]["gpu_precision"] == "fp16":
        psnr, _ = agreement(read(out["fp16"]), read(out["fp32"]))
        FIGURES["gpu/fp16-vs-fp32/astronaut"] = {"psnr_db": round(psnr, 2)}
        assert psnr >= FP16_GATE, f"fp16 against fp32: {psnr:.1f} dB"
    else:
        assert "no float16 shaders" in reports["fp16"]["fallback"], reports["fp16"]
        assert np.array_equal(read(out["fp16"]), read(out["fp32"]))


@pytest.mark.slow
def test_full_size_gpu_track_fp16_against_fp32_on_the_gpu_accelerator(build, models, full_size_export, photos,
                                                                      gpu_adapter, tmp_path):
    """The float16 figure at paper size, where the device has float16 shaders. Asked first of the
    tiny model (seconds): on a device without them there is no fp16 figure to take, and the
    full-size fp32 run on the accelerator is the export's own gate (test_gpu_accelerator.py),
    so it is not run again here (2.5 minutes on SwiftShader)."""
    probe = native_gpu_run(build, models["gpu"], photos["astronaut"], tmp_path / "probe.png", "fp16", gpu_adapter)
    if probe["gpu_precision"] != "fp16":
        pytest.skip(f"{gpu_adapter.name} has no float16 shaders: {probe['fallback']}")
    model, _ = full_size_export("gpu")
    out = {p: tmp_path / f"{p}.png" for p in ("fp16", "fp32")}
    for precision in out:
        native_gpu_run(build, model, photos["astronaut"], out[precision], precision, gpu_adapter, timeout=900)
    ref = python_render(photos["astronaut"], "-m", model, "--backend", "litert", "--threads", "2",
                        out=tmp_path / "py")
    gate("gpu-full/gpu-fp32/astronaut", out["fp32"], ref / "astronaut.png")
    psnr, off = agreement(read(out["fp16"]), read(out["fp32"]))
    FIGURES["gpu-full/fp16-vs-fp32/astronaut"] = {"psnr_db": round(psnr, 2), "off_by_more_than_1": round(off, 6)}
    assert psnr >= FP16_GATE, f"fp16 against fp32: {psnr:.1f} dB"


# --- the JNI bridge -----------------------------------------------------------------------------

@pytest.mark.parametrize("photo", ["astronaut", "rgba"])
def test_java_class_renders_the_same_pixels_as_the_cli(build, java_classes, models, photos, photo, tmp_path):
    cli, jvm = tmp_path / "cli.png", tmp_path / "java.png"
    proc = native(build, "-m", models["gpu"], "--accelerator", "cpu", "--runs", "1", photos[photo], cli)
    assert proc.returncode == 0, proc.stderr
    proc = java(build, java_classes, models["gpu"], photos[photo], jvm, "cpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "cpu"
    assert np.array_equal(read(cli), read(jvm)), "the JNI bridge changed pixels"


def test_java_class_renders_a_portrait_as_the_cli_does_and_says_when_there_is_no_person(build, java_classes, portrait,
                                                                                      photos, tmp_path):
    for name, said in (("astronaut", "person found"), ("rocket", "no person")):
        cli, jvm = tmp_path / f"{name}_cli.png", tmp_path / f"{name}_java.png"
        proc = native(build, "--portrait", portrait, "--accelerator", "cpu", "--runs", "1", photos[name], cli)
        assert proc.returncode == 0, proc.stderr
        proc = java(build, java_classes, portrait, photos[name], jvm, "cpu")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-2:] == [said, "cpu"], proc.stdout
        assert np.array_equal(read(cli), read(jvm)), f"{name}: the JNI bridge changed pixels"


def test_java_class_turns_a_native_error_into_an_exception_with_the_native_message(build, java_classes, photos,
                                                                                   tmp_path):
    missing = tmp_path / "missing.tflite"
    proc = java(build, java_classes, missing, photos["astronaut"], tmp_path / "out.png")
    assert proc.returncode != 0
    assert "ai.bokehlite.BokehException" in proc.stderr and f"{missing}: model file not found" in proc.stderr


# --- bad input: one line, exit 2, nothing written ------------------------------------------------

def test_bad_models_photos_and_depth_maps_exit_2_with_one_line_and_write_nothing(build, models, photos,
                                                                                  depth_maps, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    gpu = models["gpu"]
    truncated = bad / "truncated.tflite"
    truncated.write_bytes(gpu.read_bytes()[:1000])
    shutil.copy(gpu.with_suffix(".json"), truncated.with_suffix(".json"))
    no_sidecar = bad / "alone.tflite"          # no sidecar, and no contract inside either
    from bokehlite.tflite_metadata import without_metadata
    no_sidecar.write_bytes(without_metadata(gpu.read_bytes()))
    wrong_version = bad / "wrong_version.tflite"
    shutil.copy(gpu, wrong_version)
    sidecar = json.loads(gpu.with_suffix(".json").read_text())
    wrong_version.with_suffix(".json").write_text(json.dumps({**sidecar, "version": 99}))
    empty, text, cut = bad / "empty.png", bad / "text.png", bad / "cut.png"
    empty.write_bytes(b"")
    text.write_text("not a photo")
    cut.write_bytes(photos["astronaut"].read_bytes()[:5000])
    cases = {
        "missing model": (["-m", bad / "none.tflite", photos["astronaut"]], "model file not found"),
        "corrupt model": (["-m", truncated, photos["astronaut"]], "sha256 mismatch"),
        "no contract": (["-m", no_sidecar, photos["astronaut"]], "no embedded contract"),
        "sidecar version": (["-m", wrong_version, photos["astronaut"]], "version"),
        "photo as the model": (["-m", photos["astronaut"], photos["astronaut"]], "not a TFLite model"),
        "missing photo": (["-m", gpu, bad / "none.png"], "no such file"),
        "empty photo": (["-m", gpu, empty], "file is empty"),
        "not an image": (["-m", gpu, text], "not an image"),
        "truncated photo": (["-m", gpu, cut], "corrupt PNG"),
        "too many pixels": (["-m", gpu, "--max-pixels", "1000", photos["astronaut"]], "MP limit"),
        "colour depth map": (["-m", models["render"], "--depth", depth_maps["colour"], photos["astronaut"]],
                             "colour image"),
        "missing depth map": (["-m", models["render"], "--depth", bad / "none.png", photos["astronaut"]],
                              "depth map"),
        "no depth map": (["-m", models["render"], photos["astronaut"]], "--depth"),
        "depth for a gpu model": (["-m", gpu, "--depth", depth_maps["ramp16"], photos["astronaut"]],
                                  "depth-guided"),
        "focus outside": (["-m", models["render"], "--depth", depth_maps["ramp16"], "--focus", "9999,1",
                           photos["astronaut"]], "outside"),
        "portrait folder": (["--portrait", bad, photos["astronaut"]], "no portrait pipeline"),
    }
    for name, (args, expected) in cases.items():
        out = bad / "out.png"
        proc = native(build, *args, out)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        line = one_line(proc)
        assert line.startswith("bokeh-native: error: ") and expected in line, (name, line)
        assert not out.exists() and not list(bad.glob("out.png.tmp*")), name


# --- AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer ---------------------------

def test_every_track_under_address_and_undefined_sanitizers_with_a_leak_check(asan_build, models, portrait, photos,
                                                                              depth_maps, tmp_path):
    runs = {
        "gpu": ["-m", models["gpu"], photos["rgba"]],
        "cpu": ["-m", models["cpu"], photos["grey"]],
        "int8": ["-m", models["int8"], photos["odd"]],
        "render": ["-m", models["render"], "--depth", depth_maps["ramp16"], "--focus", "5,5", photos["astronaut"]],
        "portrait": ["--portrait", portrait, "--runs", "2", photos["rgba"]],
        "portrait, no person": ["--portrait", portrait, photos["rocket"]],
        "bad portrait": ["--portrait", portrait, "--depth", depth_maps["ramp16"], photos["astronaut"]],
        "bad photo": ["-m", models["gpu"], photos["astronaut"].with_name("none.png")],
        "bad depth": ["-m", models["render"], "--depth", depth_maps["colour"], photos["astronaut"]],
    }
    for name, args in runs.items():
        out = tmp_path / f"{name}.png"
        proc = native(asan_build, *args, "--accelerator", "cpu", out, env=asan_env())
        assert_clean(proc, name)
        assert out.exists() == (not name.startswith("bad")), (name, proc.stderr[-2000:])


def test_the_gpu_accelerator_path_under_sanitizers(asan_build, models, photos, gpu_adapter, tmp_path):
    out = tmp_path / "gpu.png"
    proc = native(asan_build, "-m", models["gpu"], "--accelerator", "gpu", photos["astronaut"], out,
                  env=asan_env(gpu_env(gpu_adapter)))
    assert_clean(proc, "gpu accelerator")
    assert proc.returncode == 0 and out.exists()


# --- benchmarks/native.py ---------------------------------------------------------------------

def test_native_benchmark_rows_time_both_runtimes_on_the_same_model_and_photo(build, models):
    from bokehlite.benchmarks.native import compare, target, to_text
    rows = compare(build / "bokeh-native", models["gpu"], threads=2, runs=1, sizes=((192, 256), (300, 400)))
    assert [(r["photo"], r["runtime"]) for r in rows] == [("192x256", "bokeh-render"), ("192x256", "bokeh-native"),
                                                         ("300x400", "bokeh-render"), ("300x400", "bokeh-native")]
    for r in rows:
        assert r["wall_ms"] > r["fit_ms"] + r["blend_ms"] > 0 and 0 < r["host_share"] < 1, r
    assert target(rows) is None                      # no 12 MP row
    assert "bokeh-native" in to_text(rows)
    from bokehlite.benchmarks.report import native_section, to_markdown
    section = native_section({"native": {"rows": rows, "target": None}})
    assert [r[:2] for r in section.rows] == [["192x256", "bokeh-render"], ["192x256", "bokeh-native"],
                                             ["300x400", "bokeh-render"], ["300x400", "bokeh-native"]]
    assert "## bokeh-native beside bokeh-render" in to_markdown([section])
