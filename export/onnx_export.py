"""PyTorch -> ONNX at one fixed input shape, then graph simplification.

Dynamic height/width produced a broken TFLite in a prototype, so every export is
static. The TorchScript exporter is used (dynamo=False): the dynamo one needs
onnxscript and gains nothing for a static CNN.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

OPSET = 17


def export_onnx(model: torch.nn.Module, input_shapes: dict[str, tuple[int, ...]],
                output_names: tuple[str, ...], path: Path) -> None:
    """Trace `model` with zero inputs of `input_shapes` (name -> NCHW shape) into `path`."""
    dummies = tuple(torch.zeros(shape) for shape in input_shapes.values())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, dummies, str(path), input_names=list(input_shapes),
                          output_names=list(output_names), opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def simplify_onnx(src: Path, dst: Path) -> None:
    """Constant folding and dead-node removal with onnxslim (pinned in pyproject)."""
    import onnxslim
    onnxslim.slim(str(src), str(dst))


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the graph with onnxruntime on the CPU."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)
