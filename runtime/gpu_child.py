"""The child processes of LiteRT's GPU accelerator (gpu_adapter.run_child starts them with
`python -c` importing this module's main; `python -m bokehlite.runtime.gpu_child` runs it too): `probe` (is there an adapter, and which one), and `run` /
`check` for export-tflite's verification and `--check-gpu`.

A child because the accelerator can crash its process (SIGILL, SIGSEGV), prints to file
descriptors 1 and 2, and on a software device allocates gigabytes best returned at exit.
Each prints one JSON object as its last stdout line.
"""
from __future__ import annotations

import base64
import json
import sys
import time

import numpy as np

from ..compare import compare
from ..usage import OneLineParser
from .runner import captured_stderr
from .compiled import SignatureBuffers
from .errors import RuntimeInputError
from .gpu_adapter import Adapter, vulkan_device_names
from .litert_gpu import LiteRtGpuBackend

# y = 2 x + 1 on a [1, 4, 4, 4] float32 input, converted by TensorFlow's TFLiteConverter from
# tf.function(lambda x: {"y": x * 2.0 + 1.0}); embedded so that probing needs no TensorFlow.
_PROBE_MODEL = base64.b64decode("""
HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAHAAAAHQAAABUAQAAZAEAAGwDAAADAAAAAAAAAAIAAAA0
AAAABAAAANz///8HAAAABAAAABMAAABDT05WRVJTSU9OX01FVEFEQVRBAAgADAAIAAQACAAAAAYAAAAEAAAAEwAAAG1p
bl9ydW50aW1lX3ZlcnNpb24ACAAAANwAAADUAAAAwAAAAKQAAACcAAAAlAAAAHQAAAAEAAAAXv///wQAAABgAAAAEAAA
AAAAAAAIAA4ACAAEAAgAAAAQAAAAJAAAAAAABgAIAAQABgAAAAQAAAAAAAAADAAYABQAEAAMAAQADAAAAMrDMNPuRIlW
AwAAAAIAAAAEAAAABgAAADIuMjEuMAAAyv///wQAAAAQAAAAMS41LjAAAAAAAAAAAAAAAJz9//+g/f//7v///wQAAAAE
AAAAAAAAQAAABgAIAAQABgAAAAQAAAAEAAAAAACAP8z9///Q/f//DwAAAE1MSVIgQ29udmVydGVkLgABAAAAFAAAAAAA
DgAYABQAEAAMAAgABAAOAAAAFAAAABwAAACgAAAApAAAAKgAAAAEAAAAbWFpbgAAAAACAAAAWAAAABQAAAAAAA4AGAAU
ABAADAALAAQADgAAABQAAAAAAAALEAAAABQAAAABAAAAWP7//wEAAAAEAAAAAgAAAAMAAAABAAAAAAAOABQAAAAQAAwA
CwAEAA4AAAAQAAAAAAAAFQwAAAAQAAAAlP7//wEAAAADAAAAAgAAAAAAAAACAAAAAQAAAAQAAAABAAAAAAAAAAUAAAD8
AAAAtAAAAIQAAABIAAAABAAAAC7///8AAAABEAAAABAAAAAFAAAAGAAAAOz+//8IAAAASWRlbnRpdHkAAAAABAAAAAEA
AAAEAAAABAAAAAQAAABu////AAAAARAAAAAQAAAABAAAABAAAAAs////AwAAAG11bAAEAAAAAQAAAAQAAAAEAAAABAAA
AKb///8AAAABEAAAABAAAAADAAAAFAAAAGT///8FAAAAbXVsL3kAAAAAAAAA0v///wAAAAEQAAAAEAAAAAIAAAAUAAAA
kP///wUAAABhZGQveQAAAAAAAAAAABYAGAAUAAAAEAAMAAgAAAAAAAAABwAWAAAAAAAAARAAAAAQAAAAAQAAABAAAADU
////AQAAAHgAAAAEAAAAAQAAAAQAAAAEAAAABAAAAAIAAAAcAAAACAAAAAQABAAEAAAADAAMAAsAAAAAAAQADAAAABIA
AAAAAAAS
""")


