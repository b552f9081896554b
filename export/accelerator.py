"""The second opinion on the GPU track: LiteRT's own GPU accelerator, GPU-only.

Our checker (gpu_check.py) reads the flatbuffer against TFLite's published rules; here
LiteRT compiles the model for its ML Drift GPU accelerator (runtime/litert_gpu.py) and
runs it, so an op it rejects fails with the delegate's own message, and a model that
compiles but computes wrong (8192-row textures at full size) fails on its outputs.

It runs in a child process, like the converter, for three reasons measured here: the
accelerator can crash the process (a grouped convolution with 6 channels per group died
of SIGILL in SwiftShader), it prints to file descriptors 1 and 2 (which `--json` and the
progress lines own), and at 1024x1536 a software Vulkan device allocates gigabytes that
are best returned when it exits. The child runs the runtime's own `litert-gpu` backend,
torch-free, on the adapter this process found.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..compare import compare, merge, worst_psnr
from ..contract import SIDECAR_FORMAT, gpu_refusal
from ..runtime.errors import BackendError, ModelError
from ..runtime.gpu_adapter import Adapter, find_adapter, run_child
from ..runtime.sidecar import read_sidecar

RUN_TIMEOUT_S = 1800         # a full-size export's first run on SwiftShader takes minutes
# --check-gpu on any model: the accelerator against LiteRT's CPU on uniform inputs. A
# float32 device agrees to ~140 dB and fp16 arithmetic to ~50-70 dB; the failures it must
# catch (a layer over the texture limit) come out near 6 dB.
CHECK_MIN_PSNR = 30.0


class AcceleratorError(RuntimeError):
    """The accelerator rejected the model, crashed, or computed it wrong; one line."""


class NoAdapterError(AcceleratorError):
    """There is no Vulkan adapter to verify on (and the caller required one)."""


def adapter_or_reason() -> tuple[Adapter | None, str | None]:
    try:
        return find_adapter(), None
    except BackendError as exc:
        return None, str(exc)


def _child(args: list[str], model: str | Path, adapter: Adapter) -> dict:
    """The child's report; AcceleratorError with one line (not starting with the model's path)."""
    result, log = run_child([*args, "--adapter", adapter.to_json()], adapter.env, RUN_TIMEOUT_S)
    if result is None:
        tail = log.strip().splitlines()[-1:] or ["no output"]
        raise AcceleratorError(f"LiteRT's GPU accelerator {tail[0]}")
    if not result.get("ok"):
        error = result.get("error", "LiteRT's GPU accelerator failed")
        raise AcceleratorError(error.removeprefix(f"{model}: "))
    return result


def run_on_accelerator(tflite: str | Path, inputs: list[dict[str, np.ndarray]],
                       adapter: Adapter) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Compile `tflite` GPU-only and run it on each input set (NHWC, by signature name):
    (the child's report: adapter, fully_accelerated, timings; the outputs per input set)."""
    with tempfile.TemporaryDirectory(prefix="bokehlite-gpu-") as tmp:
        given, taken = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        np.savez(given, **{f"{i}/{name}": value for i, x in enumerate(inputs) for name, value in x.items()})
        result = _child(["run", str(tflite), str(given), str(taken)], tflite, adapter)
        with np.load(taken) as data:
            outputs = [{} for _ in inputs]
            for key in data.files:
                index, name = key.split("/", 1)
                outputs[int(index)][name] = data[key]
    return result, outputs


