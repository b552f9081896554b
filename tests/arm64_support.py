"""What tests/test_arm64.py needs: the cross build for arm64, running its programs under
qemu-user (android/native/run-arm64), and the Android ABI check.

Nothing here touches the network. The arm64 LiteRT comes from BOKEHLITE_LITERT_ARM64 (the
folder `android/native/fetch-litert-arm64 DIR` printed) and the Android build from
BOKEHLITE_LITERT_ANDROID (the folder `fetch-litert-arm64 --android DIR` printed). Where a tool
or one of them is missing the tests skip with one line, unless BOKEHLITE_REQUIRE_ARM64 is set
(.ci/run sets it): then they fail, since in CI a missing piece is a broken install.
"""
from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from native_support import NATIVE

RUN_ARM64 = NATIVE / "run-arm64"
FETCH = NATIVE / "fetch-litert-arm64"
TOOLCHAIN = NATIVE / "cmake" / "aarch64-linux-gnu.cmake"
TRIPLET = "aarch64-linux-gnu"
# The emulated cores: `max` (ARMv8.x with dotprod and i8mm: XNNPACK's i8mm int8 kernels) and
# Cortex-A76 (ARMv8.2 with dotprod: the dotprod kernels; a 2018-2022 phone's big core). The
# PyPI libLiteRt.so needs ARMv8.2: cortex-a53/a72 die at once with SIGILL.
CORES = ("max", "cortex-a76")
# One thread under emulation, always: XNNPACK's pool spins while it waits, and spinning on
# qemu-user's emulated atomics is pathological (2 threads: no end after 19 minutes).
ONE_THREAD = ("--accelerator", "cpu", "--threads", "1", "--runs", "1")


def _unavailable(what: str) -> None:
    if os.environ.get("BOKEHLITE_REQUIRE_ARM64"):
        pytest.fail(f"BOKEHLITE_REQUIRE_ARM64 is set, but {what}")
    pytest.skip(f"arm64 under qemu: {what} (set BOKEHLITE_REQUIRE_ARM64=1 to fail instead)")


def _env_folder(var: str, library: str, fetch: str) -> Path:
    value = os.environ.get(var)
    if not value:
        _unavailable(f"{var} is not set (the folder `{fetch}` prints)")
    path = Path(value)
    folder = path.parent if path.is_file() else path
    if not (folder / library).is_file():
        _unavailable(f"{var}={value} holds no {library} (run `{fetch}`)")
    return folder


def require_tools() -> Path:
    """The cross compiler, qemu-user, a mount namespace and the arm64 libraries, and the arm64
    LiteRT folder: that folder, or a skip (a failure under BOKEHLITE_REQUIRE_ARM64) naming
    what is missing."""
    missing = [tool for tool in (f"{TRIPLET}-gcc", "unshare", "cmake", "pkg-config") if not shutil.which(tool)]
    if not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")):
        missing.append("qemu-aarch64-static")
    for path in (Path(f"/usr/{TRIPLET}/lib/libstdc++.so.6"),
                 *(Path(f"/usr/lib/{TRIPLET}/pkgconfig/{pc}.pc") for pc in ("libpng", "libjpeg", "libcjson"))):
        if not path.exists():
            missing.append(str(path))
    if missing:
        _unavailable("missing " + ", ".join(missing) + " (apt: gcc-aarch64-linux-gnu libc6-dev-arm64-cross "
                     "libstdc++6-arm64-cross qemu-user-static libpng-dev:arm64 libjpeg62-turbo-dev:arm64 "
                     "libcjson-dev:arm64)")
    probe = subprocess.run(["unshare", *([] if os.geteuid() == 0 else ["-r"]), "-m", "true"], capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        _unavailable(f"no private mount namespace for the arm64 /proc/cpuinfo: {probe.stderr.strip()}")
    return _env_folder("BOKEHLITE_LITERT_ARM64", "libLiteRt.so", f"{FETCH.relative_to(NATIVE.parents[1])} DIR")


def require_android() -> Path:
    """The Android build's liblitert-lm.so (litert-lm-api's android_23_arm64_v8a wheel)."""
    folder = _env_folder("BOKEHLITE_LITERT_ANDROID", "liblitert-lm.so",
                         f"{FETCH.relative_to(NATIVE.parents[1])} --android DIR")
    return folder / "liblitert-lm.so"


def cross_build(build: Path, litert: Path, *flags: str) -> Path:
    for cmd in (["cmake", "-S", str(NATIVE), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                 f"-DLITERT_DIR={litert}", "-DCMAKE_BUILD_TYPE=Release", *flags],
                ["cmake", "--build", str(build), "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return build


def run_arm64(program: Path, *args, cpu: str, litert: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """An arm64 program under qemu-user with the arm64 /proc/cpuinfo (android/native/run-arm64).
    No core files: qemu-user writes one into the working folder when the program dies of a signal."""
    return subprocess.run([str(RUN_ARM64), "--cpu", cpu, "--litert", str(litert), str(program), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_no_core_files)


def _no_core_files() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def elf_machine(path: Path) -> int:
    head = Path(path).read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(head[18:20], "little")


# --- the Android ABI check ---------------------------------------------------------------------

def _nm(library: Path, *flags: str) -> str:
    nm = shutil.which(f"{TRIPLET}-nm") or "nm"
    return subprocess.run([nm, "-D", *flags, str(library)], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def litert_imports(library: Path) -> set[str]:
    """The LiteRt* symbols `library` imports (nm -D --undefined-only), without their version."""
    return {m.group(1) for m in re.finditer(r"^\s+[Uw] (LiteRt\w+)(?:@\S+)?$", _nm(library, "--undefined-only"), re.M)}


def litert_exports(library: Path) -> set[str]:
    """The LiteRt* functions `library` exports (nm -D --defined-only: T, W or i), without their version."""
    return {m.group(1) for m in re.finditer(r"^[0-9a-f]+ [TWi] (LiteRt\w+)(?:@+\S+)?$",
                                            _nm(library, "--defined-only"), re.M)}


def android_abi_missing(library: Path, android: Path) -> list[str]:
    """The LiteRt* names `library` imports that the Android build does not export."""
    return sorted(litert_imports(library) - litert_exports(android))


def check_android_abi(library: Path, android: Path) -> set[str]:
    """Fail with the missing names; else the imported names."""
    imported = litert_imports(library)
    missing = android_abi_missing(library, android)
    assert not missing, (f"{library.name} imports {len(missing)} LiteRt function(s) that the Android build "
                         f"({android}) does not export: {', '.join(missing)}")
    return imported


def needed(library: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
