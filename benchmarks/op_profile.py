"""Per-operator times of a .tflite on LiteRT's CPU path, from LiteRT's own op profiler.

ai-edge-litert's Python API has no profiler, but libLiteRt.so exports the C one, so we drive
the C API with ctypes: environment -> model -> options (CPU, thread count, kernel mode, and
the runtime option that turns profiling on) -> CompiledModel -> the profiler's events of
each run. Options travel as TOML text, so the only C struct read here is the profiler's
event record, whose layout is the same from LiteRT 2.1 to 2.3.

What the op names mean. With XNNPACK (LiteRT's default CPU path, the one the benchmark
times) the delegated graph runs as XNNPACK operators after XNNPACK's own rewrites (a 1x1
convolution becomes a "Fully Connected" GEMM, an activation folds into the op before it), and
the profiler names them as XNNPACK does, e.g. "Convolution (NHWC, F32) IGEMM", as
benchmark_model's op profiling does; ops XNNPACK leaves to TFLite keep their builtin names
(CAST). With xnnpack=False every op runs on TFLite's builtin kernels and is named by the
schema's BuiltinOperator (CONV_2D, STRIDED_SLICE), or a custom op by its custom code.

Sum of ops vs whole model: the events time operator invocations only; the whole-model time
is the wall time of the run call, which also covers buffer registration, the hand-over
between XNNPACK partitions and TFLite's kernels, and the profiler's own bookkeeping.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import mmap
import os
import statistics
import time
from contextlib import ExitStack
from typing import Callable

import numpy as np

_P = ctypes.c_void_p
_SIZE = ctypes.c_size_t


class _MemoryUsage(ctypes.Structure):
    _fields_ = [("total_allocated_bytes", _SIZE), ("in_use_allocated_bytes", _SIZE),
                ("private_footprint_bytes", _SIZE)]


class _Event(ctypes.Structure):
    """ProfiledEventData of litert/c/litert_profiler_event.h (LiteRT 2.1 to 2.3)."""
    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int),
                ("start_timestamp_us", ctypes.c_uint64), ("elapsed_time_us", ctypes.c_uint64),
                ("begin_mem_usage", _MemoryUsage), ("end_mem_usage", _MemoryUsage),
                ("event_metadata1", ctypes.c_uint64), ("event_metadata2", ctypes.c_uint64),
                ("event_source", ctypes.c_int)]


# LiteRtProfilerEventType: a TFLite node run by its own kernel (metadata1 = node index,
# metadata2 = subgraph index), and an operator inside a delegate, named by the delegate.
_OPERATOR = 1 << 1
_DELEGATE_OPERATOR = 1 << 3
_HW_CPU = 1             # kLiteRtHwAcceleratorCpu
_LOCK_WRITE = 1         # kLiteRtTensorBufferLockModeWrite
# LiteRtElementType (= TfLiteType) -> NumPy, for filling inputs with plausible values.
_DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
           9: np.int8, 10: np.float16}
_SUPPORTED = ((2, 1), (3, 0))   # versions whose event struct matches _Event: [2.1, 3.0)

# name: (argument types, return type); None returns mean a void destructor.
_API = {
    "LiteRtCreateEnvironment": ((ctypes.c_int, _P, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtDestroyEnvironment": ((_P,), None),
    "LiteRtCreateModelFromFile": ((_P, ctypes.c_char_p, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtDestroyModel": ((_P,), None),
    "LiteRtCreateOptions": ((ctypes.POINTER(_P),), ctypes.c_int),
    "LiteRtDestroyOptions": ((_P,), None),
    "LiteRtSetOptionsHardwareAccelerators": ((_P, ctypes.c_int), ctypes.c_int),
    "LiteRtCreateOpaqueOptions": ((ctypes.c_char_p, _P, _P, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtAddOpaqueOptions": ((_P, _P), ctypes.c_int),
    "LiteRtCreateCompiledModel": ((_P, _P, _P, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtDestroyCompiledModel": ((_P,), None),
    "LiteRtGetModelSignature": ((_P, _SIZE, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtGetNumSignatureInputs": ((_P, ctypes.POINTER(_SIZE)), ctypes.c_int),
    "LiteRtGetNumSignatureOutputs": ((_P, ctypes.POINTER(_SIZE)), ctypes.c_int),
    "LiteRtGetSignatureInputTensorByIndex": ((_P, _SIZE, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtGetSignatureOutputTensorByIndex": ((_P, _SIZE, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtGetRankedTensorType": ((_P, _P), ctypes.c_int),
    "LiteRtGetCompiledModelInputBufferRequirements": ((_P, _SIZE, _SIZE, ctypes.POINTER(_P)),
                                                      ctypes.c_int),
    "LiteRtGetCompiledModelOutputBufferRequirements": ((_P, _SIZE, _SIZE, ctypes.POINTER(_P)),
                                                       ctypes.c_int),
    "LiteRtCreateManagedTensorBufferFromRequirements": ((_P, _P, _P, ctypes.POINTER(_P)),
                                                        ctypes.c_int),
    "LiteRtDestroyTensorBuffer": ((_P,), None),
    "LiteRtGetTensorBufferPackedSize": ((_P, ctypes.POINTER(_SIZE)), ctypes.c_int),
    "LiteRtLockTensorBuffer": ((_P, ctypes.POINTER(_P), ctypes.c_int), ctypes.c_int),
    "LiteRtUnlockTensorBuffer": ((_P,), ctypes.c_int),
    "LiteRtRunCompiledModel": ((_P, _SIZE, _SIZE, _P, _SIZE, _P), ctypes.c_int),
    "LiteRtCompiledModelGetProfiler": ((_P, ctypes.POINTER(_P)), ctypes.c_int),
    "LiteRtStartProfiler": ((_P,), ctypes.c_int),
    "LiteRtStopProfiler": ((_P,), ctypes.c_int),
    "LiteRtResetProfiler": ((_P,), ctypes.c_int),
    "LiteRtGetNumProfilerEvents": ((_P, ctypes.POINTER(ctypes.c_int)), ctypes.c_int),
    "LiteRtGetProfilerEvents": ((_P, ctypes.c_int, ctypes.POINTER(_Event)), ctypes.c_int),
}


def _library():
    """libLiteRt.so from the installed ai-edge-litert, with the signatures above declared."""
    import ai_edge_litert
    version = importlib.metadata.version("ai-edge-litert")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if not _SUPPORTED[0] <= parts < _SUPPORTED[1]:
        raise RuntimeError(f"op profiling reads LiteRT's C structs as of ai-edge-litert 2.1-2.x; "
                           f"{version} is installed")
    lib = ctypes.CDLL(os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so"))
    for name, (argtypes, restype) in _API.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return lib


class _ProfiledModel:
    """A LiteRT CompiledModel on the CPU with profiling on, its buffers filled once.

    A context manager: everything made through the C API is destroyed on exit, newest first.
    """

    def __init__(self, tflite: str, threads: int, xnnpack: bool):
        self.path, self.threads, self.xnnpack = tflite, threads, xnnpack

    def _call(self, name: str, *args) -> None:
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise RuntimeError(f"{os.path.basename(self.path)}: {name} failed "
                               f"(LiteRtStatus {status})")

    def _make(self, create: str, destroy: str, *args) -> _P:
        handle = _P()
        self._call(create, *args, ctypes.byref(handle))
        self._stack.callback(getattr(self.lib, destroy), handle)
        return handle

    def _opaque_option(self, options: _P, identifier: bytes, toml: str) -> None:
        # The payload is a C string LiteRT frees with free(); the option list owns it.
        payload = self._libc.strdup(toml.encode())
        opaque = _P()
        self._call("LiteRtCreateOpaqueOptions", identifier, payload,
                   ctypes.cast(self._libc.free, _P), ctypes.byref(opaque))
        self._call("LiteRtAddOpaqueOptions", options, opaque)

    def __enter__(self) -> _ProfiledModel:
        self.lib = _library()
        self._libc = ctypes.CDLL(None)
        self._libc.strdup.argtypes, self._libc.strdup.restype = (ctypes.c_char_p,), _P
        self._stack = ExitStack()
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _open(self) -> None:
        env = self._make("LiteRtCreateEnvironment", "LiteRtDestroyEnvironment", 0, None)
        model = self._make("LiteRtCreateModelFromFile", "LiteRtDestroyModel", env,
                           self.path.encode())
        options = self._make("LiteRtCreateOptions", "LiteRtDestroyOptions")
        self._call("LiteRtSetOptionsHardwareAccelerators", options, _HW_CPU)
        mode = "xnnpack" if self.xnnpack else "builtin"
        self._opaque_option(options, b"xnnpack",
                            f'num_threads = {self.threads}\nkernel_mode = "{mode}"\n')
        self._opaque_option(options, b"runtime_options_string", "enable_profiling = true\n")
        self.compiled = self._make("LiteRtCreateCompiledModel", "LiteRtDestroyCompiledModel",
                                   env, model, options)
        self.profiler = _P()
        self._call("LiteRtCompiledModelGetProfiler", self.compiled, ctypes.byref(self.profiler))
        if not self.profiler:
            raise RuntimeError("this LiteRT build did not turn on its profiler")

        signature = _P()
        self._call("LiteRtGetModelSignature", model, 0, ctypes.byref(signature))
        self.inputs = self._buffers(env, signature, "Input")
        self.outputs = self._buffers(env, signature, "Output")
        for buffer, element_type in self.inputs:
            self._fill(buffer, element_type)
        self._input_array = (_P * len(self.inputs))(*(b for b, _ in self.inputs))
        self._output_array = (_P * len(self.outputs))(*(b for b, _ in self.outputs))

    def _buffers(self, env: _P, signature: _P, side: str) -> list[tuple[_P, int]]:
        """(buffer, element type) for each input or output of signature 0."""
        count = _SIZE()
        self._call(f"LiteRtGetNumSignature{side}s", signature, ctypes.byref(count))
        buffers = []
        for i in range(count.value):
            tensor = _P()
            self._call(f"LiteRtGetSignature{side}TensorByIndex", signature, i, ctypes.byref(tensor))
            # LiteRtRankedTensorType is only handed back to LiteRT, so room is enough; its
            # first field, the element type, is an int in every version.
            tensor_type = ctypes.create_string_buffer(4096)
            self._call("LiteRtGetRankedTensorType", tensor, tensor_type)
            requirements = _P()
            self._call(f"LiteRtGetCompiledModel{side}BufferRequirements", self.compiled, 0, i,
                       ctypes.byref(requirements))
            buffer = self._make("LiteRtCreateManagedTensorBufferFromRequirements",
                                "LiteRtDestroyTensorBuffer", env, tensor_type, requirements)
            buffers.append((buffer, ctypes.c_int.from_buffer(tensor_type).value))
        return buffers

    def _fill(self, buffer: _P, element_type: int) -> None:
        """Random values in [0, 1) (zeros for integers): real numbers, no NaN or denormals."""
        size, address = _SIZE(), _P()
        self._call("LiteRtGetTensorBufferPackedSize", buffer, ctypes.byref(size))
        self._call("LiteRtLockTensorBuffer", buffer, ctypes.byref(address), _LOCK_WRITE)
        try:
            dtype = np.dtype(_DTYPES.get(element_type, np.uint8))
            target = np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8)),
                                           shape=(size.value,))
            values = np.zeros(size.value // dtype.itemsize, dtype)
            if dtype.kind == "f":
                values[:] = np.random.default_rng(0).random(values.size)
            target[:values.nbytes] = values.view(np.uint8)
        finally:
            self._call("LiteRtUnlockTensorBuffer", buffer)

    def run(self) -> float:
        """One inference; its wall time in ms."""
        t0 = time.perf_counter()
        self._call("LiteRtRunCompiledModel", self.compiled, 0, len(self.inputs), self._input_array,
                   len(self.outputs), self._output_array)
        return (time.perf_counter() - t0) * 1e3

    def profiled_run(self) -> tuple[float, list[tuple[str, str, int, int, float]]]:
        """(wall ms, [(tag, kernel, node, subgraph, ms)] in run order) for one inference."""
        self._call("LiteRtResetProfiler", self.profiler)
        self._call("LiteRtStartProfiler", self.profiler)
        wall_ms = self.run()
        self._call("LiteRtStopProfiler", self.profiler)
        count = ctypes.c_int()
        self._call("LiteRtGetNumProfilerEvents", self.profiler, ctypes.byref(count))
        events = (_Event * max(count.value, 1))()
        if count.value:
            self._call("LiteRtGetProfilerEvents", self.profiler, count, events)
        ops = []
        for event in events[:count.value]:
            if event.event_type not in (_OPERATOR, _DELEGATE_OPERATOR):
                continue
            kernel = "builtin" if event.event_type == _OPERATOR else "xnnpack"
            ops.append(((event.tag or b"?").decode(errors="replace"), kernel, event.event_metadata1,
                        event.event_metadata2, event.elapsed_time_us / 1e3))
        return wall_ms, ops


def _shape(tensor) -> list[int]:
    # Through Shape(j), not ShapeAsNumpy(): a NumPy view would pin the memory map open.
    return [int(tensor.Shape(j)) for j in range(tensor.ShapeLength())]


def _output_shapes(tflite: str) -> dict[tuple[int, int], tuple[str, list[int]]]:
    """{(subgraph, operator index): (builtin op name, first output's shape)} from the
    flatbuffer, read lazily through a memory map so a large model costs no copy."""
    from ai_edge_litert import schema_py_generated as schema
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    with open(tflite, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            codes.append(custom.decode() if custom else names.get(builtin, str(builtin)))
        shapes = {}
        for s in range(model.SubgraphsLength()):
            graph = model.Subgraphs(s)
            for i in range(graph.OperatorsLength()):
                op = graph.Operators(i)
                shape = _shape(graph.Tensors(op.Outputs(0))) if op.OutputsLength() else []
                shapes[(s, i)] = (codes[op.OpcodeIndex()], shape)
        return shapes


def profile_ops(tflite: str, threads: int, *, xnnpack: bool = True, runs: int = 3,
                progress: Callable[[str], None] | None = None) -> dict:
    """Per-op and per-op-type times of `tflite` on LiteRT's CPU path, `threads` threads.

    One warm-up run, then `runs` profiled runs; each op's time is its median over them, as is
    the whole-model wall time. Ops are listed in run order: `index` is the place in that
    order, `kernel` says who ran it ("xnnpack" or "builtin"), `node` is the TFLite operator
    index (None inside XNNPACK, which numbers its own operators) and `output_shape` is that
    operator's first output shape (None inside XNNPACK). `by_type` is sorted costliest first.
    """
    if threads < 1 or runs < 1:
        raise ValueError(f"threads and runs must be at least 1, got {threads} and {runs}")
    if not os.path.isfile(tflite):
        raise FileNotFoundError(f"no such model: {tflite}")
    say = progress or (lambda _message: None)
    from ..runtime.runner import captured_stderr     # LiteRT logs every step to stderr

    log: list[str] = []
    walls, sequences = [], []
    try:
        with captured_stderr(log):
            say(f"op profile: compiling {os.path.basename(tflite)} for the CPU")
            with _ProfiledModel(tflite, threads, xnnpack) as model:
                say("op profile: warm-up run")
                model.run()
                for i in range(runs):
                    say(f"op profile: profiled run {i + 1}/{runs}")
                    wall_ms, ops = model.profiled_run()
                    walls.append(wall_ms)
                    sequences.append(ops)
    except RuntimeError as exc:
        # A status code alone says little; LiteRT's last error line says why.
        errors = [line for line in "".join(log).splitlines() if line.startswith("ERROR")]
        raise RuntimeError(f"{exc}: {errors[-1]}" if errors else str(exc)) from None
    order = [op[:4] for op in sequences[0]]
    if not order or any([op[:4] for op in run] != order for run in sequences):
        raise RuntimeError(f"{tflite}: the profiler reported no ops, or different ops per run")

    shapes = _output_shapes(tflite)
    ops = []
    for index, (tag, kernel, node, subgraph) in enumerate(order):
        known = shapes.get((subgraph, node)) if kernel == "builtin" else None
        ops.append({"index": index, "type": tag, "kernel": kernel,
                    "node": node if kernel == "builtin" else None,
                    "ms": statistics.median(run[index][4] for run in sequences),
                    "output_shape": known[1] if known and known[0] == tag else None})
    sum_ms = sum(op["ms"] for op in ops)
    totals: dict[str, list] = {}
    for op in ops:
        entry = totals.setdefault(op["type"], [0.0, 0])
        entry[0] += op["ms"]
        entry[1] += 1
    by_type = [{"type": t, "ms": ms, "count": n, "share": ms / sum_ms if sum_ms else 0.0}
               for t, (ms, n) in sorted(totals.items(), key=lambda kv: -kv[1][0])]
    # XNNPACK's default flags: indirection buffers kept (the bench's litert-xnnpack-persistent row).
    kernels = "XNNPACK, default flags" if xnnpack else "builtin kernels"
    return {"method": f"LiteRT's op profiler on a CompiledModel (CPU, {kernels}, {threads} "
                      f"threads): median of {runs} profiled runs after 1 warm-up",
            "threads": threads, "xnnpack": xnnpack,
            "whole_model_ms": statistics.median(walls), "sum_of_ops_ms": sum_ms,
            "ops": ops, "by_type": by_type}


def top_types_text(profile: dict, n: int = 10) -> str:
    """The `n` costliest op types as an aligned table, with sum-of-ops vs whole model."""
    rows = profile["by_type"][:n]
    width = max([len("op type")] + [len(r["type"]) for r in rows])
    lines = [f"{'op type':<{width}}  {'count':>5}  {'ms':>9}  {'share':>6}"]
    lines += [f"{r['type']:<{width}}  {r['count']:>5}  {r['ms']:>9.2f}  {r['share']:>6.1%}"
              for r in rows]
    rest = profile["by_type"][n:]
    if rest:
        lines.append(f"(+{len(rest)} more types, {sum(r['ms'] for r in rest):.2f} ms)")
    lines.append(f"sum of ops {profile['sum_of_ops_ms']:.2f} ms, whole model "
                 f"{profile['whole_model_ms']:.2f} ms; {profile['method']}")
    return "\n".join(lines)
