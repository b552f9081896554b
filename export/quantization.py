"""What int8 quantization did to a .tflite, read from the flatbuffer: which ops carry int8
weights, and proof that what int8 would break stayed float.

Dynamic-range quantization (`--precision int8`) stores the constant weights of weighted
ops as int8 with per-channel scales, and only those of 1024 values or more (the converter's
threshold): the network's convolutions (the renderer's disk kernels are put back to float32,
float_blurs.py). Every activation stays float32; XNNPACK quantizes a convolution's input on the fly. So the ops
int8 would break never see an int8 tensor: the softmax whose six weights (summing to one)
feed the renderer, the renderer's division composite(W I) / composite(W) (Eq. 8), and the
radiance module's sigmoid and power 3 I^5 (Eq. 4, a chain of MULs). A static export
(`--calibration`, calibration.py) has int8 activations too, but only in and out of its
convolutions, and not all of them (its recipe keeps those near the softmax on dynamic-range
weights): `convolutions` counts each kind. `summary` checks all of that and lists what it
found, for the sidecar.
"""
from __future__ import annotations

from collections import Counter

from .tflite_inspect import TfliteModel

METHOD = "dynamic-range"
# Ops that must compute in float32; int8 would break them (see the module docstring).
KEEP_FLOAT = ("SOFTMAX", "DIV", "POW", "LOGISTIC", "EXP", "LOG", "SQRT", "RSQRT")
INT8_TYPES = ("int8", "uint8")


def _weight_types(model: TfliteModel, index: int) -> str:
    """Stored type of a constant tensor, looking through a DEQUANTIZE of stored weights."""
    producer = model.producers.get(index)
    if producer is not None and producer.name == "DEQUANTIZE":
        return model.dtype(producer.inputs[0])
    return model.dtype(index)


def summary(model: TfliteModel, method: str = METHOD, int8_ops: tuple[str, ...] = ()) -> dict:
    """The sidecar's `quantization` entry, with `problems` listing everything that breaks the
    promise (empty when the model keeps it). Dynamic range: no int8 activation anywhere.
    Static (calibration.py): int8 activations only in and out of `int8_ops`, entered and
    left through QUANTIZE / DEQUANTIZE."""
    boundaries = Counter()
    quantized, float_ops = Counter(), Counter()
    int8_bytes = float_bytes = int8_tensors = 0
    channels, zero_points = set(), set()
    convolutions = Counter()          # CONV_2D by kind: int8 activations, int8 weights only, float32
    problems = []
    for op in model.ops:
        if op.name in ("QUANTIZE", "DEQUANTIZE"):
            boundaries[op.name] += 1
            continue
        weights = [t for t in op.inputs if t >= 0 and model.is_constant(t)]
        types = {_weight_types(model, t) for t in weights}
        if types & set(INT8_TYPES):
            quantized[op.name] += 1
        else:
            float_ops[op.name] += 1
        for t in weights:
            n = 1
            for s in model.shape(t):
                n *= s
            if _weight_types(model, t) in INT8_TYPES:
                int8_tensors += 1
                int8_bytes += n
                q = model.tensor(t).quantization
                scales = 0 if q is None or q.scale is None else len(q.scale)
                shape = model.shape(t)
                channels.add("per-channel" if shape and scales == shape[q.quantizedDimension] else "per-tensor")
                zero_points.update(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None
                                                    else []))
            elif _weight_types(model, t) == "float32":
                float_bytes += 4 * n
        activations = [t for t in op.inputs + op.outputs if t >= 0 and not model.is_constant(t)]
        if op.name == "CONV_2D":
            convolutions["static" if any(model.dtype(t) in INT8_TYPES for t in activations)
                         else "dynamic" if types & set(INT8_TYPES) else "float"] += 1
        for t in activations:
            if model.dtype(t) in INT8_TYPES and op.name not in int8_ops:
                problems.append(f"{op.name} (op {op.index}) has an {model.dtype(t)} activation; "
                                f"only {', '.join(int8_ops) or 'weights'} may be int8")
                break
        if op.name in KEEP_FLOAT and (types & set(INT8_TYPES)
                                      or any(model.dtype(t) != "float32" for t in activations)):
            problems.append(f"{op.name} (op {op.index}) is not float32")
    for kind, tensors in (("input", model.graph.inputs), ("output", model.graph.outputs)):
        for t in tensors:
            if model.dtype(int(t)) != "float32":
                name = model.tensor_name(int(t))
                problems.append(f"graph {kind} {name!r} is {model.dtype(int(t))}, not float32")
    if not quantized:
        problems.append("no op carries int8 weights: the converter did not quantize")
    kept = Counter(op.name for op in model.ops if op.name in KEEP_FLOAT)
    return {"method": method, "weights": "int8", "granularity": "/".join(sorted(channels)),
            "symmetric": zero_points <= {0},
            "activations": f"int8 in and out of {convolutions['static']} of {sum(convolutions.values())} "
                           f"{', '.join(int8_ops)}, float32 elsewhere" if int8_ops else "float32",
            "boundaries": dict(boundaries),
            "io": "float32", "calibration": None,
            "quantized_ops": dict(quantized.most_common()), "float_ops": dict(float_ops.most_common()),
            "kept_float": dict(kept.most_common()),
            "convolutions": {k: convolutions[k] for k in ("static", "dynamic", "float")},
            "int8_weight_tensors": int8_tensors, "int8_weight_bytes": int8_bytes,
            "float32_weight_bytes": float_bytes, "problems": problems}
