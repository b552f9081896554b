"""The TFLite `Interpreter` backends: LiteRT's, tflite_runtime's and TensorFlow's."""
from __future__ import annotations

import os
import warnings

from ..contract import SIGNATURE
from .errors import BackendError, ModelError
from .runner import (Backend, ModelRunner, captured_stderr, check_signature, is_numpy_abi_error,
                     numpy_abi_message, specs_of)


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
        if is_numpy_abi_error(failure, "".join(log)):
            raise BackendError(numpy_abi_message(self.name))
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
            if is_numpy_abi_error(exc, ""):
                raise BackendError(numpy_abi_message(self.name)) from None
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
                           inputs=specs_of(runner.get_input_details()),
                           outputs=specs_of(runner.get_output_details()),
                           _runner=runner, _interpreter=interpreter, _log=log)


# LiteRT's own Interpreter: also the flatbuffer verifier that CompiledModel lacks (compiled.py).
LITERT_INTERPRETER = InterpreterBackend("litert-interpreter", "ai-edge-litert", "LiteRT's Interpreter (ai_edge_litert)")
TFLITE_RUNTIME = InterpreterBackend("tflite_runtime", "tflite-runtime", "the standalone tflite_runtime wheel")
TENSORFLOW = InterpreterBackend("tensorflow", "tensorflow", "TensorFlow's tf.lite.Interpreter")
