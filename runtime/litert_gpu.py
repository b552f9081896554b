"""LiteRT's GPU accelerator as the runtime backend `litert-gpu`: GPU-only, on any Vulkan device.

The `ai-edge-litert` wheel ships `libLiteRtWebGpuAccelerator.so`, LiteRT's ML Drift GPU
accelerator over WebGPU (Dawn on Vulkan). `CompiledModel` with `HardwareAccelerator.GPU`
alone compiles a model for it and fails when any op would need the CPU. ML Drift picks the
ops it takes with the same code for its WebGPU and OpenCL delegates, so a model that is
fully accelerated here is the best evidence short of a phone that an Android app using
LiteRT's CompiledModel GPU path runs it entirely on the GPU.

The adapter is found with nothing for the user to set:
1. the user's own Vulkan driver: the environment as it is (a VK_ICD_FILENAMES the user set
   is an explicit choice, and then the only one tried);
2. else SwiftShader, a software Vulkan device (Debian: `apt-get install chromium-common
   libvulkan1`): VK_ICD_FILENAMES pointed at its ICD, with a writable XDG_RUNTIME_DIR.
Each candidate is tried by compiling and running a tiny embedded model in a child process.
Listing Vulkan devices is not enough: a device can exist and still be refused by Dawn
(Mesa's lavapipe 22.3 lacks shaderUniform*ArrayDynamicIndexing; the loader's mock ICD has
too small limits), and a broken driver can crash; neither may take the caller down. The
answer is cached for the process, and the chosen variables are set in this process's
environment before the first compile.

The adapter's name is the accelerator's own log line "Selected adapter: NAME, arch=...,
backend=Vulkan, adapterType=CPU / Software": it names the adapter Dawn actually picked
(with several devices, the loader's list cannot say which) and whether it is a software
device. Should that line ever change, the probe falls back to the first device the Vulkan
loader lists (vkGetPhysicalDeviceProperties through ctypes).

Compiled and "fully accelerated" is not the same as correct: some layers (a 3x3
convolution whose packed weights pass 8192 texture rows, a grouped convolution with a
channel count per group that is not a multiple of 4) compile, then run with WebGPU
validation errors and garbage outputs. So the backend reads the accelerator's log of the
compile and of the first run, and refuses the model when it reports an error.

Child processes: `main(["probe"])`, and `main(["run", ...])` / `main(["check", ...])` for
export-tflite's verification and `--check-gpu` (see `run_child`).
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..compare import compare
from ..contract import SIGNATURE
from ..usage import OneLineParser
from .runner import Backend, ModelRunner, TensorSpec, captured_stderr
from .compiled import SignatureBuffers, litert, load, quiet_teardown, release, status_reason, tensor_specs
from .errors import BackendError, ModelError, RuntimeInputError

# Debian's chromium-common installs SwiftShader's Vulkan ICD (and libvk_swiftshader.so) here.
SWIFTSHADER_ICDS = ("/usr/lib/chromium/vk_swiftshader_icd.json",)
ICD_VARIABLES = ("VK_ICD_FILENAMES", "VK_DRIVER_FILES")    # the Vulkan loader's driver choice
HOW_TO_GET_ONE = ("install your GPU's Vulkan driver, or SwiftShader, a software Vulkan device "
                  "(Debian/Ubuntu: apt-get install chromium-common libvulkan1)")
PROBE_TIMEOUT_S = 120
LOCK_TIMEOUT_S = 120     # how long reading an output waits for its run (measured, not configurable)
CHILD = "import sys; from bokehlite.runtime.litert_gpu import main; sys.exit(main(sys.argv[1:]))"
# y = 2 x + 1 on a [1, 4, 4, 4] float32 input, converted by TensorFlow's TFLiteConverter from
# tf.function(lambda x: {"y": x * 2.0 + 1.0}); embedded so that probing needs no TensorFlow.
_PROBE_MODEL = base64.b64decode("""
HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAHAAAAHQAAABUAQAAZAEAAGwDAAADAAAAAAAAAAIAAAA0
AAAABAAAANz///8HAAAABAAAABMAAABDT05WRVJTSU9OX01FVEFEQVRBAAgADAAIAAQACAAAAAYAAAAEAAAAEwAAAG1p
bl9ydW50aW1lX3ZlcnNpb24ACAAAANwAAADUAAAAwAAAAKQAAACcAAAAlAAAAHQAAAAEAAAAXv///wQAAABgAAAAEAAA
AAAAAAAIAA4ACAAEAAgAAAAQAAAAJAAAAAAABgAIAAQABgAAAAQAAAAAAAAADAAYABQAEAAMAAQADAAAAMrDMNPuRIlW
AwAAAAIAAAAEAAAABgAAADIuMjEuMAAAyv///wQAAAAQAAAAMS41LjAAAAAAAAAAAAAAAJz9//+g/f//7v///wQAAAAE
AAAAAAAAQAAABgAIAAQABgAAAAQAAAAEAAAAAACAP8z9///Q/f//DwAAAE1MSVIgQ29udmVydGVkLgABAAAAFAAAAAAA
DgAYABQAEAAMAAgABAAOAAAAFAAAABwAAACgAAAApAAAAKgAAAAEAAAAbWFpbgAAAAACAAAAWAAAABQAAAAAAA4AGAAU
ABAADAALAAQADgAAABQAAAAAAAALEAAAABQAAAABAAAAWP7//wEAAAAEAAAAAgAAAAMAAAABAAAAAAAOABQAAAAQAAwA
CwAEAA4AAAAQAAAAAAAAFQwAAAAQAAAAlP7//wEAAAADAAAAAgAAAAAAAAACAAAAAQAAAAQAAAABAAAAAAAAAAUAAAD8
AAAAtAAAAIQAAABIAAAABAAAAC7///8AAAABEAAAABAAAAAFAAAAGAAAAOz+//8IAAAASWRlbnRpdHkAAAAABAAAAAEA
AAAEAAAABAAAAAQAAABu////AAAAARAAAAAQAAAABAAAABAAAAAs////AwAAAG11bAAEAAAAAQAAAAQAAAAEAAAABAAA
AKb///8AAAABEAAAABAAAAADAAAAFAAAAGT///8FAAAAbXVsL3kAAAAAAAAA0v///wAAAAEQAAAAEAAAAAIAAAAUAAAA
kP///wUAAABhZGQveQAAAAAAAAAAABYAGAAUAAAAEAAMAAgAAAAAAAAABwAWAAAAAAAAARAAAAAQAAAAAQAAABAAAADU
////AQAAAHgAAAAEAAAAAQAAAAQAAAAEAAAABAAAAAIAAAAcAAAACAAAAAQABAAEAAAADAAMAAsAAAAAAAQADAAAABIA
AAAAAAAS
""")
_SELECTED = re.compile(r"Selected adapter: (?P<name>.*?), arch=[^,]*, vendor=(?P<vendor>[^,]*), "
                       r"backend=(?P<backend>[^,]*), adapterType=(?P<type>[^\n]*)")
_GLOG_ERROR = re.compile(r"^E\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] (?P<message>.*)$", re.M)
_UNSUPPORTED = re.compile(r"Following operations are not supported by GPU delegate:\s*\n(?P<ops>.*?)\n"
                          r"(?:No operations|\d+ operations)", re.S)


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
    """Run `main(args)` in a fresh Python with `env` added to the environment: (the JSON
    object it printed last on stdout, or None with the reason in the log; its whole log).

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


