"""What the native tests share: building libbokeh with CMake, running bokeh-native, bokeh-render
and the Java class as a user runs them, and comparing their pictures. The session fixtures that
use it (build, photos, models, portrait, ...) are in conftest.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "android" / "native"
JAVA_SRC = ROOT / "android" / "java"
PSNR_GATE, OFF_GATE = 50.0, 0.005
PORTRAIT_SIZE = "128x192"


def litert_dir() -> Path:
    import ai_edge_litert
    return Path(ai_edge_litert.__file__).parent


def cmake_build(build: Path, *flags: str) -> Path:
    for cmd in (["cmake", "-S", str(NATIVE), "-B", str(build), f"-DLITERT_DIR={litert_dir()}",
                 "-DCMAKE_BUILD_TYPE=Release", *flags],
                ["cmake", "--build", str(build), "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return build


def native(build: Path, *args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(build / "bokeh-native"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def python_run(*args, out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", *map(str, args), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def python_render(*args, out: Path) -> Path:
    python_run(*args, out=out)
    return out


def read(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert pixels is not None, f"{path} is not a readable image"
    return pixels


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, share of 8-bit values off by more than 1)."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8, (a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return (float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)), float(np.mean(diff > 1))


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {proc.stderr!r}"
    return lines[0]


def stderr_on_a_terminal(command: list, env: dict | None = None, timeout: float = 600) -> tuple[int, str]:
    """(exit code, what it wrote on stderr) for `command` run with its stderr on a terminal (a
    pseudo-terminal) and stdout discarded: the notes our commands give only to a person."""
    import pty
    master, terminal = pty.openpty()
    proc = subprocess.run([str(c) for c in command], stdout=subprocess.DEVNULL, stderr=terminal, timeout=timeout,
                          env={**os.environ, **(env or {})})
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:          # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.returncode, seen.decode(errors="replace").replace("\r", "")


def gpu_env(adapter) -> dict:
    return dict(adapter.env)



def java_tool(name: str) -> str:
    for home in (os.environ.get("JAVA_HOME"), "/usr/lib/jvm/java-17-openjdk-amd64"):
        if home and (Path(home) / "bin" / name).is_file():
            return str(Path(home) / "bin" / name)
    found = shutil.which(name)
    assert found, f"{name} not found: install openjdk-17-jdk-headless"
    return found


def java(build: Path, classes: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([java_tool("java"), f"-Djava.library.path={build}", "-cp", str(classes), "RenderPng",
                           *map(str, args)], capture_output=True, text=True, timeout=300)


def asan_env(extra: dict | None = None) -> dict:
    """LiteRT dlopens its GPU accelerator library when the environment is created and
    dlcloses it when it is destroyed; memory that library's static constructors allocated
    is then unreachable, and LeakSanitizer reports it against an unloaded module (LiteRT's
    leak, not ours, and no suppression can name a module that is gone). Preloading the
    library keeps it mapped to the end, so that memory stays reachable: no suppression
    file is needed, and every other leak is still reported. libasan must come first."""
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                             check=True).stdout.strip()
    accelerator = litert_dir() / "libLiteRtWebGpuAccelerator.so"
    return {"LD_PRELOAD": f"{libasan} {accelerator}", "BOKEH_NATIVE_VERBOSE": "1",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=98", **(extra or {})}


def assert_clean(proc: subprocess.CompletedProcess, what: str) -> None:
    reports = [line for line in proc.stderr.splitlines()
               if "Sanitizer" in line or "runtime error:" in line or "SUMMARY:" in line]
    assert not reports and proc.returncode in (0, 2), f"{what}: rc {proc.returncode}\n" + "\n".join(reports[:20])


