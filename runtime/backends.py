"""The backends that run a .tflite, as a small registry: find one that works here and run a
model's signature with it.

Each backend has a name, `available()` and `open(model, threads, ...) -> ModelRunner`.
Registered here, tried in this order unless the caller picks one: `litert`, LiteRT's
CompiledModel on the CPU with XNNPACK in low memory (litert_cpu.py; `ai_edge_litert` is the
maintained package and our dependency), then the interpreters of LiteRT
(`litert-interpreter`), `tflite_runtime` (the old standalone wheel) and `tensorflow.lite`
(only present with the export extras); and `litert-gpu`, LiteRT's GPU accelerator,
GPU-only, only when asked for (litert_gpu.py). Every import happens when a model is
opened, so importing the runtime never pulls in TensorFlow.

The registry stands above the backends (interpreters.py, litert_cpu.py, litert_gpu.py);
what they share lives in runner.py, which imports none of them.
"""
from __future__ import annotations

import os

from ..host import default_threads
from .errors import BackendError
from .interpreters import LITERT_INTERPRETER, TENSORFLOW, TFLITE_RUNTIME
from .litert_cpu import LiteRtCpuBackend
from .litert_gpu import LiteRtGpuBackend
# The shared types, for callers of the registry (open_model returns a ModelRunner).
from .runner import Backend, ModelRunner, TensorSpec, captured_stderr  # noqa: F401

REGISTRY: dict[str, Backend] = {}
# Tried in this order by `open_model(backend=None)`.
AUTO_ORDER: list[str] = []


def register(backend: Backend, auto: bool = False) -> Backend:
    """Add a backend by its name; `auto` puts it at the end of the automatic choice."""
    REGISTRY[backend.name] = backend
    if auto:
        AUTO_ORDER.append(backend.name)
    return backend


register(LiteRtCpuBackend(), auto=True)
register(LITERT_INTERPRETER, auto=True)
register(TFLITE_RUNTIME, auto=True)
register(TENSORFLOW, auto=True)
# GPU-only, so never an automatic choice: a user asks for it by name.
register(LiteRtGpuBackend())
BACKENDS = tuple(REGISTRY)


def open_model(model_path: str | os.PathLike, backend: str | None = None, threads: int | None = None,
               **options) -> ModelRunner:
    """Load `model_path` with the named backend, or the first one of AUTO_ORDER that works.

    Options go to the backend (interpreters: xnnpack, delegates). Raises BackendError when
    no backend can run, ModelError when the file is not a usable TFLite model with a
    `serving_default` signature.
    """
    if backend not in (None, "auto", *REGISTRY):
        raise BackendError(f"unknown backend {backend!r}; expected one of auto, {', '.join(REGISTRY)}")
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    candidates = AUTO_ORDER if backend in (None, "auto") else [backend]
    problems = []
    for name in candidates:
        try:
            return REGISTRY[name].open(os.fspath(model_path), threads, **options)
        except BackendError as exc:
            if len(candidates) == 1:
                raise
            problems.append(f"{name}: {exc}")
    raise BackendError("no TFLite interpreter works here (" + "; ".join(problems) +
                       "); install LiteRT: pip install ai-edge-litert")