def accelerator_errors(log: str) -> list[str]:
    """Error lines of the accelerator's log (Dawn validation errors, failed dispatches)."""
    return [m.group("message").strip() for m in _GLOG_ERROR.finditer(log)]


def _compile_error(model_path: str, exc: Exception, log: str) -> RuntimeInputError:
    unsupported = _UNSUPPORTED.search(log)
    if unsupported:
        ops = "; ".join(line.strip() for line in unsupported.group("ops").splitlines() if line.strip())
        return ModelError(f"{model_path}: LiteRT's GPU accelerator cannot run it GPU-only: "
                          f"Following operations are not supported by GPU delegate: {ops}")
    if "No adapters found" in log:
        return BackendError(f"LiteRT's GPU accelerator found no Vulkan adapter; {HOW_TO_GET_ONE}")
    reasons = [line.strip(" └") for line in str(exc).splitlines()]
    reasons = [r for r in reasons if r and not re.fullmatch(r"ERROR: \[[^\]]*\]", r)]
    if "Failed to build flatbuffer model" in str(exc) or "Failed to load model" in str(exc):
        return ModelError(f"{model_path}: not a loadable TFLite model ({reasons[0] if reasons else exc})")
    errors = accelerator_errors(log)
    reason = (errors or reasons or [type(exc).__name__])[0]
    return ModelError(f"{model_path}: LiteRT's GPU accelerator cannot compile it: {reason}")


