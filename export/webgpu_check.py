"""Does this .tflite run correctly on WebGPU within the browser's default limits?

LiteRT's native GPU accelerator (export/accelerator.py) does not apply WebGPU's limits, so a
model can pass it and still run wrong in a browser, silently: the portrait model needed 17
sampled textures in one compute shader where WebGPU's default maxSampledTexturesPerShaderStage
is 16 (until gpu_rewrite.py broke its compositing chain), and LiteRT.js then reports success
and returns outputs 5-12 dB off (issue 33). This
check runs the model as the page does (web/check.html, through web/bokeh.mjs: LiteRT.js on
WebGPU, the device's uncapturederror events and the outputs' finiteness watched) in headless
Chromium on SwiftShader with the default limits, and compares its outputs with the Python
LiteRT interpreter's on the same inputs (a hash both sides compute; nothing is sent).

    from bokehlite.export.webgpu_check import webgpu_check
    result = webgpu_check("artifacts/bokeh_gpu_1024x1536.tflite")
    # {"ran": True, "ok": True, "psnr": 145.2, "reason": "", "outputs": {...}, ...}

ran=False (with a one-line reason) where Chromium, Node or `npm ci --prefix web` is missing:
the check did not run, which is not a failure of the model. `verify_export` is the export's
step (pipeline.py): every float16 export runs it, and fails when the model runs wrong.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
DRIVER = WEB / "test" / "driver.mjs"
CHROMIUM = os.environ.get("BOKEHLITE_CHROMIUM", "/usr/bin/chromium")
GATE_PSNR = 50.0           # dB against the Python interpreter, every output (peak 1: outputs are in [0, 1])
APERTURE_SCALE = 40.0      # the hash's [0, 1) times this: blur radii the render models take


def hash_values(n: int, seed: int) -> np.ndarray:
    """web/check.mjs hashValues, in numpy: murmur3's finaliser of (index, seed), 24 bits as float32."""
    i = np.arange(n, dtype=np.uint32)
    with np.errstate(over="ignore"):
        h = i * np.uint32(0x9E3779B1) + np.uint32((seed * 0x85EBCA6B) & 0xFFFFFFFF) + np.uint32(0x27D4EB2F)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return ((h >> np.uint32(8)).astype(np.float64) / 16777216.0).astype(np.float32)


