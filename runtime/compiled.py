"""What LiteRT's CompiledModel backends share (`litert` on the CPU, `litert-gpu`): loading a
verified file with LiteRT's output caught, tensor specs, checked input and output buffers,
and a release and an exit that print nothing."""
from __future__ import annotations

import atexit
import functools
import gc
import os
import sys

import numpy as np

from .interpreters import LITERT_INTERPRETER
from .runner import TensorSpec, captured_stderr
from .errors import BackendError


def litert():
    """ai_edge_litert's compiled_model module (CompiledModel, Options, CpuOptions, ...)."""
    try:
        from ai_edge_litert import compiled_model
    except ImportError:
        raise BackendError("LiteRT is not installed (pip install ai-edge-litert)") from None
    return compiled_model


def load(model_path: str, log: list[str], verified: bool = False, **from_file):
    """(CompiledModel.from_file(model_path, **from_file), None), or (None, its failure).

    The file is verified first, unless `verified` (its sha256 matched the sidecar of the
    export that made it): CompiledModel does not check a flatbuffer and crashes the
    process on a damaged one, while LiteRT's Interpreter runs the flatbuffer verifier when
    it loads (ModelError; without delegates it allocates nothing). LiteRT's output goes to
    `log`. The failure comes without its traceback, so LiteRT's environment is released
    while its output is still caught.
    """
    if not verified:
        LITERT_INTERPRETER.interpreter(model_path, 1, xnnpack=False)
    with captured_stderr(log, stdout=True):
        CompiledModel = litert().CompiledModel
        try:
            return CompiledModel.from_file(model_path, **from_file), None
        except Exception as exc:       # the wrapper raises RuntimeError with LiteRT's status
            return None, exc.with_traceback(None)


def check_inputs(given: dict, inputs: dict[str, TensorSpec]) -> None:
    """ValueError unless `given` has exactly the signature's inputs, each of its shape and dtype."""
    if set(given) != set(inputs):
        raise ValueError(f"expected inputs {sorted(inputs)}, got {sorted(given)}")
    for name, spec in inputs.items():
        value = given[name]
        if not isinstance(value, np.ndarray) or value.shape != spec.shape or value.dtype != spec.dtype:
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"expected {spec.dtype} {name} of shape {spec.shape}, got {got}")


class SignatureBuffers:
    """A signature's input and output tensor buffers, made once and reused by every run."""

    def __init__(self, compiled, key: str, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec]):
        self.compiled, self.key = compiled, key
        self.specs_in, self.specs_out = inputs, outputs
        self.inputs = {n: compiled.create_input_buffer_by_name(key, n) for n in inputs}
        self.outputs = {n: compiled.create_output_buffer_by_name(key, n) for n in outputs}

    def invoke(self) -> None:
        """Run the signature on these buffers; LiteRT's failures are its RuntimeError."""
        self.compiled.run_by_name(self.key, self.inputs, self.outputs)

    def write(self, given: dict) -> None:
        """Checked (`check_inputs`) and copied into the input buffers."""
        check_inputs(given, self.specs_in)
        for name, buffer in self.inputs.items():
            buffer.write(np.ascontiguousarray(given[name]))

    def read(self) -> dict[str, np.ndarray]:
        return {n: self.outputs[n].read(int(np.prod(s.shape)), s.dtype).reshape(s.shape)
                for n, s in self.specs_out.items()}

    def all(self) -> list:
        """Every buffer, for `release`."""
        return [*self.inputs.values(), *self.outputs.values()]


def tensor_specs(details: dict, order: list[str]) -> dict[str, TensorSpec]:
    """{name: TensorSpec} in the signature's order, from CompiledModel's tensor details."""
    return {name: TensorSpec(tuple(int(s) for s in details[name]["shape"]), np.dtype(details[name]["dtype"]))
            for name in order}


def status_reason(exc: BaseException) -> str:
    """The last line of a LiteRT status raised by the Python wrapper (its lines carry a
    tree prefix, "└ ERROR: [file:line] ..."), or the exception's type."""
    lines = [line.strip(" └") for line in str(exc).splitlines() if line.strip(" └")]
    return lines[-1] if lines else type(exc).__name__


def release(compiled, buffers: list) -> None:
    """Release a compiled model with its log caught: destroying LiteRT's environment prints
    "DestroyAccelerator" lines, which would otherwise follow a command's last line."""
    with captured_stderr([], stdout=True):
        for buffer in buffers:
            if buffer._capsule is not None:
                buffer.destroy()
        environment = compiled.environment
        compiled.close()
        environment.close()
        gc.collect()


@functools.cache
def quiet_teardown() -> None:
    """At exit, point file descriptors 1 and 2 at /dev/null: LiteRT destroys its internal
    accelerators during interpreter shutdown and prints "DestroyAccelerator" lines after a
    command's last line. (Handlers registered before this one, such as logging's final
    flush, run after it; by then a program has said what it had to say.)"""
    def silence():
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
    atexit.register(silence)
