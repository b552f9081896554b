"""Dynamic-range int8 exports: the renderer's disk kernels go back to float32.

The converter stores as int8 the weights of every weighted op with 1024 values or more,
and so the renderer's two largest disk kernels on the cpu track (7 channels x 15x15 and
19x19). A depthwise convolution with int8 weights and float input is a "hybrid" op that
XNNPACK does not take: LiteRT's builtin kernel ran those two in 86 ms of a 347 ms run
(`bench-runtime --profile`, 2 threads), where the float32 ones run in XNNPACK. Their values
are turned back into float32 (the int8 value times its channel's scale), so the picture is
exactly the one the int8 gate measured, and XNNPACK runs them.
"""
from __future__ import annotations

import numpy as np

DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"


def float_depthwise_filters(model: bytes) -> tuple[bytes, int]:
    """(the model with every int8 depthwise filter stored as float32, how many there were)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    changed = 0
    for graph in tree.subgraphs:
        for op in graph.operators:
            if flatbuffer_utils.opcode_to_name(tree, op.opcodeIndex) != DEPTHWISE_CONV_2D:
                continue
            tensor = graph.tensors[op.inputs[1]]
            if tensor.type != schema.TensorType.INT8:
                continue
            q = tensor.quantization
            if q is None or q.scale is None or any(z != 0 for z in (q.zeroPoint if q.zeroPoint is not None else ())):
                raise ValueError(f"depthwise filter {tensor.name!r} is int8 without symmetric scales")
            data = np.frombuffer(bytes(tree.buffers[tensor.buffer].data), np.int8).reshape(tensor.shape)
            scale = np.asarray(q.scale, np.float32)
            if scale.size > 1:          # per channel, along the filter's last (channel) axis
                shape = [1] * data.ndim
                shape[q.quantizedDimension] = scale.size
                scale = scale.reshape(shape)
            values = (data.astype(np.float32) * scale).astype("<f4")
            tree.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)
            tensor.type, tensor.quantization = schema.TensorType.FLOAT32, None
            changed += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree)), changed
