"""Read a .tflite flatbuffer: operators, tensors and signatures, without TensorFlow.

Uses the schema bindings that ship with LiteRT (ai_edge_litert), so checking a
model needs neither TensorFlow nor an interpreter.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

from ai_edge_litert import schema_py_generated as schema

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


class ModelFileError(ValueError):
    """The file is not a readable TFLite model."""


@dataclass
class Op:
    index: int
    name: str             # builtin name, or "CUSTOM:<code>"
    version: int
    inputs: list[int]
    outputs: list[int]
    options: object       # the op's *OptionsT object, or None


class TfliteModel:
    """The first subgraph of a TFLite model, with the questions our checks ask of it."""

    def __init__(self, path: str | Path):
        data = Path(path).read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelFileError(f"{path} is not a TFLite model (no TFL3 identifier)")
        try:
            self.model = schema.ModelT.InitFromPackedBuf(data, 0)
        except Exception as exc:  # a damaged flatbuffer fails in many ways
            raise ModelFileError(f"{path} is a damaged TFLite model: {exc}") from None
        self.graph = self.model.subgraphs[0]
        self.ops = [self._op(i, op) for i, op in enumerate(self.graph.operators or [])]
        self.consumers: dict[int, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)
        self.producers = {t: op for op in self.ops for t in op.outputs}

    def _op(self, index, op) -> Op:
        code = self.model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = OP_NAMES.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"CUSTOM:{custom}"
        inputs = [int(t) for t in (op.inputs if op.inputs is not None else [])]
        outputs = [int(t) for t in (op.outputs if op.outputs is not None else [])]
        return Op(index, name, int(code.version), inputs, outputs, op.builtinOptions)

    def tensor(self, index: int):
        return self.graph.tensors[index]

    def tensor_name(self, index: int) -> str:
        name = self.tensor(index).name
        return name.decode() if isinstance(name, bytes) else str(name)

    def dtype(self, index: int) -> str:
        return TYPE_NAMES.get(self.tensor(index).type, str(self.tensor(index).type))

    def shape(self, index: int) -> list[int]:
        shape = self.tensor(index).shape
        return [] if shape is None else [int(s) for s in shape]

    def is_constant(self, index: int) -> bool:
        """Stored in the file, or dequantized from something stored (fp16 weights)."""
        buffer = self.model.buffers[self.tensor(index).buffer]
        if buffer.data is not None and len(buffer.data) > 0:
            return True
        if buffer.size and buffer.size > 0:   # large models keep data outside the flatbuffer
            return True
        producer = self.producers.get(index)
        return producer is not None and producer.name == "DEQUANTIZE" and self.is_constant(producer.inputs[0])

    def runtime_inputs(self, op: Op) -> list[int]:
        return [t for t in op.inputs if t >= 0 and not self.is_constant(t)]

    def op_histogram(self) -> dict[str, int]:
        return dict(Counter(op.name for op in self.ops).most_common())

    def signatures(self) -> dict[str, dict[str, list[str]]]:
        out = {}
        for sig in self.model.signatureDefs or []:
            key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
            name = lambda m: m.name.decode() if isinstance(m.name, bytes) else m.name  # noqa: E731
            out[key] = {"inputs": [name(m) for m in sig.inputs or []],
                        "outputs": [name(m) for m in sig.outputs or []]}
        return out


def conv_places(model: TfliteModel) -> dict[int, str]:
    """CONV_2D op index -> where it sits relative to the SOFTMAX whose six weights make the
    defocus map: "after softmax" (the renderer and the residual module), "<k> before softmax"
    (k convolutions back from it on the shortest way), or "-" (neither). Static int8's recipe
    (calibration.py) and its per-layer report (int8_layers.py) both place layers by it."""
    softmax = [op for op in model.ops if op.name == "SOFTMAX"]
    after, queue = set(), deque(t for op in softmax for t in op.outputs)
    while queue:
        for op in model.consumers.get(queue.popleft(), []):
            if op.index not in after:
                after.add(op.index)
                queue.extend(op.outputs)
    # Breadth-first back from the softmax: how many convolutions lie on the shortest way.
    before: dict[int, int] = {}
    queue = deque((t, 0) for op in softmax for t in op.inputs if t >= 0)
    seen = set()
    while queue:
        t, depth = queue.popleft()
        op = model.producers.get(t)
        if op is None or op.index in seen:
            continue
        seen.add(op.index)
        if op.name == "CONV_2D":
            depth += 1
            before[op.index] = depth
        queue.extend((i, depth) for i in op.inputs if i >= 0 and not model.is_constant(i))
    out = {}
    for op in model.ops:
        if op.name == "CONV_2D":
            out[op.index] = ("after softmax" if op.index in after
                             else f"{before[op.index]} before softmax" if op.index in before else "-")
    return out
