"""Will the TFLite GPU delegate accept every op of this model?

TensorFlow 2.21's `Analyzer(gpu_compatibility=True)` flags nothing (a prototype
passed CUMSUM and an int64 ARG_MAX), so we apply the delegate's published rules
ourselves: `tensorflow/lite/tools/versioning/gpu_compatibility.cc` (op list and
per-op options) plus the runtime checks of `delegates/gpu/common/model_builder.cc`
(op versions, rank <= 4, float tensors only, comparison ops feeding a cast).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .tflite_inspect import TfliteModel

# Supported builtin ops -> highest op version the delegate accepts (None: not checked).
SUPPORTED_OPS = {
    "FULLY_CONNECTED": 9, "CONV_2D": 6, "DEPTHWISE_CONV_2D": 6, "STRIDED_SLICE": 4,
    "TRANSPOSE": 4, "LSTM": 4, "MUL": 3, "DEQUANTIZE": 3, "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3, "TRANSPOSE_CONV": 3, "CONCATENATION": 2, "ADD": 2,
    "SUB": 2, "DIV": 2, "MAXIMUM": 2, "MINIMUM": 2, "POW": 2, "SQUARED_DIFFERENCE": 2,
    "FLOOR_DIV": 2, "FLOOR_MOD": 2, "ATAN2": 2, "EQUAL": 2, "NOT_EQUAL": 2, "GREATER": 2,
    "GREATER_EQUAL": 2, "LESS": 2, "LESS_EQUAL": 2, "LOGICAL_AND": 2, "ABS": 2, "CEIL": 2,
    "COS": 2, "ELU": 2, "EXP": 2, "FLOOR": 2, "GELU": 2, "LOG": 2, "LOGISTIC": 2, "NEG": 2,
    "RSQRT": 2, "SIGN": 2, "SIN": 2, "SQRT": 2, "SQUARE": 2, "TANH": 2, "PAD": 2, "PADV2": 2,
    "MIRROR_PAD": 2, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "QUANTIZE": 2, "RELU": 2,
    "RELU6": 2, "RELU_N1_TO_1": 2, "LEAKY_RELU": 2, "SLICE": 2, "SOFTMAX": 2,
    "SPACE_TO_DEPTH": 2, "CUMSUM": 1, "DENSIFY": 1, "GATHER": 1, "ONE_HOT": 1, "PRELU": 1,
    "RESHAPE": 1, "SELECT_V2": 1, "SELECT": None, "SPLIT": None, "SPLIT_V": None,
    "TILE": None, "MEAN": None, "REDUCE_MAX": None, "REDUCE_MIN": None, "REDUCE_PROD": None,
    "SUM": None, "PACK": None, "UNPACK": None, "HARD_SWISH": None, "DEPTH_TO_SPACE": None,
    "BATCH_MATMUL": None, "CAST": None, "ADD_N": None, "EMBEDDING_LOOKUP": None,
    "DYNAMIC_UPDATE_SLICE": None, "STABLEHLO_CLAMP": None,
}
SUPPORTED_CUSTOM = {"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"}
UNARY = {"ABS", "CEIL", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG", "RSQRT",
         "SIGN", "SIN", "SQRT", "SQUARE", "TANH", "HARD_SWISH", "QUANTIZE"}
BINARY = {"ATAN2", "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL",
          "LOGICAL_AND", "LESS", "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW",
          "SQUARED_DIFFERENCE", "SUB", "ADD", "MUL"}
COMPARISONS = {"EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"}
# Fused activations: NONE, RELU, RELU_N1_TO_1, RELU6, TANH; SIGN_BIT (5) is not allowed.
ALLOWED_ACTIVATIONS = {0, 1, 2, 3, 4}
FLOAT_TYPES = {"float32", "float16"}


@dataclass
class Problem:
    op_index: int
    op: str
    reason: str


def _activation_problem(op) -> str | None:
    act = getattr(op.options, "fusedActivationFunction", 0)
    return None if act in ALLOWED_ACTIVATIONS else f"fused activation {act} not supported"


def _dtype_problems(model: TfliteModel, op) -> list[str]:
    problems = []
    for t in op.inputs + op.outputs:
        if t < 0:
            continue
        dtype = model.dtype(t)
        if dtype == "int64":
            problems.append(f"int64 tensor {t} ('{model.tensor_name(t)}')")
            continue
        if len(model.shape(t)) > 4:
            problems.append(f"tensor {t} has rank {len(model.shape(t))} > 4")
        if model.is_constant(t) or dtype in FLOAT_TYPES:
            continue
        allowed = ((op.name in COMPARISONS and t in op.outputs and dtype == "bool")
                   or (op.name == "CAST" and dtype in {"bool", "int32"})
                   or (op.name in {"SELECT", "SELECT_V2", "LOGICAL_AND"} and dtype == "bool")
                   or (op.name in {"GATHER", "ONE_HOT"} and dtype == "int32"))
        if not allowed:
            problems.append(f"{dtype} tensor {t} ('{model.tensor_name(t)}'): only float tensors run on the GPU")
    return problems


def _op_problems(model: TfliteModel, op) -> list[str]:  # noqa: C901 - one rule per branch
    name, opts = op.name, op.options
    if name.startswith("CUSTOM:"):
        custom = name.split(":", 1)[1]
        if custom.startswith("Flex"):
            return [f"Flex (SELECT_TF_OPS) op {custom}"]
        return [] if custom in SUPPORTED_CUSTOM else [f"custom op {custom} is not supported"]
    if name not in SUPPORTED_OPS:
        return [f"op {name} is not supported by the GPU delegate"]
    problems = []
    max_version = SUPPORTED_OPS[name]
    if max_version is not None and op.version > max_version:
        problems.append(f"op version {op.version} > {max_version}")
    runtime = model.runtime_inputs(op)
    if name in UNARY and len(runtime) != 1:
        problems.append(f"needs exactly 1 runtime input, has {len(runtime)}")
    if name in BINARY and not 1 <= len(runtime) <= 2:
        problems.append(f"needs 1 or 2 runtime inputs, has {len(runtime)}")
    if name in {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "ADD", "SUB", "MUL", "DIV",
                "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION", "FULLY_CONNECTED"} and opts is not None:
        if (p := _activation_problem(op)):
            problems.append(p)
    if name == "DEPTHWISE_CONV_2D":
        in_c = model.shape(op.inputs[0])[-1]
        if opts.depthMultiplier != 1 and in_c != 1:
            problems.append(f"depth multiplier {opts.depthMultiplier} (only 1, or any with 1 input channel)")
    if name in {"RESIZE_BILINEAR"} and opts.alignCorners and opts.halfPixelCenters:
        problems.append("align_corners and half_pixel_centers both set")
    if name == "MIRROR_PAD" and opts.mode != 0:
        problems.append("MIRROR_PAD mode SYMMETRIC (only REFLECT)")
    if name in {"PAD", "PADV2", "MIRROR_PAD"} and model.shape(op.inputs[1]) not in ([4, 2], [3, 2]):
        problems.append(f"paddings shape {model.shape(op.inputs[1])} (needs 4x2 or 3x2)")
    if name == "STRIDED_SLICE":
        if opts.ellipsisMask or opts.newAxisMask or opts.shrinkAxisMask:
            problems.append("ellipsis/new_axis/shrink_axis mask set")
        if len(model.shape(op.inputs[0])) not in (3, 4):
            problems.append(f"input rank {len(model.shape(op.inputs[0]))} (needs 3 or 4)")
    if name == "SLICE" and len(model.shape(op.inputs[0])) not in (3, 4):
        problems.append(f"input rank {len(model.shape(op.inputs[0]))} (needs 3 or 4)")
    if name == "SOFTMAX" and opts.beta != 1.0:
        problems.append(f"softmax beta {opts.beta} != 1")
    if name in {"RESHAPE", "MEAN", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "SUM", "TILE",
                "TRANSPOSE"} and len(runtime) != 1:
        problems.append(f"needs exactly 1 runtime input (constant shape/axes), has {len(runtime)}")
    if name == "TRANSPOSE" and model.shape(op.inputs[1]) and model.shape(op.inputs[1])[0] not in (2, 3, 4):
        problems.append("transpose permutation of length other than 2-4")
    if name in COMPARISONS:
        users = model.consumers.get(op.outputs[0], [])
        if len(users) != 1 or users[0].name not in {"CAST", "SELECT", "SELECT_V2"}:
            problems.append("comparison output must feed exactly one CAST/SELECT")
    if name == "CAST" and op.outputs[0] in _graph_outputs(model) and model.dtype(op.inputs[0]) == "bool":
        problems.append("bool->float CAST may not be a graph output")
    return problems


def _graph_outputs(model: TfliteModel) -> set[int]:
    return {int(t) for t in model.graph.outputs}


def check_gpu_compatibility(path: str | Path) -> dict:
    """{"compatible": bool, "ops": N, "problems": [{op_index, op, reason}, ...]}."""
    model = TfliteModel(path)
    problems = []
    for op in model.ops:
        for reason in _op_problems(model, op) + _dtype_problems(model, op):
            problems.append(Problem(op.index, op.name, reason))
    return {"compatible": not problems, "ops": len(model.ops),
            "problems": [asdict(p) for p in problems]}


def format_problems(result: dict, limit: int = 20) -> str:
    lines = [f"op {p['op_index']} {p['op']}: {p['reason']}" for p in result["problems"][:limit]]
    if len(result["problems"]) > limit:
        lines.append(f"... and {len(result['problems']) - limit} more")
    return "\n".join(lines)
