"""What every backend shares: the runner of one opened model, the backend interface, and
the capture of what native libraries print.

The registry (backends.py) stands above the backends, and they all stand on this module,
which imports none of them.

The `tflite_runtime` 2.14 wheel was compiled against NumPy 1.x. Under NumPy 2 its import
succeeds, but creating an interpreter fails with "_ARRAY_API not found" (and NumPy
prints a page-long warning). We recognise that failure and say what to do instead.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ..contract import SIGNATURE
from .errors import BackendError, ModelError

# Text that identifies a wheel built for NumPy 1.x running under NumPy 2.
_NUMPY_ABI_MARKERS = ("_ARRAY_API", "numpy.core.multiarray failed to import",
                      "compiled using NumPy 1.x", "numpy.core._multiarray_umath")


@contextlib.contextmanager
def captured_stderr(sink: list[str], stdout: bool = False):
    """Collect what Python code and native libraries write to stderr; append it to `sink`.

    TFLite prints "INFO: Created TensorFlow Lite XNNPACK delegate" and NumPy prints its
    ABI warning straight to file descriptor 2; a command line tool wants one clear line
    per error instead, so we catch the noise and keep it for error messages and tests.
    `stdout` also catches file descriptor 1, where LiteRT's GPU accelerator prints some
    of its notices (they would corrupt a `--json` report).
    """
    fds = (1, 2) if stdout else (2,)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {}
    for fd in fds:
        try:
            saved[fd] = os.dup(fd)
        except OSError:             # no usable fd (embedded interpreters): capture Python only
            pass
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        python_text = io.StringIO()
        try:
            for fd in saved:
                os.dup2(tmp.fileno(), fd)
            with contextlib.ExitStack() as python:
                python.enter_context(contextlib.redirect_stderr(python_text))
                if stdout:
                    python.enter_context(contextlib.redirect_stdout(python_text))
                yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            tmp.seek(0)
            sink.append(python_text.getvalue() + tmp.read().decode("utf-8", "replace"))


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class ModelRunner:
    """One opened model's `serving_default` signature, called by tensor names."""

    backend: str
    threads: int
    options: dict                  # what the backend was opened with, e.g. {"xnnpack": True}
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    _runner: object = field(repr=False)
    _interpreter: object = field(repr=False)
    _log: list[str] = field(default_factory=list, repr=False)
    # Where it runs, as the backend found out while opening: for the GPU accelerator
    # {"adapter": {...}, "fully_accelerated": True}; empty for the CPU interpreters.
    info: dict = field(default_factory=dict)
    _first_call_done: bool = field(default=False, repr=False)

    @property
    def xnnpack(self) -> bool:
        return bool(self.options.get("xnnpack", False))

    @property
    def native_log(self) -> str:
        """What the interpreter printed while loading and on its first run (XNNPACK notices)."""
        return "".join(self._log)

    @property
    def delegated_nodes(self) -> int | None:
        """Graph nodes handed to a delegate (XNNPACK) so far; delegates attach on the first
        run, so this is 0 before it. None if the backend cannot tell."""
        try:
            return sum(op["op_name"] == "DELEGATE" for op in self._interpreter._get_ops_details())
        except Exception:
            return None

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        if self._first_call_done:
            return self._invoke(inputs)
        with captured_stderr(self._log):     # delegates are applied on the first allocation
            result = self._invoke(inputs)
        self._first_call_done = True
        return result

    def _invoke(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return dict(self._runner(**inputs))
        except Exception as exc:
            if is_numpy_abi_error(exc, self.native_log):
                raise BackendError(numpy_abi_message(self.backend)) from None
            raise


def check_signature(model_path: str, signatures: dict) -> None:
    """ModelError unless the model has our `serving_default` signature."""
    if SIGNATURE not in signatures:
        found = ", ".join(signatures) or "none"
        raise ModelError(f"{model_path}: no '{SIGNATURE}' signature (found: {found}); "
                         "re-export it with export-tflite")


class Backend:
    """One way of running a .tflite: a name, whether it can run here, and how to open a model.

    A new backend (another interpreter, a GPU accelerator) is one subclass registered with
    `register`; `bokeh-render --backend`, BokehRenderer, the export parity gate and the
    benchmark all open models through `open_model`, so they run the same code.
    """

    name: str = ""
    description: str = ""

    def available(self) -> str | None:
        """None when this backend can run here, else one line saying why not."""
        raise NotImplementedError

    def open(self, model_path: str, threads: int, **options) -> ModelRunner:
        """Load the model's `serving_default` signature; BackendError / ModelError otherwise."""
        raise NotImplementedError


def specs_of(details: dict) -> dict[str, TensorSpec]:
    return {name: TensorSpec(tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]))
            for name, d in details.items()}


def is_numpy_abi_error(exc: BaseException, log: str) -> bool:
    text = [log]
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    joined = "\n".join(text)
    return any(marker in joined for marker in _NUMPY_ABI_MARKERS)


def numpy_abi_message(name: str) -> str:
    return (f"{name} was built for NumPy 1.x and cannot run with NumPy {np.__version__} "
            "(_ARRAY_API not found); install 'numpy<2' for it, or use LiteRT "
            "(pip install ai-edge-litert; --backend litert)")