def hash_inputs(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """web/check.mjs hashInputs: inputs in sorted name order get seed, seed + 1, ..."""
    names = sorted(shapes)
    out = {}
    for name, shape in shapes.items():
        v = hash_values(int(np.prod(shape)), seed + names.index(name))
        if name == "aperture":
            v = (v * np.float32(APERTURE_SCALE)).astype(np.float32)
        out[name] = v.reshape(shape)
    return out


def missing_browser() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "no node to drive Chromium (apt-get install nodejs)"
    if not (WEB / "node_modules" / "playwright-core").is_dir() or not (WEB / "node_modules" / "@litertjs").is_dir():
        return f"LiteRT.js and playwright-core are not installed: run `npm ci --prefix {WEB}`"
    return None


def interpreter_outputs(model: Path, seed: int) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """The Python LiteRT interpreter's serving_default outputs on the hash inputs; and the inputs' shapes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=max(1, os.cpu_count() or 1))
    runner = interpreter.get_signature_runner("serving_default")
    shapes = {name: tuple(int(s) for s in d["shape"]) for name, d in runner.get_input_details().items()}
    outputs = runner(**hash_inputs(shapes, seed))
    return {k: np.asarray(v, np.float32) for k, v in outputs.items()}, shapes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    if not np.isfinite(b).all():
        return float("nan")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def webgpu_check(model: str | os.PathLike, *, seed: int = 0, gate_psnr: float = GATE_PSNR,
                 limits: str = "default", timeout: float = 900, accelerator: str = "webgpu") -> dict:
    """Run `model` on WebGPU in headless Chromium (SwiftShader, the browser's default limits
    unless limits="adapter") and compare with the Python LiteRT interpreter. accelerator="wasm"
    runs it on LiteRT.js's WebAssembly instead, for comparison.

    Returns {"ran", "ok", "psnr" (the lowest over the outputs, dB; None when it did not run
    through, or when every output was identical), "reason" (one line: why not ok, or why it did not run; "" when ok), "outputs"
    ({name: psnr}), "adapter", "max_sampled_textures", "limits", "compile_ms", "run_ms"}.
    """
    from bokehlite.runtime.web import make_server, url_of

    model = Path(model)
    result = {"ran": False, "ok": False, "psnr": None, "reason": "", "outputs": {}, "limits": limits,
              "max_sampled_textures": None, "compile_ms": None, "run_ms": None}
    why = missing_browser()
    if why:
        result["reason"] = f"WebGPU check not run: {why}"
        return result
    reference, _ = interpreter_outputs(model, seed)
    with tempfile.TemporaryDirectory(prefix="bokehlite-webgpu-") as tmp:
        work = Path(tmp)
        folder = work / "models"
        folder.mkdir()
        name = model.name if model.suffix == ".tflite" and not model.name.startswith(".") else "model.tflite"
        shutil.copy2(model, folder / name)
        server = make_server(folder, "127.0.0.1", 0, require_models=False)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = (f"{url_of(server)}check.html?model=models/{quote(name)}&accelerator={accelerator}"
                   f"&seed={seed}&limits={limits}")
            # One page load: the check's report, the adapter, then the outputs (an empty file
            # when the model did not run through).
            plan = {"browser": CHROMIUM, "timeout": int(timeout * 1000), "steps": [
                {"goto": url}, {"waitState": ["done", "error"]},
                {"eval": "window.bokehCheck", "as": "check"},
                {"eval": "navigator.gpu ? navigator.gpu.requestAdapter().then(a => a && a.info && "
                         "[a.info.vendor, a.info.architecture].join(' ')) : null", "as": "adapter"},
                {"download": ["#save-outputs", str(work / "outputs.bin")]}]}
            run = drive_page(plan, work)
            check = run["values"].get("check") if run.get("values") else None
            if not check:
                result["reason"] = f"WebGPU check not run: the browser failed ({run['error'].splitlines()[0]})"
                return result
            result.update(ran=True, adapter=run["values"].get("adapter"),
                          max_sampled_textures=check.get("maxSampledTextures"),
                          compile_ms=check.get("compileMs"), run_ms=check.get("runMs"))
            if check.get("error"):
                result["reason"] = f"LiteRT.js failed: {check['error']}".splitlines()[0]
                return result
            if check.get("failure"):
                result["reason"] = check["failure"].splitlines()[0]
                return result
            if not run["ok"]:
                result["reason"] = f"the outputs did not come back ({run['error'].splitlines()[0]})"
                return result
        finally:
            server.shutdown()
            server.server_close()
        data = np.fromfile(work / "outputs.bin", np.float32)
    at = 0
    values = {}
    for name in check["names"]:
        shape = tuple(check["shapes"][name])
        n = int(np.prod(shape))
        values[name] = psnr(reference[name], data[at:at + n].reshape(shape))
        at += n
    if at != data.size or set(check["names"]) != set(reference):
        result["reason"] = f"the outputs came back as {sorted(check['names'])}, expected {sorted(reference)}"
        return result
    # JSON-safe, as the export's parity figures: None for identical outputs (the sidecar is
    # written with allow_nan=False).
    result["outputs"] = {k: None if math.isinf(v) else v for k, v in values.items()}
    worst = min(values.values(), key=lambda v: -1.0 if math.isnan(v) else v)
    result["psnr"] = None if math.isinf(worst) or math.isnan(worst) else worst
    result["ok"] = not math.isnan(worst) and worst >= gate_psnr
    if not result["ok"]:
        bad = min(values, key=lambda k: -1.0 if math.isnan(values[k]) else values[k])
        result["reason"] = (f"WebGPU gave wrong numbers with no error: output {bad!r} at {values[bad]:.1f} dB "
                            f"against the Python interpreter (gate {gate_psnr:g} dB)")
    return result


class WebGpuError(RuntimeError):
    """The model ran on WebGPU and ran wrong, or failed to compile there (one line)."""


def verify_export(model: str | os.PathLike, note: Callable[[str], None] | None = None) -> dict:
    """The export's WebGPU step: `webgpu_check(model)` plus the seconds it took (the sidecar's
    `webgpu`). Raises WebGpuError when the model ran and was not right. Where the browser is
    missing, `note` gets one line saying so and the result says `"ran": false`."""
    t0 = time.perf_counter()
    result = webgpu_check(model)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if result["ran"] and not result["ok"]:
        raise WebGpuError(result["reason"])
    if note:
        if not result["ran"]:
            note(result["reason"])
        else:
            psnr = "identical" if result["psnr"] is None else f"{result['psnr']:.1f} dB"
            note(f"WebGPU ({result.get('adapter')}, default limits) vs the Python interpreter: {psnr} "
                 f"(the check took {result['seconds']:.0f} s)")
    return result


def drive_page(plan: dict, work: Path) -> dict:
    """Run a plan of page steps (web/test/driver.mjs) in headless Chromium: the driver's result.
    Also bench-runtime --web's way into the page (benchmarks/web.py)."""
    path = work / "plan.json"
    path.write_text(json.dumps(plan))
    proc = subprocess.run(["node", str(DRIVER), str(path)], capture_output=True, text=True,
                          timeout=plan["timeout"] / 1000 + 120, cwd=WEB)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"ok": False, "error": (proc.stderr.strip() or f"driver exited {proc.returncode}") + "\n"}


if __name__ == "__main__":          # python -m bokehlite.export.webgpu_check MODEL.tflite
    import sys

    for path in sys.argv[1:]:
        print(json.dumps({"model": path, **webgpu_check(path)}, allow_nan=False))