class LiteRtGpuBackend(Backend):
    """LiteRT's CompiledModel on its GPU accelerator, GPU-only (no CPU fallback for any op).

    Options: adapter (default: `find_adapter()`), signature (default `serving_default`; None:
    the model's only signature, for models from elsewhere). `threads` and `xnnpack` are
    accepted for a uniform call and do nothing: nothing runs on the CPU.
    """

    name = "litert-gpu"
    description = "LiteRT's GPU accelerator (ML Drift over WebGPU/Vulkan), GPU-only"

    def available(self) -> str | None:
        try:
            find_adapter()
        except BackendError as exc:
            return str(exc)
        return None

    def open(self, model_path: str, threads: int, xnnpack: bool = True, adapter: Adapter | None = None,
             signature: str | None = SIGNATURE, verified: bool = False, **unknown) -> ModelRunner:
        if unknown:
            raise ValueError(f"the {self.name} backend takes no option {', '.join(sorted(unknown))}")
        adapter = adapter or find_adapter()
        os.environ.update(adapter.env)        # before this process's first Vulkan instance
        log: list[str] = []
        t0 = time.perf_counter()
        compiled, failure = load(model_path, log, verified, hardware_accel=litert().HardwareAccelerator.GPU)
        seconds = time.perf_counter() - t0
        text = "".join(log)
        if failure is not None:
            raise _compile_error(model_path, failure, text)
        errors = accelerator_errors(text)
        if errors:
            raise ModelError(f"{model_path}: LiteRT's GPU accelerator reported an error while compiling "
                             f"it: {errors[0]}")
        if not compiled.is_fully_accelerated():
            raise ModelError(f"{model_path}: LiteRT's GPU accelerator does not take every op of it")
        signatures = compiled.get_signature_list()
        key = signature if signature is not None else (next(iter(signatures)) if len(signatures) == 1 else None)
        if key not in signatures:
            found = ", ".join(signatures) or "none"
            wanted = f"'{signature}' signature" if signature else "single signature"
            raise ModelError(f"{model_path}: no {wanted} (found: {found}); re-export it with export-tflite")
        inputs = tensor_specs(compiled.get_input_tensor_details(key), signatures[key]["inputs"])
        outputs = tensor_specs(compiled.get_output_tensor_details(key), signatures[key]["outputs"])
        run, buffers = _runner(compiled, key, inputs, outputs, model_path, log, adapter.software)
        runner = ModelRunner(backend=self.name, threads=threads, options={"xnnpack": False},
                             inputs=inputs, outputs=outputs, _runner=run, _interpreter=compiled, _log=log,
                             info={"adapter": adapter.to_dict(), "fully_accelerated": True,
                                   "compile_seconds": round(seconds, 3)})
        weakref.finalize(runner, release, compiled, buffers)     # also at exit
        quiet_teardown()
        return runner


