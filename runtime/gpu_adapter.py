"""The Vulkan adapter for LiteRT's GPU accelerator (the `litert-gpu` backend, litert_gpu.py),
found with nothing for the user to set:

1. the user's own Vulkan driver: the environment as it is (a VK_ICD_FILENAMES the user set
   is an explicit choice, and then the only one tried);
2. else SwiftShader, a software Vulkan device (Debian: `apt-get install chromium-common
   libvulkan1`): VK_ICD_FILENAMES pointed at its ICD, with a writable XDG_RUNTIME_DIR.

Each candidate is tried by compiling and running a tiny embedded model in a child process
(gpu_child.py, started by `run_child`). Listing Vulkan devices is not enough: a device can
exist and still be refused by Dawn (Mesa's lavapipe 22.3 lacks
shaderUniform*ArrayDynamicIndexing; the loader's mock ICD has too small limits), and a broken
driver can crash; neither may take the caller down. The answer is cached for the process,
and the chosen variables are set in this process's environment before the first compile.

The adapter's name is the accelerator's own log line "Selected adapter: NAME, arch=...,
backend=Vulkan, adapterType=CPU / Software": it names the adapter Dawn actually picked
(with several devices, the loader's list cannot say which) and whether it is a software
device. Should that line ever change, the probe falls back to the first device the Vulkan
loader lists (`vulkan_device_names`, vkGetPhysicalDeviceProperties through ctypes).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BackendError

# Debian's chromium-common installs SwiftShader's Vulkan ICD (and libvk_swiftshader.so) here.
SWIFTSHADER_ICDS = ("/usr/lib/chromium/vk_swiftshader_icd.json",)
ICD_VARIABLES = ("VK_ICD_FILENAMES", "VK_DRIVER_FILES")    # the Vulkan loader's driver choice
HOW_TO_GET_ONE = ("install your GPU's Vulkan driver, or SwiftShader, a software Vulkan device "
                  "(Debian/Ubuntu: apt-get install chromium-common libvulkan1)")
PROBE_TIMEOUT_S = 120
CHILD_MODULE = "bokehlite.runtime.gpu_child"     # the child process: probe, run, check
CHILD = f"import sys; from {CHILD_MODULE} import main; sys.exit(main(sys.argv[1:]))"
_SELECTED = re.compile(r"Selected adapter: (?P<name>.*?), arch=[^,]*, vendor=(?P<vendor>[^,]*), "
                       r"backend=(?P<backend>[^,]*), adapterType=(?P<type>[^\n]*)")


@dataclass(frozen=True)
class Adapter:
    """A Vulkan device that LiteRT's GPU accelerator can use, and how this process reaches it."""

    name: str                     # e.g. "SwiftShader Device (Subzero)"
    type: str                     # Dawn's adapter type: "CPU / Software", "Discrete GPU", ...
    backend: str = "Vulkan"
    icd: str | None = None        # the ICD we point the loader at; None: the system's own drivers
    env: dict = field(default_factory=dict, compare=False)   # variables set to reach it

    @property
    def software(self) -> bool:
        return "software" in self.type.lower() or "swiftshader" in self.name.lower()

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "backend": self.backend,
                "software": self.software, "icd": self.icd}

    def to_json(self) -> str:
        return json.dumps({**self.to_dict(), "env": self.env})

    @classmethod
    def from_json(cls, text: str) -> "Adapter":
        data = json.loads(text)
        return cls(data["name"], data["type"], data["backend"], data["icd"], data["env"])


_found: Adapter | str | None = None     # the cached answer: an adapter, or why there is none


def find_adapter(refresh: bool = False) -> Adapter:
    """The adapter the accelerator will use here (probed once per process); BackendError
    with one line saying how to get one when there is none."""
    global _found
    if _found is None or refresh:
        _found = _search()
    if isinstance(_found, str):
        raise BackendError(_found)
    return _found


def _search() -> Adapter | str:
    for variable in ICD_VARIABLES:
        if os.environ.get(variable) and (reason := _missing_driver(variable)):
            return reason
    tried = []
    candidates, notes = _candidates()
    for label, icd, extra in candidates:
        found = _probe(extra)
        if isinstance(found, dict):
            return Adapter(found["name"], found["type"], found["backend"], icd, extra)
        tried.append(f"{label}: {found}")
    return (f"no Vulkan adapter that LiteRT's GPU accelerator can use ({'; '.join(tried + notes)}); "
            f"{HOW_TO_GET_ONE}")


def _candidates() -> tuple[list[tuple[str, str | None, dict]], list[str]]:
    """[(label, icd, variables to set)], and notes on candidates that do not exist here."""
    for variable in ICD_VARIABLES:
        if os.environ.get(variable):
            return [(f"{variable}={os.environ[variable]}", os.environ[variable], {})], []
    candidates = [("the system's Vulkan drivers", None, {})]
    icds = [icd for icd in SWIFTSHADER_ICDS if os.path.isfile(icd)]
    for icd in icds:
        candidates.append((f"SwiftShader {icd}", icd, {"VK_ICD_FILENAMES": icd, **_runtime_dir()}))
    return candidates, [] if icds else [f"SwiftShader: not installed (no {SWIFTSHADER_ICDS[0]})"]


