"""What LiteRT's CompiledModel backends share (`litert` on the CPU, `litert-gpu`): tensor
specs from its signature details, and a release and an exit that print nothing."""
from __future__ import annotations

import atexit
import functools
import gc
import os
import sys

import numpy as np

from .backends import TensorSpec, captured_stderr


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