def _runner(compiled, key: str, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec],
            model_path: str, log: list[str], software: bool):
    """callable(**inputs) -> {output: array}; buffers made once. The first run's log is read
    for accelerator errors: the outputs of a run that logged one are not to be trusted.

    A run is asynchronous, and reading an output waits at most LOCK_TIMEOUT_S for it; after
    that the read fails ("Failed to lock custom tensor buffer") and the buffer stays locked.
    A full-size gpu-track run takes 160-200 s on SwiftShader with 2 cores. A software
    device computes on this process's own threads, so there we first wait until they go
    idle, for the first run and for any run that came near the limit.
    """
    buffers = SignatureBuffers(compiled, key, inputs, outputs)
    state = {"checked": False, "broken": None, "wait_idle": software}

    def invoke(given: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        buffers.write(given)
        try:
            t0 = time.perf_counter()
            buffers.invoke()
            if state["wait_idle"]:
                _wait_until_idle()
                state["wait_idle"] = time.perf_counter() - t0 > LOCK_TIMEOUT_S / 2
            return buffers.read()
        except RuntimeError as exc:      # LiteRT's status, e.g. a lost device
            reason = status_reason(exc)
            if "lock" in reason:
                reason += f" (the accelerator waits at most {LOCK_TIMEOUT_S} s for a run's outputs)"
            raise ModelError(f"{model_path}: LiteRT's GPU accelerator failed to run it: {reason}") from None

    def run(**given: np.ndarray) -> dict[str, np.ndarray]:
        if state["broken"]:
            raise ModelError(state["broken"])
        if state["checked"]:
            return invoke(given)
        first: list[str] = []
        try:
            with captured_stderr(first, stdout=True):
                result = invoke(given)
        except ModelError as exc:
            errors = accelerator_errors("".join(first))    # the accelerator's own reason first
            raise ModelError(f"{exc}" + (f" ({errors[0]})" if errors else "")) from None
        finally:
            log.extend(first)
        errors = accelerator_errors("".join(first))
        state["checked"] = True
        if errors:
            state["broken"] = (f"{model_path}: LiteRT's GPU accelerator reported an error on its first run, "
                               f"so its outputs are wrong: {errors[0]}")
            raise ModelError(state["broken"])
        return result

    return run, buffers.all()


def _wait_until_idle(poll_s: float = 0.05, quiet_polls: int = 4) -> None:
    """Return once this process's threads have used less than a tenth of a core for
    `quiet_polls` polls in a row: a software device's queue has drained."""
    last, quiet = time.process_time(), 0
    while quiet < quiet_polls:
        time.sleep(poll_s)
        now = time.process_time()
        quiet = quiet + 1 if now - last < 0.1 * poll_s else 0
        last = now


# --- child processes ------------------------------------------------------------------------

def _vulkan_device_names() -> list[str]:
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


def _probe_main() -> dict:
    result: dict = {"ok": False}
    try:
        from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
        model = CompiledModel.from_buffer(_PROBE_MODEL, hardware_accel=HardwareAccelerator.GPU)
        x = np.arange(64, dtype=np.float32).reshape(1, 4, 4, 4) / 64
        inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
        inputs[0].write(x)
        model.run_by_index(0, inputs, outputs)
        y = outputs[0].read(64, np.float32).reshape(x.shape)
        error = float(np.abs(y - (2 * x + 1)).max())
        result.update(ok=bool(model.is_fully_accelerated()) and error < 1e-3, max_abs_err=error)
        if not result["ok"]:
            result["error"] = f"the probe model ran wrong (max error {error:g})"
    except Exception as exc:
        result["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    try:
        result["vulkan_devices"] = _vulkan_device_names()
    except Exception:                    # only a fallback for the name
        result["vulkan_devices"] = []
    return result


def _run_main(model: str, inputs_npz: str, outputs_npz: str, adapter: Adapter | None) -> dict:
    """Run MODEL on every input set of INPUTS.npz ("<i>/<name>" keys), save "<i>/<name>" outputs."""
    data = np.load(inputs_npz)
    sets: dict[int, dict[str, np.ndarray]] = {}
    for key in data.files:
        index, name = key.split("/", 1)
        sets.setdefault(int(index), {})[name] = data[key]
    t0 = time.perf_counter()
    runner = LiteRtGpuBackend().open(model, 1, adapter=adapter)
    opened = time.perf_counter() - t0
    results, seconds = {}, []
    for index in sorted(sets):
        t0 = time.perf_counter()
        for name, value in runner(**sets[index]).items():
            results[f"{index}/{name}"] = value
        seconds.append(round(time.perf_counter() - t0, 3))
    np.savez(outputs_npz, **results)
    return {"ok": True, **runner.info, "open_seconds": round(opened, 3), "run_seconds": seconds}


def _check_main(model: str, adapter: Adapter | None) -> dict:
    """GPU-only compile and one run on uniform [0, 1) inputs, against LiteRT's CPU (XNNPACK)
    on the same inputs; works for any model, with or without a serving_default signature."""
    runner = LiteRtGpuBackend().open(model, 1, adapter=adapter, signature=None)
    rng = np.random.default_rng(0)
    inputs = {n: rng.random(s.shape).astype(s.dtype) if s.dtype.kind == "f" else np.zeros(s.shape, s.dtype)
              for n, s in runner.inputs.items()}
    gpu = runner(**inputs)
    with captured_stderr([], stdout=True):
        from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
        cpu_model = CompiledModel.from_file(model, hardware_accel=HardwareAccelerator.CPU)
        key = next(iter(cpu_model.get_signature_list()))
        buffers = SignatureBuffers(cpu_model, key, runner.inputs, runner.outputs)
        buffers.write(inputs)
        buffers.invoke()
        cpu = buffers.read()
    agreement = {}
    for name in gpu:
        finite = cpu[name][np.isfinite(cpu[name])]
        peak = float(np.abs(finite).max()) if finite.size else 1.0
        stats = compare(cpu[name], gpu[name], peak or 1.0)
        agreement[name] = {"max_abs_err": stats["max_abs"], "peak": peak or 1.0, "psnr": stats["psnr"],
                           "nonfinite": stats["nonfinite"]}
    return {"ok": True, **runner.info, "agreement_with_cpu": agreement}


def main(argv: list[str] | None = None) -> int:
    """Child processes: `probe`; `run MODEL INPUTS.npz OUTPUTS.npz [--adapter JSON]`;
    `check MODEL [--adapter JSON]`. Each prints one JSON object as its last stdout line;
    `ok` false with `error` (one line) when the model or the adapter is refused."""
    parser = OneLineParser(prog="python -m bokehlite.runtime.litert_gpu")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    run = sub.add_parser("run")
    run.add_argument("model")
    run.add_argument("inputs")
    run.add_argument("outputs")
    check = sub.add_parser("check")
    check.add_argument("model")
    for p in (run, check):
        p.add_argument("--adapter", type=Adapter.from_json)
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            result = _probe_main()
        elif args.command == "run":
            result = _run_main(args.model, args.inputs, args.outputs, args.adapter)
        else:
            result = _check_main(args.model, args.adapter)
    except RuntimeInputError as exc:
        result = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
    except Exception as exc:               # a bug, or a failure we do not know yet: one line
        import traceback
        traceback.print_exc()
        line = (str(exc).strip().splitlines() or [""])[-1]
        result = {"ok": False, "error": f"internal error in the accelerator's child process: "
                                        f"{type(exc).__name__}: {line}", "kind": "internal"}
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 2


if __name__ == "__main__":
    sys.exit(main())
