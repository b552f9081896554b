"""export-tflite as users type it: exit codes, one-line errors, the GPU linter."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bokehlite.export.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def one_error_line(result) -> str:
    lines = [l for l in result.stderr.splitlines() if "error" in l]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("size, multiple", [("1000x1536", "128"), ("1024x1500", "128")])
def test_bad_size_exits_2_and_names_the_multiple(tmp_path, size, multiple):
    result = run("--track", "cpu", "--input-size", size, "-o", str(tmp_path))
    assert result.returncode == 2
    assert f"multiples of {multiple}" in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_malformed_size_is_a_usage_error(tmp_path):
    result = run("--input-size", "big", "-o", str(tmp_path))
    assert result.returncode == 2 and "expected HxW" in result.stderr


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_bad_checkpoint_exits_2_with_one_line(tmp_path, content):
    ckpt = tmp_path / "bad.pth"
    ckpt.write_bytes(content)
    result = run("--track", "gpu", "--tiny", "--input-size", "128x192", "--checkpoint", str(ckpt),
                 "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "checkpoint" in one_error_line(result)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_missing_checkpoint_exits_2(tmp_path):
    result = run("--checkpoint", str(tmp_path / "nope.pth"), "-o", str(tmp_path))
    assert result.returncode == 2 and "not found" in one_error_line(result)


def test_unwritable_output_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = run("--track", "gpu", "--tiny", "--input-size", "128x192", "-o", str(blocker / "out"))
    assert result.returncode == 2 and "cannot write" in one_error_line(result)


def test_check_gpu_passes_our_export_and_reports_json(tiny_export):
    path, _ = tiny_export("gpu")
    result = run("--check-gpu", str(path), "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["compatible"] is True and report["ops"] > 50
    assert report["gpu_accelerator"]["compatible"] in (True, None)    # None: no Vulkan adapter here


def test_check_gpu_rejects_a_non_model_file(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    result = run("--check-gpu", str(junk))
    assert result.returncode == 2 and "not a TFLite model" in one_error_line(result)


def test_default_output_is_artifacts_under_the_working_folder(tmp_path):
    """The README's main command writes ./artifacts (relative paths survive onnx2tf's chdir)."""
    result = run("--track", "cpu", "--tiny", "--input-size", "128x128", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "UNTRAINED" in result.stderr and "[4/7]" in result.stderr
    names = sorted(p.name for p in (tmp_path / "artifacts").iterdir())
    assert names == [f"bokeh_cpu_128x128.{ext}" for ext in ("json", "log", "onnx", "tflite")]


def test_sigterm_during_conversion_cleans_up_and_exits_143(tmp_path):
    """Stopped while onnx2tf runs: the converter child dies, the work folder goes, one line."""
    import signal
    import time
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "bokehlite.export.cli", "--track", "cpu", "--tiny",
                             "--input-size", "128x256", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob(".bokehlite-work.bokeh_cpu_128x256.*/convert.log")):
        time.sleep(0.2)
    assert list(out.glob(".bokehlite-work.bokeh_cpu_128x256.*/convert.log")), "the conversion step never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "export-tflite: interrupted (SIGTERM)"
    assert "Traceback" not in err
    assert [p.name for p in out.iterdir()] == []


def _killed_work_dir(parent, stem: str, owner: dict | None = None) -> Path:
    """A work folder whose process died without cleaning up (os._exit skips every finaliser);
    `owner` overwrites fields of its marker."""
    code = ("import json, os, sys; from pathlib import Path; from bokehlite.files import work_dir, WORK_MARKER\n"
            "w = work_dir(sys.argv[1], sys.argv[2]); (Path(w.name) / 'weights.bin').write_bytes(b'x' * 1000)\n"
            "m = Path(w.name) / WORK_MARKER; m.write_text(json.dumps({**json.loads(m.read_text()), "
            "**json.loads(sys.argv[3])}))\n"
            "print(w.name, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code, str(parent), stem, json.dumps(owner or {})],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def test_stale_work_folders_of_dead_processes_are_removed_and_reported(tmp_path):
    from bokehlite.files import remove_stale_work_dirs, work_dir
    stale = _killed_work_dir(tmp_path, "bokeh_cpu_128x256")
    with work_dir(tmp_path, "bokeh_gpu_128x192") as live:
        count, freed = remove_stale_work_dirs(tmp_path)
        assert count == 1 and freed > 1000
        assert not stale.exists() and Path(live).exists()


def test_stale_cleanup_leaves_folders_it_cannot_prove_are_its_own(tmp_path):
    """A user's dot-folder shaped like a work folder, one with no marker, and one whose marker
    names another host or PID namespace (a live export elsewhere sharing the folder) all stay."""
    from bokehlite.files import remove_stale_work_dirs
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    backup = tmp_path / ".backup.2024.old"
    backup.mkdir()
    (backup / "precious.txt").write_text("keep me")
    old_style = tmp_path / f".bokeh_cpu_128x256.{dead}.abc123"      # the pattern alone, no marker
    old_style.mkdir()
    unmarked = tmp_path / f".bokehlite-work.bokeh_cpu_128x256.{dead}.abc123"
    unmarked.mkdir()
    other_host = _killed_work_dir(tmp_path, "bokeh_gpu_128x192", {"host": "another-machine"})
    other_ns = _killed_work_dir(tmp_path, "bokeh_gpu_128x192", {"pid_namespace": "pid:[1]"})
    assert remove_stale_work_dirs(tmp_path) == (0, 0)
    assert (backup / "precious.txt").read_text() == "keep me"
    assert old_style.is_dir() and unmarked.is_dir() and other_host.is_dir() and other_ns.is_dir()


@pytest.mark.parametrize("tool, args, code, says", [
    ("fp16_tool", ["--help"], 0, "usage: python -m bokehlite.export.fp16_tool"),
    ("int8_layers_tool", [], 2, "usage: python -m bokehlite.export.int8_layers_tool FLOAT.tflite"),
    ("int8_layers_tool", ["no_such.tflite", "no_such_dir"], 2, "no_such"),
])
def test_the_developer_tools_answer_from_their_own_modules(tool, args, code, says):
    """docs/export.md's `python -m bokehlite.export.fp16_tool` and `...int8_layers_tool`."""
    proc = subprocess.run([sys.executable, "-m", f"bokehlite.export.{tool}", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stdout + proc.stderr