def verify_export(tflite: str | Path, inputs: list[dict[str, np.ndarray]],
                  reference: list[dict[str, np.ndarray]], gate, require: bool = False,
                  cpu: list[dict[str, np.ndarray]] | None = None) -> dict:
    """The sidecar's `gpu_accelerator`: run on the parity inputs, compared with PyTorch (the
    gate) and, given `cpu` (LiteRT's CPU interpreter on the same inputs), with that too.

    On a software adapter (SwiftShader) only the first input set runs. Raises
    AcceleratorError when the accelerator rejects the model or misses `gate`, and
    NoAdapterError when there is no adapter and `require` is set; without an adapter
    otherwise, {"verified": False, "reason": ...}.
    """
    adapter, reason = adapter_or_reason()
    if adapter is None:
        if require:
            raise NoAdapterError(reason)
        return {"verified": False, "reason": reason}
    if adapter.software:
        # A full-size run takes minutes on a software device: the first parity input only.
        inputs, reference = inputs[:1], reference[:1]
    result, outputs = run_on_accelerator(tflite, inputs, adapter)
    stats = merge([compare(ref[name], out[name]) for ref, out in zip(reference, outputs) for name in ref])
    failures = gate.failures(stats)
    if failures:
        raise AcceleratorError(f"its outputs on {adapter.name} miss the gate against PyTorch: "
                               + "; ".join(failures))
    report = {"verified": True, "fully_accelerated": result["fully_accelerated"], "adapter": adapter.name,
              "adapter_type": adapter.type, "psnr_vs_pytorch": stats["psnr"], "max_abs_err": stats["max_abs"],
              "off_fraction": stats["off_fraction"], "images": len(inputs), "gate": gate.__dict__,
              "compile_seconds": result["compile_seconds"], "run_seconds": result["run_seconds"]}
    if cpu is not None:
        vs_cpu = merge([compare(ref[name], out[name]) for ref, out in zip(cpu, outputs) for name in ref])
        report["vs_cpu_interpreter"] = {"psnr": vs_cpu["psnr"], "max_abs_err": vs_cpu["max_abs"]}
    return report


def check_file(path: str | Path) -> dict:
    """`export-tflite --check-gpu`: GPU-only compile and one run of any model, against
    LiteRT's CPU on the same inputs. {"verified", "compatible", ...}; `compatible` is None
    when there is no adapter to ask.

    One of our exports is answered by its contract first, as every front end answers it (F9 in
    docs/contract.md): one whose contract records no verified run (the cpu track, int8) is not
    for the GPU, whatever a run on uniform inputs would show."""
    refusal = _contract_refusal(path)
    if refusal is not None:
        return {"verified": False, "compatible": False, "reason": refusal}
    adapter, reason = adapter_or_reason()
    if adapter is None:
        return {"verified": False, "compatible": None, "reason": reason}
    try:
        result = _child(["check", str(path)], path, adapter)
    except AcceleratorError as exc:
        return {"verified": True, "compatible": False, "adapter": adapter.name, "reason": str(exc)}
    agreement = result["agreement_with_cpu"]
    worst = worst_psnr(a["psnr"] for a in agreement.values())
    nonfinite = max((a.get("nonfinite", 0.0) for a in agreement.values()), default=0.0)
    report = {"verified": True, "compatible": nonfinite == 0 and (worst is None or worst >= CHECK_MIN_PSNR),
              "adapter": adapter.name, "fully_accelerated": result["fully_accelerated"],
              "agreement_with_cpu": agreement, "min_psnr": CHECK_MIN_PSNR}
    if nonfinite > 0:
        report["reason"] = (f"LiteRT's GPU accelerator runs it, but {100 * nonfinite:.4f}% of its output "
                            "values are NaN or infinite")
    elif not report["compatible"]:
        report["reason"] = (f"LiteRT's GPU accelerator runs it, but its outputs disagree with LiteRT's "
                            f"CPU: {worst:.1f} dB < {CHECK_MIN_PSNR:.0f} dB (peak: the CPU output's largest "
                            "magnitude)")
    return report


def _contract_refusal(path: str | Path) -> str | None:
    """F9's refusal when `path` carries our contract (a sidecar beside it, or embedded) and it
    records no verified run on LiteRT's GPU accelerator; None for a model from elsewhere."""
    try:
        sidecar = read_sidecar(path)
    except ModelError:
        return None
    return gpu_refusal(sidecar) if sidecar.get("format") == SIDECAR_FORMAT else None
