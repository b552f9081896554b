"""LiteRT's GPU accelerator as the runtime backend `litert-gpu`: GPU-only, on any Vulkan device.

The `ai-edge-litert` wheel ships `libLiteRtWebGpuAccelerator.so`, LiteRT's ML Drift GPU
accelerator over WebGPU (Dawn on Vulkan). `CompiledModel` with `HardwareAccelerator.GPU`
alone compiles a model for it and fails when any op would need the CPU. ML Drift picks the
ops it takes with the same code for its WebGPU and OpenCL delegates, so a model that is
fully accelerated here is the best evidence short of a phone that an Android app using
LiteRT's CompiledModel GPU path runs it entirely on the GPU.

The adapter, the Vulkan device it runs on, is found by gpu_adapter.py; the child processes
that probe adapters and verify exports run gpu_child.py.

Compiled and "fully accelerated" is not the same as correct: some layers (a 3x3
convolution whose packed weights pass 8192 texture rows, a grouped convolution with a
channel count per group that is not a multiple of 4) compile, then run with WebGPU
validation errors and garbage outputs. So the backend reads the accelerator's log of the
compile and of the first run, and refuses the model when it reports an error.
"""
from __future__ import annotations

import os
import re
import time
import weakref

import numpy as np

from ..contract import SIGNATURE
from .runner import Backend, ModelRunner, TensorSpec, captured_stderr
from .compiled import SignatureBuffers, litert, load, quiet_teardown, release, status_reason, tensor_specs
from .errors import BackendError, ModelError, RuntimeInputError
from .gpu_adapter import HOW_TO_GET_ONE, Adapter, find_adapter

LOCK_TIMEOUT_S = 120     # how long reading an output waits for its run (measured, not configurable)
_GLOG_ERROR = re.compile(r"^E\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] (?P<message>.*)$", re.M)
_UNSUPPORTED = re.compile(r"Following operations are not supported by GPU delegate:\s*\n(?P<ops>.*?)\n"
                          r"(?:No operations|\d+ operations)", re.S)


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
        # Whatever comes of the compile, LiteRT's environment lives to the exit and then prints
        # "DestroyAccelerator" lines after the command's last one (issue 35: after its error).
        quiet_teardown()
        seconds = time.perf_counter() - t0
        text = "".join(log)
        if failure is not None:
            raise _compile_error(model_path, failure, text)
        try:
            key = _usable_signature(compiled, model_path, text, signature)
        except ModelError:
            release(compiled, [])
            raise
        names = compiled.get_signature_list()[key]
        inputs = tensor_specs(compiled.get_input_tensor_details(key), names["inputs"])
        outputs = tensor_specs(compiled.get_output_tensor_details(key), names["outputs"])
        run, buffers = _runner(compiled, key, inputs, outputs, model_path, log, adapter.software)
        runner = ModelRunner(backend=self.name, threads=threads, options={"xnnpack": False},
                             inputs=inputs, outputs=outputs, _runner=run, _interpreter=compiled, _log=log,
                             info={"adapter": adapter.to_dict(), "fully_accelerated": True,
                                   "compile_seconds": round(seconds, 3)})
        weakref.finalize(runner, release, compiled, buffers)     # also at exit
        return runner


def _usable_signature(compiled, model_path: str, text: str, signature: str | None) -> str:
    """The signature to run of a model that compiled for the GPU; ModelError when the
    accelerator logged an error, does not take every op, or the signature is not there."""
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
    return key


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