def _probe_main() -> dict:
    result: dict = {"ok": False}
    try:
        from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
        model = CompiledModel.from_buffer(_PROBE_MODEL, hardware_accel=HardwareAccelerator.GPU)
        x = np.arange(64, dtype=np.float32).reshape(1, 4, 4, 4) / 64
        inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
        inputs[0].write(x)
        model.run_by_index(0, inputs, outputs)
        y = outputs[0].read(64, np.float32).reshape(x.shape)
        error = float(np.abs(y - (2 * x + 1)).max())
        result.update(ok=bool(model.is_fully_accelerated()) and error < 1e-3, max_abs_err=error)
        if not result["ok"]:
            result["error"] = f"the probe model ran wrong (max error {error:g})"
    except Exception as exc:
        result["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    try:
        result["vulkan_devices"] = vulkan_device_names()
    except Exception:                    # only a fallback for the name
        result["vulkan_devices"] = []
    return result


def _run_main(model: str, inputs_npz: str, outputs_npz: str, adapter: Adapter | None) -> dict:
    """Run MODEL on every input set of INPUTS.npz ("<i>/<name>" keys), save "<i>/<name>" outputs."""
    data = np.load(inputs_npz)
    sets: dict[int, dict[str, np.ndarray]] = {}
    for key in data.files:
        index, name = key.split("/", 1)
        sets.setdefault(int(index), {})[name] = data[key]
    t0 = time.perf_counter()
    runner = LiteRtGpuBackend().open(model, 1, adapter=adapter)
    opened = time.perf_counter() - t0
    results, seconds = {}, []
    for index in sorted(sets):
        t0 = time.perf_counter()
        for name, value in runner(**sets[index]).items():
            results[f"{index}/{name}"] = value
        seconds.append(round(time.perf_counter() - t0, 3))
    np.savez(outputs_npz, **results)
    return {"ok": True, **runner.info, "open_seconds": round(opened, 3), "run_seconds": seconds}


def _check_main(model: str, adapter: Adapter | None) -> dict:
    """GPU-only compile and one run on uniform [0, 1) inputs, against LiteRT's CPU (XNNPACK)
    on the same inputs; works for any model, with or without a serving_default signature."""
    runner = LiteRtGpuBackend().open(model, 1, adapter=adapter, signature=None)
    rng = np.random.default_rng(0)
    inputs = {n: rng.random(s.shape).astype(s.dtype) if s.dtype.kind == "f" else np.zeros(s.shape, s.dtype)
              for n, s in runner.inputs.items()}
    gpu = runner(**inputs)
    with captured_stderr([], stdout=True):
        from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
        cpu_model = CompiledModel.from_file(model, hardware_accel=HardwareAccelerator.CPU)
        key = next(iter(cpu_model.get_signature_list()))
        buffers = SignatureBuffers(cpu_model, key, runner.inputs, runner.outputs)
        buffers.write(inputs)
        buffers.invoke()
        cpu = buffers.read()
    agreement = {}
    for name in gpu:
        finite = cpu[name][np.isfinite(cpu[name])]
        peak = float(np.abs(finite).max()) if finite.size else 1.0
        stats = compare(cpu[name], gpu[name], peak or 1.0)
        agreement[name] = {"max_abs_err": stats["max_abs"], "peak": peak or 1.0, "psnr": stats["psnr"],
                           "nonfinite": stats["nonfinite"]}
    return {"ok": True, **runner.info, "agreement_with_cpu": agreement}


def main(argv: list[str] | None = None) -> int:
    """Child processes: `probe`; `run MODEL INPUTS.npz OUTPUTS.npz [--adapter JSON]`;
    `check MODEL [--adapter JSON]`. Each prints one JSON object as its last stdout line;
    `ok` false with `error` (one line) when the model or the adapter is refused."""
    parser = OneLineParser(prog="python -m bokehlite.runtime.gpu_child")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    run = sub.add_parser("run")
    run.add_argument("model")
    run.add_argument("inputs")
    run.add_argument("outputs")
    check = sub.add_parser("check")
    check.add_argument("model")
    for p in (run, check):
        p.add_argument("--adapter", type=Adapter.from_json)
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            result = _probe_main()
        elif args.command == "run":
            result = _run_main(args.model, args.inputs, args.outputs, args.adapter)
        else:
            result = _check_main(args.model, args.adapter)
    except RuntimeInputError as exc:
        result = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
    except Exception as exc:               # a bug, or a failure we do not know yet: one line
        import traceback
        traceback.print_exc()
        line = (str(exc).strip().splitlines() or [""])[-1]
        result = {"ok": False, "error": f"internal error in the accelerator's child process: "
                                        f"{type(exc).__name__}: {line}", "kind": "internal"}
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 2


if __name__ == "__main__":
    sys.exit(main())
