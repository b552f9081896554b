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

from ..contract import SIGNATURE
from ..host import default_threads
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
            if _is_numpy_abi_error(exc, self.native_log):
                raise BackendError(_numpy_abi_message(self.backend)) from None
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


class InterpreterBackend(Backend):
    """A TFLite `Interpreter` class (LiteRT's, tflite_runtime's or TensorFlow's).

    Options: xnnpack (default True) applies the XNNPACK CPU delegate through the builtin
    op resolver; delegates (default none) are extra delegate objects, such as a GPU
    delegate from `load_delegate`. Both are Interpreter-only ideas and stay here.
    """

    def __init__(self, name: str, package: str, description: str):
        self.name, self.package, self.description = name, package, description

    def available(self) -> str | None:
        try:
            with captured_stderr([]), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._classes()
        except BackendError as exc:
            return str(exc)
        return None

    def interpreter(self, model_path: str, threads: int, xnnpack: bool, delegates=(), log=None):
        """The loaded (and flatbuffer-verified) Interpreter, nothing allocated yet; ModelError
        with one line for a file that is not a TFLite model. Its output goes to `log`."""
        log = [] if log is None else log
        with captured_stderr(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")       # tf.lite.Interpreter's deprecation notice
            Interpreter, OpResolverType = self._classes()
            # BUILTIN applies the default delegates (XNNPACK on CPU); the other resolver is the
            # documented way to run the same optimized kernels without them.
            resolver = (OpResolverType.BUILTIN if xnnpack
                        else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            kwargs = {"experimental_delegates": list(delegates)} if delegates else {}
            try:
                return Interpreter(model_path=model_path, num_threads=threads,
                                   experimental_op_resolver_type=resolver, **kwargs)
            except Exception as exc:
                failure = exc
        if _is_numpy_abi_error(failure, "".join(log)):
            raise BackendError(_numpy_abi_message(self.name))
        text = str(failure).strip()
        reason = text.splitlines()[0] if text else type(failure).__name__
        raise ModelError(f"{model_path}: not a loadable TFLite model ({reason})")

    def _classes(self):
        """(Interpreter class, OpResolverType enum); BackendError if not importable."""
        try:
            if self.name == "litert-interpreter":
                from ai_edge_litert.interpreter import Interpreter, OpResolverType
            elif self.name == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter, OpResolverType
            else:
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                import tensorflow as tf
                Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
        except ImportError as exc:
            if _is_numpy_abi_error(exc, ""):
                raise BackendError(_numpy_abi_message(self.name)) from None
            raise BackendError(f"{self.name} is not installed (pip install {self.package})") from None
        return Interpreter, OpResolverType

    def open(self, model_path: str, threads: int, xnnpack: bool = True, delegates=(), verified: bool = False,
             **unknown) -> ModelRunner:
        del verified              # an Interpreter verifies the flatbuffer as it loads, at no extra cost
        if unknown:
            raise ValueError(f"the {self.name} backend takes no option {', '.join(sorted(unknown))}")
        log: list[str] = []
        interpreter = self.interpreter(model_path, threads, xnnpack, delegates, log)
        check_signature(model_path, interpreter.get_signature_list())
        runner = interpreter.get_signature_runner(SIGNATURE)
        return ModelRunner(backend=self.name, threads=threads, options={"xnnpack": xnnpack},
                           inputs=_specs(runner.get_input_details()),
                           outputs=_specs(runner.get_output_details()),
                           _runner=runner, _interpreter=interpreter, _log=log)


REGISTRY: dict[str, Backend] = {}
# Tried in this order by `open_model(backend=None)`.
AUTO_ORDER: list[str] = []


def register(backend: Backend, auto: bool = False) -> Backend:
    """Add a backend by its name; `auto` puts it at the end of the automatic choice."""
    REGISTRY[backend.name] = backend
    if auto:
        AUTO_ORDER.append(backend.name)
    return backend


# They subclass Backend, defined above.
from .litert_cpu import LiteRtCpuBackend  # noqa: E402
from .litert_gpu import LiteRtGpuBackend  # noqa: E402

register(LiteRtCpuBackend(), auto=True)
register(InterpreterBackend("litert-interpreter", "ai-edge-litert", "LiteRT's Interpreter (ai_edge_litert)"),
         auto=True)
register(InterpreterBackend("tflite_runtime", "tflite-runtime", "the standalone tflite_runtime wheel"),
         auto=True)
register(InterpreterBackend("tensorflow", "tensorflow", "TensorFlow's tf.lite.Interpreter"), auto=True)
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
