"""bokeh-render: batches, outputs, exit codes, and one stderr line per bad input."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bokehlite.runtime.cli import main
from bokehlite.runtime.header import sniff
from bokehlite.runtime.progress import Progress

PHOTOS = {"a.jpg": (61, 93), "b.png": (90, 45), "c.webp": (40, 40), "d.bmp": (33, 71), "e.tif": (47, 31)}


@pytest.fixture(scope="session")
def gpu_model(tiny_export):
    return tiny_export("gpu")[0]


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in PHOTOS.items():
        assert cv2.imwrite(str(folder / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return folder


def run(args, capsys) -> tuple[int, str, list[str]]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_batch_keeps_names_formats_and_sizes(gpu_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run([photos, "-m", gpu_model, "-o", out], capsys)
    assert code == 0, err
    for name, (h, w) in PHOTOS.items():
        written = out / name
        assert sniff(written.read_bytes()).format == sniff((photos / name).read_bytes()).format
        assert cv2.imread(str(written), cv2.IMREAD_UNCHANGED).shape == (h, w, 3)
        assert str(written) in stdout
    assert len(err) == 1 and "rendered 5 of 5" in err[0]
    assert no_temp_files(out)


def test_folder_layout_is_kept_and_outputs_inside_an_input_folder_are_skipped(gpu_model, photos, capsys):
    (photos / "sub").mkdir()
    shutil.copyfile(photos / "a.jpg", photos / "sub" / "x.jpg")
    out = photos / "rendered"                       # inside the input folder
    assert run([photos, "-m", gpu_model, "-o", out], capsys)[0] == 0
    assert (out / "sub" / "x.jpg").is_file()
    code, _, err = run([photos, "-m", gpu_model, "-o", out], capsys)      # a second run: same 6 inputs
    assert code == 0 and "rendered 6 of 6" in err[-1]


def test_sixteen_bit_grey_and_rgba_files_come_back_in_kind(gpu_model, tmp_path, capsys):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65535, (37, 53, 3), dtype=np.uint16)
    rgba = rng.integers(0, 255, (29, 41, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    cv2.imwrite(str(tmp_path / "grey.png"), deep[..., 0])
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    out = tmp_path / "out"
    code, _, err = run([tmp_path / "deep.png", tmp_path / "grey.png", tmp_path / "alpha.png",
                        "-m", gpu_model, "-o", out], capsys)
    assert code == 0, err
    result = {n: cv2.imread(str(out / n), cv2.IMREAD_UNCHANGED) for n in ("deep.png", "grey.png", "alpha.png")}
    assert result["deep.png"].dtype == np.uint16 and result["deep.png"].shape == deep.shape
    assert result["grey.png"].dtype == np.uint16 and result["grey.png"].shape == deep.shape[:2]
    np.testing.assert_array_equal(result["alpha.png"][..., 3], rgba[..., 3])


def test_colours_survive_the_file_round_trip(gpu_model, tmp_path, capsys):
    bgr = np.zeros((60, 120, 3), np.uint8)
    bgr[:, :40], bgr[:, 40:80], bgr[:, 80:] = (0, 0, 255), (0, 255, 0), (255, 0, 0)   # red, green, blue
    cv2.imwrite(str(tmp_path / "rgb.png"), bgr)
    assert run([tmp_path / "rgb.png", "-m", gpu_model, "-o", tmp_path / "out"], capsys)[0] == 0
    result = cv2.imread(str(tmp_path / "out" / "rgb.png")).astype(int)
    for col, channel in ((20, 2), (60, 1), (100, 0)):          # BGR channel of red, green, blue
        pixel = result[30, col]
        assert pixel[channel] > 200 and np.delete(pixel, channel).max() < 60, (col, pixel)


def test_per_file_failures_do_not_stop_the_batch(gpu_model, photos, tmp_path, capsys):
    bad = {"empty.jpg": b"", "text.png": b"hello\n",
           "cut.jpg": (photos / "a.jpg").read_bytes()[:200]}
    for name, data in bad.items():
        (photos / name).write_bytes(data)
    out = tmp_path / "out"
    code, _, err = run([photos, tmp_path / "missing.jpg", "-m", gpu_model, "-o", out], capsys)
    assert code == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(PHOTOS)      # good ones written, nothing else
    failures = [line for line in err if "rendered" not in line]
    assert len(failures) == 4                                           # one line per bad file
    assert any("empty.jpg: file is empty" in f for f in failures)
    assert any("text.png: not an image" in f for f in failures)
    assert any("cut.jpg: truncated or corrupt JPEG" in f for f in failures)
    assert any("missing.jpg: no such file" in f for f in failures)
    summary = err[-1]
    assert "4 failed" in summary and all(n in summary for n in (*bad, "missing.jpg"))


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "not-image", "0x0", "1x1", "too-big"])
def test_each_bad_photo_gives_one_stderr_line_and_exit_2(gpu_model, tmp_path, capsys, case):
    good = cv2.imencode(".jpg", np.full((80, 80, 3), 128, np.uint8))[1].tobytes()
    data = {"empty": b"", "truncated": good[:len(good) // 2], "not-image": b"%PDF-1.4\n",
            "0x0": bytes.fromhex("89504e470d0a1a0a0000000d494844520000000000000000080200000000000000"),
            "1x1": cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "too-big": good}.get(case)
    path = tmp_path / "photo.jpg"
    if data is not None:
        path.write_bytes(data)
    extra = ["--max-pixels", "5000"] if case == "too-big" else []
    code, stdout, err = run([path, "-m", gpu_model, "-o", tmp_path / "out", *extra], capsys)
    assert code == 2 and stdout == ""
    assert len(err) == 1 and err[0].startswith("bokeh-render: ") and str(path) in err[0]
    assert list((tmp_path / "out").iterdir()) == []


def test_an_input_is_never_overwritten(gpu_model, photos, capsys):
    before = (photos / "a.jpg").read_bytes()
    code, _, err = run([photos / "a.jpg", "-m", gpu_model, "-o", photos], capsys)
    assert code == 2 and len(err) == 1 and "would overwrite an input" in err[0]
    assert (photos / "a.jpg").read_bytes() == before


def test_the_input_folder_as_output_says_so_and_suffix_writes_beside_the_photos(gpu_model, photos, capsys):
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    code, _, err = run([photos, "-m", gpu_model, "-o", photos], capsys)
    assert code == 2 and len(err) == 1
    assert "is the input folder" in err[0] and "--suffix" in err[0] and "no photos found" not in err[0]
    code, _, err = run([photos, "-m", gpu_model, "-o", photos, "--suffix", "_bokeh"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in photos.iterdir())
    assert names == sorted([*PHOTOS, *(f"{Path(n).stem}_bokeh{Path(n).suffix}" for n in PHOTOS)])
    assert {n: (photos / n).read_bytes() for n in PHOTOS} == before
    code, _, err = run([photos, "-m", gpu_model, "-o", photos, "--suffix", "_bokeh"], capsys)
    assert code == 0 and "rendered 5 of 5" in err[-1]         # earlier outputs are not inputs


def test_outputs_get_the_permissions_of_a_plain_open(gpu_model, photos, tmp_path, capsys):
    import os
    import stat
    old = os.umask(0o022)
    try:
        code, _, err = run([photos / "a.jpg", "-m", gpu_model, "-o", tmp_path / "out"], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE((tmp_path / "out" / "a.jpg").stat().st_mode) == 0o644


def test_two_inputs_with_one_name_do_not_share_an_output(gpu_model, photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(photos / "a.jpg", other / "a.jpg")
    code, _, err = run([photos / "a.jpg", other / "a.jpg", "-m", gpu_model, "-o", tmp_path / "out"], capsys)
    assert code == 2 and any("already written for" in line for line in err)


def test_unwritable_output_folder_is_one_line_and_exit_2(gpu_model, photos, tmp_path, capsys):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    for target in (a_file / "out", a_file):       # under a regular file; a regular file itself
        code, stdout, err = run([photos, "-m", gpu_model, "-o", target], capsys)
        assert code == 2 and stdout == "" and len(err) == 1
        assert err[0].startswith("bokeh-render: error: cannot write to output folder")


@pytest.mark.parametrize("damage", ["corrupt", "wrong-io"])
def test_bad_model_is_one_line_and_exit_2(gpu_model, photos, tmp_path, capsys, damage):
    model = tmp_path / gpu_model.name
    if damage == "corrupt":
        model.write_bytes(gpu_model.read_bytes()[:5000])
        shutil.copyfile(gpu_model.with_suffix(".json"), model.with_suffix(".json"))
    else:
        shutil.copyfile(gpu_model, model)
        sidecar = json.loads(gpu_model.with_suffix(".json").read_text())
        sidecar["outputs"] = [o for o in sidecar["outputs"] if o["name"] != "blur"]
        model.with_suffix(".json").write_text(json.dumps(sidecar))
    code, stdout, err = run([photos, "-m", model, "-o", tmp_path / "out"], capsys)
    assert code == 2 and stdout == "" and len(err) == 1 and str(model) in err[0]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_default_model_comes_from_artifacts_or_explains_how_to_export(gpu_model, photos, tmp_path,
                                                                      capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run([photos / "a.jpg", "-o", "out"], capsys)
    assert code == 2 and len(err) == 1
    assert "artifacts/bokeh_gpu_1024x1536.tflite" in err[0] and "export-tflite --track gpu" in err[0]
    (tmp_path / "artifacts").mkdir()
    for suffix in (".tflite", ".json"):
        shutil.copyfile(gpu_model.with_suffix(suffix), tmp_path / "artifacts" / f"bokeh_gpu_1024x1536{suffix}")
    assert run([photos / "a.jpg", "-o", "out"], capsys)[0] == 0
    assert (tmp_path / "out" / "a.jpg").is_file()


def test_json_report_and_flags(gpu_model, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    code, stdout, _ = run([photos, "-m", gpu_model, "-o", tmp_path / "out", "--json", "--threads", "1",
                           "--no-xnnpack", "--backend", "litert"], capsys)
    report = json.loads(stdout)
    assert code == 2
    assert (report["backend"], report["threads"], report["xnnpack"]) == ("litert", 1, False)
    assert report["rendered"] == 5 and report["failed"] == 1
    from bokehlite.host import peak_rss_mb
    # This process's own high-water mark. Linux folds the current RSS into VmHWM lazily, so
    # after memory is handed back the mark read later can sit a little below the report's.
    assert 10 < report["peak_rss_mb"] <= peak_rss_mb() * 1.02 + 0.1
    failed = [f for f in report["files"] if not f["ok"]]
    assert failed[0]["input"].endswith("broken.png") and failed[0]["error"]


def test_tflite_runtime_backend_failure_is_one_line(gpu_model, photos, tmp_path, capfd):
    code = main([str(photos), "-m", str(gpu_model), "-o", str(tmp_path / "out"), "--backend", "tflite_runtime"])
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    if code == 0:
        pytest.skip("tflite_runtime works in this environment")
    assert code == 2 and len(err) == 1 and "numpy<2" in err[0]


def test_bad_flags_are_one_line_and_exit_2(capsys):
    for args in (["x.jpg"], ["x.jpg", "-o", "o", "--threads", "0"], ["x.jpg", "-o", "o", "--backend", "onnx"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and "see bokeh-render --help" in err[0]


def test_console_script_help_has_examples():
    script = Path(sys.executable).parent / "bokeh-render"
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "examples:" in result.stdout and "--max-pixels" in result.stdout


def test_progress_bar_draws_counts_and_clears_before_messages():
    stream = io.StringIO()
    bar = Progress(3, stream, enabled=True)
    bar.update(2, "b.png")
    assert "2/3 b.png" in stream.getvalue()
    bar.message("bokeh-render: c.png: file is empty")
    assert stream.getvalue().endswith("\rbokeh-render: c.png: file is empty\n")
    quiet = io.StringIO()
    Progress(3, quiet).update(1)              # not a terminal: no bar at all
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("name", ["tagged.jpg", "tagged.png"])
def test_a_colour_profile_and_exif_survive_a_render(gpu_model, tmp_path, capsys, name):
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + bytes.fromhex("010f0002000000024100") + b"\x00" * 4
    pixels = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    ok, buf = cv2.imencodeWithMetadata(Path(name).suffix, pixels, [cv2.IMAGE_METADATA_ICCP, cv2.IMAGE_METADATA_EXIF],
                                       [np.frombuffer(icc, np.uint8), np.frombuffer(exif, np.uint8)], [])
    (tmp_path / name).write_bytes(buf.tobytes())
    code, _, err = run([tmp_path / name, "-m", gpu_model, "-o", tmp_path / "out"], capsys)
    assert code == 0, err
    _, kinds, blobs = cv2.imdecodeWithMetadata(np.fromfile(tmp_path / "out" / name, np.uint8), cv2.IMREAD_UNCHANGED)
    kept = {int(k): np.asarray(b).tobytes() for k, b in zip(np.ravel(kinds), blobs)}
    assert kept.get(cv2.IMAGE_METADATA_ICCP) == icc and kept.get(cv2.IMAGE_METADATA_EXIF) == exif


def test_the_summary_counts_one_thread_in_the_singular(gpu_model, photos, tmp_path, capsys):
    code, _, err = run([photos / "a.jpg", "-m", gpu_model, "-o", tmp_path / "out", "--threads", "1"], capsys)
    assert code == 0 and "(litert, 1 thread)" in err[-1], err


def test_a_photo_given_as_the_model_is_called_not_a_tflite_model(photos, tmp_path, capsys):
    code, _, err = run([photos / "b.png", "-m", photos / "a.jpg", "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(err) == 1 and "not a TFLite model" in err[0] and "sidecar" not in err[0], err
