"""TFLite interpreter backends: find one that works here and run a model's signature with it.

Order, unless the caller picks one: LiteRT (`ai_edge_litert`, the maintained package and
our dependency), `tflite_runtime` (the old standalone wheel), then `tensorflow.lite`
(only present with the export extras). Every import happens inside `open_model`, so
importing the runtime package never pulls in TensorFlow.

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
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import BackendError, ModelError

BACKENDS = ("litert", "tflite_runtime", "tensorflow")
SIGNATURE = "serving_default"

# Text that identifies a wheel built for NumPy 1.x running under NumPy 2.
_NUMPY_ABI_MARKERS = ("_ARRAY_API", "numpy.core.multiarray failed to import",
                      "compiled using NumPy 1.x", "numpy.core._multiarray_umath")


def default_threads() -> int:
    """All cores this process may run on (its CPU affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def captured_stderr(sink: list[str]):
    """Collect what Python code and native libraries write to stderr; append it to `sink`.

    TFLite prints "INFO: Created TensorFlow Lite XNNPACK delegate" and NumPy prints its
    ABI warning straight to file descriptor 2; a command line tool wants one clear line
    per error instead, so we catch the noise and keep it for error messages and tests.
    """
    sys.stderr.flush()
    try:
        saved_fd = os.dup(2)
    except OSError:                 # no usable fd 2 (embedded interpreters): capture Python only
        saved_fd = None
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        python_text = io.StringIO()
        try:
            if saved_fd is not None:
                os.dup2(tmp.fileno(), 2)
            with contextlib.redirect_stderr(python_text):
                yield
        finally:
            if saved_fd is not None:
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
            tmp.seek(0)
            sink.append(python_text.getvalue() + tmp.read().decode("utf-8", "replace"))


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class ModelRunner:
    """One interpreter with the model's `serving_default` signature, called by tensor names."""

    backend: str
    threads: int
    xnnpack: bool
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    _runner: object = field(repr=False)
    _interpreter: object = field(repr=False)
    _log: list[str] = field(default_factory=list, repr=False)
    _first_call_done: bool = field(default=False, repr=False)

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
            if _is_numpy_abi_error(exc, self.native_log):
                raise BackendError(_numpy_abi_message(self.backend)) from None
            raise


def open_model(model_path: str | os.PathLike, backend: str | None = None, threads: int | None = None,
               xnnpack: bool = True) -> ModelRunner:
    """Load `model_path` with the named backend, or the first one that works here.

    Raises BackendError when no backend can run, ModelError when the file is not a
    usable TFLite model with a `serving_default` signature.
    """
    if backend not in (None, "auto", *BACKENDS):
        raise BackendError(f"unknown backend {backend!r}; expected one of auto, {', '.join(BACKENDS)}")
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    candidates = BACKENDS if backend in (None, "auto") else (backend,)
    problems = []
    for name in candidates:
        try:
            return _open_with(name, os.fspath(model_path), threads, xnnpack)
        except BackendError as exc:
            if len(candidates) == 1:
                raise
            problems.append(f"{name}: {exc}")
    raise BackendError("no TFLite interpreter works here (" + "; ".join(problems) +
                       "); install LiteRT: pip install ai-edge-litert")


def _import_backend(name: str):
    """(Interpreter class, OpResolverType enum) of one backend; BackendError if missing."""
    try:
        if name == "litert":
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        elif name == "tflite_runtime":
            from tflite_runtime.interpreter import Interpreter, OpResolverType
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf
            Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    except ImportError as exc:
        if _is_numpy_abi_error(exc, ""):
            raise BackendError(_numpy_abi_message(name)) from None
        package = {"litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime",
                   "tensorflow": "tensorflow"}[name]
        raise BackendError(f"{name} is not installed (pip install {package})") from None
    return Interpreter, OpResolverType


def _open_with(name: str, model_path: str, threads: int, xnnpack: bool) -> ModelRunner:
    log: list[str] = []
    with captured_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")       # tf.lite.Interpreter's deprecation notice
        Interpreter, OpResolverType = _import_backend(name)
        # BUILTIN applies the default delegates (XNNPACK on CPU); the other resolver is the
        # documented way to run the same optimized kernels without them.
        resolver = (OpResolverType.BUILTIN if xnnpack
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            interpreter = Interpreter(model_path=model_path, num_threads=threads,
                                      experimental_op_resolver_type=resolver)
        except Exception as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        if _is_numpy_abi_error(failure, "".join(log)):
            raise BackendError(_numpy_abi_message(name))
        reason = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
        raise ModelError(f"{model_path}: not a loadable TFLite model ({reason})")

    signatures = interpreter.get_signature_list()
    if SIGNATURE not in signatures:
        found = ", ".join(signatures) or "none"
        raise ModelError(f"{model_path}: no '{SIGNATURE}' signature (found: {found}); "
                         "re-export it with export-tflite")
    runner = interpreter.get_signature_runner(SIGNATURE)
    return ModelRunner(backend=name, threads=threads, xnnpack=xnnpack,
                       inputs=_specs(runner.get_input_details()),
                       outputs=_specs(runner.get_output_details()),
                       _runner=runner, _interpreter=interpreter, _log=log)


def _specs(details: dict) -> dict[str, TensorSpec]:
    return {name: TensorSpec(tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]))
            for name, d in details.items()}


def _is_numpy_abi_error(exc: BaseException, log: str) -> bool:
    text = [log]
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    joined = "\n".join(text)
    return any(marker in joined for marker in _NUMPY_ABI_MARKERS)


def _numpy_abi_message(name: str) -> str:
    return (f"{name} was built for NumPy 1.x and cannot run with NumPy {np.__version__} "
            "(_ARRAY_API not found); install 'numpy<2' for it, or use LiteRT "
            "(pip install ai-edge-litert; --backend litert)")
