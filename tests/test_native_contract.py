"""One contract, every front end (docs/contract.md): the same input gets the same answer from
bokeh-render, bokeh-native and the Java class: the same pixels, or the same refusal (exit 2,
one line, nothing written). A lone .tflite carries its contract and renders everywhere."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from native_support import OFF_GATE, PSNR_GATE, agreement, java, native, one_line, read

PY = [sys.executable, "-m", "bokehlite.runtime.cli"]


def bokeh_render(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, *map(str, args)], capture_output=True, text=True, timeout=600)


def assert_same_picture(ours: Path, theirs: Path, what: str) -> None:
    psnr, off = agreement(read(ours), read(theirs))
    assert psnr >= PSNR_GATE and off <= OFF_GATE, f"{what}: {psnr:.1f} dB, {off:.3%} off by > 1"


def alone(model: Path, folder: Path) -> Path:
    """The .tflite copied into a folder of its own, without its sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(model, folder / model.name))


@pytest.mark.parametrize("track", ["gpu", "cpu", "int8", "render"])
def test_a_lone_tflite_renders_in_bokeh_native_as_in_bokeh_render(build, models, photos, depth_maps, track, tmp_path):
    lone = alone(models[track], tmp_path / "alone")
    extra = ["--depth", depth_maps["ramp16"], "--aperture", "12"] if track == "render" else []
    proc = bokeh_render(photos["odd"], "-m", lone, *extra, "--threads", "2", "-o", tmp_path / "py")
    assert proc.returncode == 0, proc.stderr
    ours = tmp_path / "odd.png"
    proc = native(build, "-m", lone, *extra, "--accelerator", "cpu", "--threads", "2", "--json", photos["odd"], ours)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["track"] == ("cpu" if track == "int8" else track)
    assert_same_picture(ours, tmp_path / "py" / "odd.png", f"lone {track}")


def test_a_lone_portrait_model_with_its_segmenter_renders_in_every_front_end(build, java_classes, portrait, photos,
                                                                              tmp_path):
    """R11: a portrait model needs its segmenter beside it; no sidecar JSON is needed."""
    folder = tmp_path / "lone_portrait"
    folder.mkdir()
    for f in portrait.glob("*.tflite"):
        shutil.copy(f, folder / f.name)
    model = next(folder.glob("bokeh_portrait_*x*.tflite"))
    proc = bokeh_render(photos["astronaut"], "--portrait", "--models", folder, "-o", tmp_path / "py")
    assert proc.returncode == 0, proc.stderr
    reference = tmp_path / "py" / "astronaut.png"
    # bokeh-render -m with a portrait model renders the portrait, as --portrait does (issue 35, case 1)
    proc = bokeh_render(photos["astronaut"], "-m", model, "-o", tmp_path / "py_m")
    assert proc.returncode == 0, proc.stderr
    assert_same_picture(tmp_path / "py_m" / "astronaut.png", reference, "bokeh-render -m portrait")
    for args, name in ((["--portrait", folder], "dir"), (["-m", model], "m")):
        ours = tmp_path / f"native_{name}.png"
        proc = native(build, *args, "--accelerator", "cpu", "--runs", "1", photos["astronaut"], ours)
        assert proc.returncode == 0, proc.stderr
        assert_same_picture(ours, reference, f"bokeh-native {name}")
    jvm = tmp_path / "java.png"
    proc = java(build, java_classes, folder, photos["astronaut"], jvm, "cpu")
    assert proc.returncode == 0 and "untrained weights" not in proc.stderr, proc.stderr     # portrait: analytic
    assert_same_picture(jvm, reference, "Java class")
    (folder / next(portrait.glob("*segmenter*.tflite")).name).unlink()
    for proc in (bokeh_render(photos["astronaut"], "-m", model, "-o", tmp_path / "none"),
                 native(build, "-m", model, photos["astronaut"], tmp_path / "none.png")):
        assert proc.returncode == 2 and "segmenter" in one_line(proc) and "missing" in one_line(proc), proc.stderr