def _missing_driver(variable: str) -> str | None:
    """The one-line reason when `variable` names driver files that do not exist: then the
    user's setting is the problem, not a missing SwiftShader."""
    missing = [f for f in os.environ[variable].split(os.pathsep) if f and not os.path.isfile(f)]
    if not missing:
        return None
    return (f"no Vulkan adapter that LiteRT's GPU accelerator can use: {variable} names "
            f"{', '.join(missing)}, which does not exist; point it at an installed Vulkan driver's ICD "
            f"file, or unset it to use the system's drivers or SwiftShader")


def _runtime_dir() -> dict:
    """{"XDG_RUNTIME_DIR": a private folder} when the current one is missing or not writable
    (SwiftShader keeps files there); {} when the environment's own will do."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current) and os.access(current, os.W_OK | os.X_OK):
        return {}
    path = Path(tempfile.gettempdir()) / f"bokehlite-runtime-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return {}
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return {}                # not ours, or not private: the XDG rule for this folder
    return {"XDG_RUNTIME_DIR": str(path)}


def run_child(args: list[str], env: dict, timeout: float) -> tuple[dict | None, str]:
    """Run the child process `gpu_child.main(args)` in a fresh Python with `env` added to the
    environment: (the JSON object it printed last on stdout, or None with the reason in the
    log; its whole log).

    A crash (the accelerator can die of SIGILL or SIGSEGV) or a timeout gives None."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, *args], env={**os.environ, **env},
                              capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, _text(exc.stdout) + _text(exc.stderr) + f"\ntimed out after {timeout:.0f} s"
    log = done.stdout + done.stderr
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return None, log + f"\ncrashed ({name})"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line), log
            except json.JSONDecodeError:
                break
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return None, log + f"\nexited with code {done.returncode} and no result ({last[:300]})"


def _text(data) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def _probe(extra: dict) -> dict | str:
    """{"name", "type", "backend"} of the adapter the accelerator picks with these variables
    set, or why it picks none."""
    result, log = run_child(["probe"], extra, PROBE_TIMEOUT_S)
    if result is None:
        return f"the probe {log.strip().splitlines()[-1]}"
    if not result.get("ok"):
        return _why_no_adapter(log, result.get("error", "probe failed"))
    selected = parse_selected_adapter(log)
    if selected is None:
        devices = result.get("vulkan_devices") or ["unknown Vulkan device"]
        selected = {"name": devices[0], "type": "unknown", "backend": "Vulkan"}
    return selected


def parse_selected_adapter(log: str) -> dict | None:
    """{"name", "type", "backend", "vendor"} from the accelerator's "Selected adapter" line."""
    match = _SELECTED.search(log)
    return None if match is None else {k: v.strip() for k, v in match.groupdict().items()}


def _why_no_adapter(log: str, error: str) -> str:
    if "Found no drivers" in log:
        return "no Vulkan driver"
    # Dawn says why it refused a device on a "Warning:" line, e.g. "Insufficient Vulkan limits".
    refused = [line.split(":", 1)[1].strip() for line in log.splitlines() if line.startswith("Warning: ")]
    if "No adapters found" in log:
        return "no adapter" + (f" (refused: {refused[0]})" if refused else "")
    return error


def vulkan_device_names() -> list[str]:
    """Device names the Vulkan loader lists (the fallback for the adapter's name)."""
    import ctypes
    from ctypes import byref, c_int, c_uint32, c_void_p
    try:
        vk = ctypes.CDLL("libvulkan.so.1")
    except OSError:
        return []

    class InstanceCreateInfo(ctypes.Structure):
        _fields_ = [("sType", c_int), ("pNext", c_void_p), ("flags", c_uint32),
                    ("pApplicationInfo", c_void_p), ("enabledLayerCount", c_uint32),
                    ("ppEnabledLayerNames", c_void_p), ("enabledExtensionCount", c_uint32),
                    ("ppEnabledExtensionNames", c_void_p)]

    for fn in (vk.vkCreateInstance, vk.vkEnumeratePhysicalDevices):
        fn.argtypes = [c_void_p, c_void_p, c_void_p]
    vk.vkGetPhysicalDeviceProperties.argtypes = [c_void_p, c_void_p]
    vk.vkDestroyInstance.argtypes = [c_void_p, c_void_p]
    instance = c_void_p()
    if vk.vkCreateInstance(byref(InstanceCreateInfo(sType=1)), None, byref(instance)) != 0:
        return []
    count = c_uint32()
    vk.vkEnumeratePhysicalDevices(instance, byref(count), None)
    devices = (c_void_p * count.value)()
    vk.vkEnumeratePhysicalDevices(instance, byref(count), devices)
    names = []
    for device in devices:
        properties = ctypes.create_string_buffer(1024)     # VkPhysicalDeviceProperties: 824 bytes
        vk.vkGetPhysicalDeviceProperties(device, properties)
        names.append(properties.raw[20:276].split(b"\0")[0].decode("utf-8", "replace"))  # deviceName
    vk.vkDestroyInstance(instance, None)
    return names
