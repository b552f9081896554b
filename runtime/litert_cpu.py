"""LiteRT's CompiledModel on the CPU as the runtime backend `litert`: XNNPACK, in low memory.

This is the API an Android app uses (CompiledModel with the CPU accelerator), and, unlike
the Interpreter, it passes flags to XNNPACK. We use one of them. XNNPACK keeps, for every
convolution, an indirection buffer of H_out * W_out * k^2 pointers for the whole run: at
1024x1536, peak RSS is 1.34 GB on the gpu track and 1.08 GB on the cpu track, most of the
latter for the residual refiner's full-resolution 3x3 convolutions (2 GB on the gpu track
before the renderer's large kernels were exported as separable passes). With
`TRANSIENT_INDIRECTION_BUFFER`, XNNPACK rebuilds each convolution's buffer on every run in
a workspace that all operators share: 0.80 GB and 0.73 GB peak, for 5-13% more time
(measured on this machine, 2 threads; on the cpu track almost all of it is the refiner's
113 MB buffers). `low_memory=False` gives the other trade.

Options: xnnpack (default True; False runs LiteRT's builtin kernels, as the Interpreter's
BUILTIN_WITHOUT_DEFAULT_DELEGATES does), low_memory (default True; XNNPACK only).
"""
from __future__ import annotations

import weakref

import numpy as np

from ..contract import SIGNATURE
from .runner import Backend, ModelRunner, TensorSpec, captured_stderr, check_signature
from .compiled import SignatureBuffers, litert, load, quiet_teardown, release, status_reason, tensor_specs
from .errors import BackendError, ModelError

# TFLITE_XNNPACK_DELEGATE_FLAG_* (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h).
# Setting flags replaces XNNPACK's defaults, so the int8 ones are kept (QS8 | QU8).
XNNPACK_QS8, XNNPACK_QU8 = 0x01, 0x02
XNNPACK_TRANSIENT_INDIRECTION_BUFFER = 0x20


def xnnpack_flags(low_memory: bool) -> int | None:
    """The flags we pass, or None for XNNPACK's defaults."""
    return XNNPACK_QS8 | XNNPACK_QU8 | XNNPACK_TRANSIENT_INDIRECTION_BUFFER if low_memory else None


class LiteRtCpuBackend(Backend):
    name = "litert"
    description = "LiteRT's CompiledModel on the CPU (XNNPACK, low-memory indirection)"

    def available(self) -> str | None:
        try:
            with captured_stderr([]):
                litert()
        except BackendError as exc:
            return str(exc)
        return None

    def open(self, model_path: str, threads: int, xnnpack: bool = True, low_memory: bool = True,
             verified: bool = False, **unknown) -> ModelRunner:
        if unknown:
            raise ValueError(f"the {self.name} backend takes no option {', '.join(sorted(unknown))}")
        log: list[str] = []
        api = litert()
        cpu = api.CpuOptions(num_threads=threads,
                             kernel_mode=api.CpuKernelMode.XNNPACK if xnnpack else api.CpuKernelMode.BUILTIN,
                             xnnpack_flags=xnnpack_flags(low_memory and xnnpack))
        compiled, failure = load(model_path, log, verified, options=api.Options(
            hardware_accelerators=api.HardwareAccelerator.CPU, cpu_options=cpu))
        if failure is not None:
            raise ModelError(f"{model_path}: not a loadable TFLite model ({status_reason(failure)})")
        signatures = compiled.get_signature_list()
        check_signature(model_path, signatures)
        inputs = tensor_specs(compiled.get_input_tensor_details(SIGNATURE), signatures[SIGNATURE]["inputs"])
        outputs = tensor_specs(compiled.get_output_tensor_details(SIGNATURE), signatures[SIGNATURE]["outputs"])
        run, buffers = _runner(compiled, inputs, outputs, model_path)
        runner = ModelRunner(backend=self.name, threads=threads,
                             options={"xnnpack": xnnpack, "low_memory": bool(low_memory and xnnpack)},
                             inputs=inputs, outputs=outputs, _runner=run, _interpreter=compiled, _log=log)
        weakref.finalize(runner, release, compiled, buffers)     # also at exit
        quiet_teardown()
        return runner


def _runner(compiled, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], model_path: str):
    """callable(**inputs) -> {output: array}, with its buffers made once."""
    buffers = SignatureBuffers(compiled, SIGNATURE, inputs, outputs)

    def run(**given: np.ndarray) -> dict[str, np.ndarray]:
        buffers.write(given)
        try:
            buffers.invoke()
        except RuntimeError as exc:      # LiteRT's status
            raise ModelError(f"{model_path}: LiteRT failed to run it: {status_reason(exc)}") from None
        return buffers.read()

    return run, buffers.all()