@pytest.mark.parametrize("track", ["gpu", "cpu", "int8"])
def test_the_java_class_opens_a_lone_tflite(build, java_classes, models, photos, track, tmp_path):
    lone = alone(models[track], tmp_path / "alone")
    cli, jvm = tmp_path / "cli.png", tmp_path / "java.png"
    proc = native(build, "-m", lone, "--accelerator", "cpu", "--runs", "1", photos["astronaut"], cli)
    assert proc.returncode == 0, proc.stderr
    proc = java(build, java_classes, lone, photos["astronaut"], jvm, "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "untrained weights" in proc.stderr, "weights() gives the contract's (F8)"
    assert read(cli).tolist() == read(jvm).tolist()


def edited(model: Path, folder: Path, edit=None, text: str | None = None) -> Path:
    """A copy of `model` with a sidecar changed by `edit` (a function of the dict), or replaced by `text`."""
    copy = alone(model, folder)
    if text is None:
        data = json.loads(model.with_suffix(".json").read_text())
        edit(data)
        text = json.dumps(data)
    copy.with_suffix(".json").write_text(text, encoding="utf-8")
    return copy


SIDECAR_EDITS = {   # issue 31: cases 3, 14 and 18, and the host block
    "blur shape edited": (lambda s: s["outputs"][1].update(shape=[1, 32, 48, 3]), "blur"),
    "an output name that is not a string": (lambda s: s["outputs"][0].update(name=5), "name"),
    "a list as postprocess.source": (lambda s: s["postprocess"].update(source=["blur"]), "source"),
    "no host block": (lambda s: s.pop("host"), "host"),
    "an even focus window": (lambda s: s["host"].update(focus_window=8), "focus_window"),
    "version 1": (lambda s: s.update(version=1), "version"),
}
SIDECAR_TEXTS = {
    "eta 1e400": (lambda t: t.replace('"eta": 20.0', '"eta": 1e400'), "eta"),
    "a UTF-8 byte order mark": (lambda t: "\ufeff" + t, "JSON"),
    "nested 100000 deep": (lambda t: "[" * 100000 + "]" * 100000, "JSON"),
}


@pytest.mark.parametrize("case", [*SIDECAR_EDITS, *SIDECAR_TEXTS])
def test_a_malformed_sidecar_gets_the_same_refusal_from_both_front_ends(build, models, photos, case, tmp_path):
    gpu = models["gpu"]
    if case in SIDECAR_EDITS:
        edit, word = SIDECAR_EDITS[case]
        model = edited(gpu, tmp_path / "m", edit)
    else:
        change, word = SIDECAR_TEXTS[case]
        model = edited(gpu, tmp_path / "m", text=change(json.dumps(json.loads(gpu.with_suffix(".json").read_text()))))
    procs = {"bokeh-render": bokeh_render(photos["astronaut"], "-m", model, "-o", tmp_path / "py"),
             "bokeh-native": native(build, "-m", model, photos["astronaut"], tmp_path / "out.png")}
    for name, proc in procs.items():
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr[-1500:])
        line = one_line(proc)
        assert "Traceback" not in proc.stderr and word in line, (name, line)
    assert not (tmp_path / "out.png").exists() and not list((tmp_path / "py").glob("*"))


def test_whole_numbers_written_as_floats_are_read_alike(build, models, photos, tmp_path):
    """JSON does not tell 128 from 128.0: both front ends take both (issue 31, case 14)."""
    model = edited(models["gpu"], tmp_path / "m", lambda s: s.update(input_size=[float(v) for v in s["input_size"]]))
    proc = bokeh_render(photos["odd"], "-m", model, "-o", tmp_path / "py")
    assert proc.returncode == 0, proc.stderr
    proc = native(build, "-m", model, "--accelerator", "cpu", photos["odd"], tmp_path / "odd.png")
    assert proc.returncode == 0, proc.stderr
    assert_same_picture(tmp_path / "odd.png", tmp_path / "py" / "odd.png", "float sizes")


def test_the_host_numbers_are_read_from_the_model_not_kept_in_either_runtime(build, models, photos, depth_maps,
                                                                              tmp_path):
    """A sidecar with another default aperture and centre box: both runtimes follow it."""
    model = edited(models["render"], tmp_path / "m",
                   lambda s: s["host"].update(default_aperture=3.0, centre_box=0.5))
    args = ["-m", model, "--depth", depth_maps["ramp16"]]
    proc = bokeh_render(photos["astronaut"], *args, "--json", "-o", tmp_path / "py")
    assert proc.returncode == 0, proc.stderr
    proc = native(build, *args, "--accelerator", "cpu", "--json", photos["astronaut"], tmp_path / "a.png")
    assert proc.returncode == 0, proc.stderr
    assert_same_picture(tmp_path / "a.png", tmp_path / "py" / "astronaut.png", "edited host numbers")
    default = tmp_path / "default.png"
    assert native(build, "-m", models["render"], "--depth", depth_maps["ramp16"], "--accelerator", "cpu",
                  photos["astronaut"], default).returncode == 0
    assert agreement(read(default), read(tmp_path / "a.png"))[0] < 45, "the edited aperture changed nothing"


@pytest.mark.parametrize("aperture", ["1e6", "inf", "nan"])
def test_an_aperture_beyond_the_contract_is_refused_by_both_front_ends(build, models, photos, depth_maps, aperture,
                                                                       tmp_path):
    args = ["-m", models["render"], "--depth", depth_maps["odd8"], "--aperture", aperture]     # the photo's own size
    py = bokeh_render(photos["odd"], *args, "-o", tmp_path / "py")
    c = native(build, *args, photos["odd"], tmp_path / "out.png")
    for name, proc in (("bokeh-render", py), ("bokeh-native", c)):
        assert proc.returncode == 2 and "aperture" in one_line(proc), (name, proc.stderr)
    assert not (tmp_path / "out.png").exists()


def test_the_segmenter_given_as_the_model_is_refused_alike(build, portrait, photos, tmp_path):
    segmenter = next(portrait.glob("*segmenter*.tflite"))
    for proc in (bokeh_render(photos["astronaut"], "-m", segmenter, "-o", tmp_path / "py"),
                 native(build, "-m", segmenter, photos["astronaut"], tmp_path / "out.png")):
        assert proc.returncode == 2 and "person segmenter" in one_line(proc), proc.stderr


GPU_REFUSAL = ("not for LiteRT's GPU accelerator: not verified there at export ({reason}); the gpu track is the "
               "model for GPUs (export-tflite --track gpu); run this one on the CPU")


@pytest.mark.parametrize("case", ["cpu", "int8", "lone cpu"])
def test_a_cpu_track_model_asked_for_the_gpu_gets_the_same_line_from_every_front_end(build, java_classes, models,
                                                                                      photos, case, tmp_path):
    """F9, issue 35: the cpu track is made for the CPU. On LiteRT's GPU accelerator its tiny backbone fails
    WebGPU validation (bokeh-render said 'Binding size ... is zero' and leaked LiteRT's INFO lines) or,
    where nothing reads the accelerator's log, computes garbage (libbokeh: 13.8 dB against the CPU). Every
    front end refuses it with one line naming the gpu track, exit 2, nothing written; auto keeps it on
    the CPU; export-tflite --check-gpu answers the same."""
    model = alone(models["cpu"], tmp_path / "alone") if case == "lone cpu" else models[case]
    precision = "int8" if case == "int8" else "float32"
    expected = f"{model}: " + GPU_REFUSAL.format(reason=f"{precision} export: made for the CPU, not run on the "
                                                        "GPU accelerator")
    out = tmp_path / "out.png"
    procs = {"bokeh-render": bokeh_render(photos["astronaut"], "-m", model, "-o", tmp_path / "py", "--backend",
                                          "litert-gpu"),
             "bokeh-native": native(build, "-m", model, "--accelerator", "gpu", photos["astronaut"], out)}
    for name, proc in procs.items():
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (name, proc.returncode, proc.stderr)
        assert one_line(proc) == f"{name}: error: {expected}", name
    assert not out.exists() and not list((tmp_path / "py").glob("*"))
    proc = java(build, java_classes, model, photos["astronaut"], tmp_path / "java.png", "gpu")
    assert proc.returncode != 0 and f"BokehException: {expected}" in proc.stderr, proc.stderr
    assert not (tmp_path / "java.png").exists()
    check = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--check-gpu", str(model)],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 1 and check.stdout.splitlines()[-1] == expected, check.stdout + check.stderr
    proc = native(build, "-m", model, "--accelerator", "auto", "--json", photos["odd"], tmp_path / "auto.png")
    assert proc.returncode == 0 and json.loads(proc.stdout)["accelerator"] == "cpu", proc.stderr


def test_an_untrained_model_says_so_on_every_render_in_both_front_ends(build, models, photos, depth_maps, tmp_path):
    """Issue 35, case 3: seeded weights blur the whole photo; the render says so (F8)."""
    proc = bokeh_render(photos["odd"], "-m", models["gpu"], "--json", "-o", tmp_path / "py")
    assert proc.returncode == 0 and json.loads(proc.stdout)["weights"] == "untrained", proc.stderr
    assert "untrained weights" in proc.stderr.strip().splitlines()[-1]
    proc = native(build, "-m", models["gpu"], "--accelerator", "cpu", "--json", photos["odd"], tmp_path / "c.png")
    assert proc.returncode == 0 and json.loads(proc.stdout)["weights"] == "untrained", proc.stderr
    assert "untrained weights" in one_line(proc) and str(models["gpu"]) in one_line(proc)
    render = ["-m", models["render"], "--depth", depth_maps["odd8"]]        # analytic: nothing to say
    proc = bokeh_render(photos["odd"], *render, "--json", "-o", tmp_path / "py_render")
    assert proc.returncode == 0 and "untrained weights" not in proc.stderr
    assert json.loads(proc.stdout)["weights"] == "analytic"
    proc = native(build, *render, "--accelerator", "cpu", photos["odd"], tmp_path / "r.png")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_malformed_sidecars_and_a_lone_tflite_under_the_sanitizers(asan_build, models, photos, tmp_path):
    """Issue 31, build item 8: the bad-input cases under ASan, UBSan and LeakSanitizer, not only a missing file."""
    from native_support import asan_env, assert_clean
    gpu = models["gpu"]
    runs = {"lone": (alone(gpu, tmp_path / "lone"), 0)}
    for i, (name, (edit, _)) in enumerate(SIDECAR_EDITS.items()):
        runs[name] = (edited(gpu, tmp_path / f"e{i}", edit), 2)
    text = json.dumps(json.loads(gpu.with_suffix(".json").read_text()))
    for i, (name, (change, _)) in enumerate(SIDECAR_TEXTS.items()):
        runs[name] = (edited(gpu, tmp_path / f"t{i}", text=change(text)), 2)
    for i, (name, (model, code)) in enumerate(runs.items()):
        out = tmp_path / f"out{i}.png"
        proc = native(asan_build, "-m", model, "--accelerator", "cpu", photos["odd"], out, env=asan_env())
        assert_clean(proc, name)
        assert proc.returncode == code and out.exists() == (code == 0), (name, proc.stderr[-1500:])
