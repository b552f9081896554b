"""TFLite Model Metadata (tflite-support's metadata_schema.fbs, 1.5): encoded, decoded, embedded.

Android tooling (Android Studio's ML Model Binding, tflite_codegen, the support library's
MetadataExtractor, MediaPipe Tasks) learns what a model is from a `ModelMetadata`
flatbuffer (file identifier "M001") kept in a buffer of the model, named by a
`Model.metadata` entry "TFLITE_METADATA"; its associated files travel in a ZIP of stored
(uncompressed) entries appended to the model, with offsets from the start of the file.

No Python module for that schema ships with our dependencies, so the part of it we use is
described once, below (field order = vtable slot; a union takes two slots, its type then
its value), and both the encoder and the decoder follow that one description. The model
itself is re-packed with LiteRT's own generated schema (ai_edge_litert), the newest we
have, so no field of it is lost; buffers keep the schema's 16-byte alignment. Everything
is deterministic: the same inputs give the same bytes (no time stamps, not even in the ZIP).

Plain Python on flatbuffers and ai_edge_litert, so the runtime can read what export wrote.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import encode, number_types as N, packer
from flatbuffers.table import Table

from .contract import CONTRACT_METADATA_KEY

METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
SCHEMA_VERSION = "1.5.0"         # the metadata_schema.fbs these field slots follow
# Every field we write exists since metadata parser 1.0.0 (AssociatedFile.version, 1.4.1,
# is the only newer one described here, and we never set it).
MIN_PARSER_VERSION = "1.0.0"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)      # the earliest a ZIP can say: no time stamp in the file


class MetadataError(ValueError):
    """Model Metadata that cannot be encoded, found or decoded; the message says which and why."""


# -- the schema subset ---------------------------------------------------------------------------
STR, BYTE, UINT, INT = "string", "byte", "uint", "int"
FLOATS, STRS = "[float]", "[string]"
ENUMS = {
    "ColorSpaceType": ("UNKNOWN", "RGB", "GRAYSCALE"),
    "AssociatedFileType": ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
                           "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE"),
}
UNIONS = {      # member names in type-code order from 1 (0 is NONE)
    "ContentProperties": ("FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties"),
    "ProcessUnitOptions": ("NormalizationOptions", "ScoreCalibrationOptions", "ScoreThresholdingOptions",
                           "BertTokenizerOptions", "SentencePieceTokenizerOptions", "RegexTokenizerOptions"),
}
# Table -> fields in declaration order. ("union", U) takes two slots; ("enum", E) is a byte;
# a table name is a sub-table, [name] a vector of them.
TABLES: dict[str, list[tuple[str, object]]] = {
    "ModelMetadata": [("name", STR), ("description", STR), ("version", STR),
                      ("subgraph_metadata", ["SubGraphMetadata"]), ("author", STR), ("license", STR),
                      ("associated_files", ["AssociatedFile"]), ("min_parser_version", STR)],
    "SubGraphMetadata": [("name", STR), ("description", STR),
                         ("input_tensor_metadata", ["TensorMetadata"]),
                         ("output_tensor_metadata", ["TensorMetadata"]),
                         ("associated_files", ["AssociatedFile"]),
                         ("input_process_units", ["ProcessUnit"]), ("output_process_units", ["ProcessUnit"])],
    "TensorMetadata": [("name", STR), ("description", STR), ("dimension_names", STRS),
                       ("content", "Content"), ("process_units", ["ProcessUnit"]), ("stats", "Stats"),
                       ("associated_files", ["AssociatedFile"])],
    "Content": [("content_properties", ("union", "ContentProperties")), ("range", "ValueRange")],
    "FeatureProperties": [],
    "ImageProperties": [("color_space", ("enum", "ColorSpaceType")), ("default_size", "ImageSize")],
    "ImageSize": [("width", UINT), ("height", UINT)],
    "ValueRange": [("min", INT), ("max", INT)],
    "ProcessUnit": [("options", ("union", "ProcessUnitOptions"))],
    "NormalizationOptions": [("mean", FLOATS), ("std", FLOATS)],
    "Stats": [("max", FLOATS), ("min", FLOATS)],
    "AssociatedFile": [("name", STR), ("description", STR), ("type", ("enum", "AssociatedFileType")),
                       ("locale", STR), ("version", STR)],
}


def _slots(table: str):
    slot = 0
    for name, kind in TABLES[table]:
        yield name, kind, slot
        slot += 2 if isinstance(kind, tuple) and kind[0] == "union" else 1


# -- encoding ------------------------------------------------------------------------------------
def encode_metadata(metadata: dict) -> bytes:
    """A ModelMetadata dict (field names as in the schema; a union is {member: table}; an
    enum is its name) -> the flatbuffer, file identifier "M001"."""
    builder = flatbuffers.Builder(1024)
    root = _encode_table(builder, "ModelMetadata", metadata)
    builder.Finish(root, file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def _encode_table(builder, table: str, value: dict) -> int:
    if not isinstance(value, dict):
        raise MetadataError(f"{table} must be a dict, got {type(value).__name__}")
    unknown = set(value) - {name for name, _ in TABLES[table]}
    if unknown:
        raise MetadataError(f"{table} has no field {sorted(unknown)[0]!r}")
    children = {}               # children before the table: flatbuffers builds back to front
    for name, kind, _ in _slots(table):
        v = value.get(name)
        if v is None:
            continue
        if kind == STR:
            children[name] = builder.CreateString(str(v))
        elif kind == STRS:
            offsets = [builder.CreateString(str(s)) for s in v]
            children[name] = _offset_vector(builder, offsets)
        elif kind == FLOATS:
            builder.StartVector(4, len(v), 4)
            for f in reversed(v):
                builder.PrependFloat32(float(f))
            children[name] = builder.EndVector()
        elif isinstance(kind, list):
            children[name] = _offset_vector(builder, [_encode_table(builder, kind[0], t) for t in v])
        elif isinstance(kind, str) and kind in TABLES:
            children[name] = _encode_table(builder, kind, v)
        elif isinstance(kind, tuple) and kind[0] == "union":
            if not (isinstance(v, dict) and len(v) == 1):
                raise MetadataError(f"{table}.{name} must be {{member: table}}, got {v!r}")
            (member, inner), = v.items()
            if member not in UNIONS[kind[1]]:
                raise MetadataError(f"{table}.{name}: {member!r} is not a member of {kind[1]}")
            children[name] = (UNIONS[kind[1]].index(member) + 1, _encode_table(builder, member, inner or {}))
    builder.StartObject(sum(2 if isinstance(k, tuple) and k[0] == "union" else 1 for _, k in TABLES[table]))
    for name, kind, slot in _slots(table):
        v = value.get(name)
        if v is None:
            continue
        if kind == UINT:
            builder.PrependUint32Slot(slot, int(v), 0)
        elif kind == INT:
            builder.PrependInt32Slot(slot, int(v), 0)
        elif isinstance(kind, tuple) and kind[0] == "enum":
            names = ENUMS[kind[1]]
            if v not in names:
                raise MetadataError(f"{table}.{name}: {v!r} is not one of {', '.join(names)}")
            builder.PrependInt8Slot(slot, names.index(v), 0)
        elif isinstance(kind, tuple) and kind[0] == "union":
            code, offset = children[name]
            builder.PrependUint8Slot(slot, code, 0)
            builder.PrependUOffsetTRelativeSlot(slot + 1, offset, 0)
        else:
            builder.PrependUOffsetTRelativeSlot(slot, children[name], 0)
    return builder.EndObject()


def _offset_vector(builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


# -- decoding ------------------------------------------------------------------------------------
def decode_metadata(data: bytes) -> dict:
    """The flatbuffer -> a dict as `encode_metadata` takes (absent fields left out; union
    members this module does not describe come back as {member: None}). MetadataError if
    it is not a Model Metadata flatbuffer or is damaged."""
    data = bytes(data)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise MetadataError(f"the {METADATA_NAME} buffer is not a Model Metadata flatbuffer "
                            f"(identifier {data[4:8]!r}, expected {IDENTIFIER!r})")
    try:
        root = encode.Get(packer.uoffset, data, 0)
        return _decode_table(Table(bytearray(data), root), "ModelMetadata", len(data), 0)
    except MetadataError:
        raise
    except (struct.error, IndexError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MetadataError(f"the {METADATA_NAME} buffer is damaged ({type(exc).__name__}: {exc})") from None


def _decode_table(tab: Table, table: str, size: int, depth: int) -> dict:
    if not (0 <= tab.Pos < size) or depth > 16:
        raise MetadataError(f"the {METADATA_NAME} buffer is damaged (a {table} offset is out of range)")
    out = {}
    for name, kind, slot in _slots(table):
        o = tab.Offset(4 + 2 * slot)
        if not o:
            continue
        if kind == STR:
            out[name] = _string(tab, o, size)
        elif kind in (UINT, INT):
            out[name] = int(tab.Get(N.Uint32Flags if kind == UINT else N.Int32Flags, o + tab.Pos))
        elif kind == FLOATS:
            start, n = _vector(tab, o, size, 4)
            out[name] = [float(tab.Get(N.Float32Flags, start + 4 * i)) for i in range(n)]
        elif kind == STRS:
            start, n = _vector(tab, o, size, 4)
            out[name] = [_string_at(tab, start + 4 * i, size) for i in range(n)]
        elif isinstance(kind, list):
            start, n = _vector(tab, o, size, 4)
            out[name] = [_decode_table(Table(tab.Bytes, tab.Indirect(start + 4 * i)), kind[0], size, depth + 1)
                         for i in range(n)]
        elif isinstance(kind, str):
            out[name] = _decode_table(Table(tab.Bytes, tab.Indirect(o + tab.Pos)), kind, size, depth + 1)
        elif kind[0] == "enum":
            names, code = ENUMS[kind[1]], int(tab.Get(N.Int8Flags, o + tab.Pos))
            out[name] = names[code] if 0 <= code < len(names) else f"UNKNOWN_{code}"
        else:               # a union: its type byte here, the table in the next slot
            members, code = UNIONS[kind[1]], int(tab.Get(N.Uint8Flags, o + tab.Pos))
            value = tab.Offset(4 + 2 * (slot + 1))
            if not (1 <= code <= len(members)) or not value:
                continue
            member = members[code - 1]
            out[name] = {member: _decode_table(Table(tab.Bytes, tab.Indirect(value + tab.Pos)), member,
                                               size, depth + 1) if member in TABLES else None}
    return out


def _vector(tab: Table, o: int, size: int, width: int) -> tuple[int, int]:
    start, n = tab.Vector(o), tab.VectorLen(o)
    if start + n * width > size:
        raise MetadataError(f"the {METADATA_NAME} buffer is damaged (a vector runs past its end)")
    return start, n


def _string(tab: Table, o: int, size: int) -> str:
    return _string_at(tab, o + tab.Pos, size)


def _string_at(tab: Table, at: int, size: int) -> str:
    start = at + encode.Get(packer.uoffset, tab.Bytes, at)
    n = encode.Get(packer.uoffset, tab.Bytes, start)
    if start + 4 + n > size:
        raise MetadataError(f"the {METADATA_NAME} buffer is damaged (a string runs past its end)")
    return bytes(tab.Bytes[start + 4:start + 4 + n]).decode("utf-8")


# -- the model around it -------------------------------------------------------------------------
def _schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def model_metadata_buffer(model: bytes, name: str = METADATA_NAME) -> bytes | None:
    """The bytes of the model's metadata buffer `name` (by default TFLITE_METADATA), or None;
    read lazily (no unpacking)."""
    schema = _schema()
    try:
        root = schema.Model.GetRootAs(model, 0)
        for i in range(root.MetadataLength()):
            entry = root.Metadata(i)
            if _name(entry.Name()) == name:
                index = entry.Buffer()
                if not 0 <= index < root.BuffersLength():
                    raise MetadataError(f"the {name} entry points at buffer {index}, "
                                        f"the model has {root.BuffersLength()}")
                buf = root.Buffers(index)
                if buf.Offset():
                    return bytes(model[buf.Offset():buf.Offset() + buf.Size()])
                return buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    except MetadataError:
        raise
    except Exception as exc:         # a damaged flatbuffer fails in many ways
        raise MetadataError(f"the model's flatbuffer is damaged ({type(exc).__name__}: {exc})") from None
    return None


def _pack_buffer(buffer, builder) -> int:
    """BufferT.Pack with the schema's `force_align: 16` on the data, which the generated Python
    packer drops, so constant tensors stay as aligned as the converter left them."""
    schema = _schema()
    data = None
    if buffer.data is not None:
        raw = np.asarray(buffer.data, np.uint8).tobytes()
        builder.StartVector(1, len(raw), 16)
        builder.head -= len(raw)
        builder.Bytes[builder.head:builder.head + len(raw)] = raw
        data = builder.EndVector()
    schema.BufferStart(builder)
    if data is not None:
        schema.BufferAddData(builder, data)
    schema.BufferAddOffset(builder, buffer.offset)
    schema.BufferAddSize(builder, buffer.size)
    return schema.BufferEnd(builder)


def _unpack(model: bytes):
    schema = _schema()
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise MetadataError("not a TFLite model (no TFL3 identifier)")
    try:
        tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as exc:
        raise MetadataError(f"damaged TFLite model ({type(exc).__name__}: {exc})") from None
    if any(b.offset for b in tree.buffers or []):
        raise MetadataError("models with buffers outside the flatbuffer (over 2 GB) are not supported")
    return tree


def _pack(tree) -> bytes:
    for b in tree.buffers or []:          # ModelT.Pack calls each buffer's own Pack
        b.Pack = (lambda builder, b=b: _pack_buffer(b, builder))
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def repack(model: bytes) -> bytes:
    """The model as this module writes flatbuffers (the same fields, buffers 16-byte aligned):
    what `with_metadata` starts from, for comparisons."""
    return _pack(_unpack(model))


def with_metadata(model: bytes, metadata: bytes, files: dict[str, bytes] | None = None,
                  buffers: dict[str, bytes] | None = None) -> bytes:
    """`model` (a .tflite's bytes) with `metadata` as its TFLITE_METADATA buffer and each of
    `buffers` as a metadata buffer under its own name (each replacing an existing one in
    place, else appended as the last buffers, in that order), and `files` in a stored ZIP
    after it. Any ZIP the model already carried is dropped: `files` is the whole new set."""
    schema = _schema()
    tree = _unpack(model)
    for name, data in {METADATA_NAME: metadata, **(buffers or {})}.items():
        entry = next((m for m in tree.metadata or [] if _name(m.name) == name), None)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        buffer.offset = buffer.size = 0
        if entry is not None:
            tree.buffers[entry.buffer] = buffer
        else:
            tree.buffers = [*(tree.buffers or []), buffer]
            entry = schema.MetadataT()
            entry.name, entry.buffer = name, len(tree.buffers) - 1
            tree.metadata = [*(tree.metadata or []), entry]
    packed = _pack(tree)
    return zip_after(packed, files) if files else packed


def without_metadata(model: bytes, names: tuple[str, ...] | None = None) -> bytes:
    """The model with the metadata entries `names` and their buffers (the last ones, as
    `with_metadata` appends them) removed and no ZIP; MetadataError if one is missing or its
    buffer is not among the last. By default: TFLITE_METADATA, and the embedded contract's
    buffer where there is one."""
    tree = _unpack(model)
    if names is None:
        present = {_name(m.name) for m in tree.metadata or []}
        names = (METADATA_NAME,) + tuple(n for n in (CONTRACT_METADATA_KEY,) if n in present)
    for name in reversed(names):
        entries = [m for m in tree.metadata or [] if _name(m.name) == name]
        if not entries:
            raise MetadataError(f"the model has no {name} entry")
        if entries[0].buffer != len(tree.buffers) - 1:
            raise MetadataError(f"the {name} buffer is not the model's last buffer")
        tree.metadata = [m for m in tree.metadata if m is not entries[0]] or None
        tree.buffers = tree.buffers[:-1]
    return _pack(tree)


def zip_after(model: bytes, files: dict[str, bytes]) -> bytes:
    """`model` followed by a stored ZIP of `files` whose offsets count from the model's start."""
    out = io.BytesIO()
    out.write(model)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            z.writestr(info, files[name])
    return out.getvalue()


def associated_files(model) -> dict[str, bytes]:
    """The files in the ZIP appended to a model (its bytes, or the path of the file): name ->
    bytes ({} when there is none)."""
    try:
        with zipfile.ZipFile(model if isinstance(model, (str, os.PathLike)) else io.BytesIO(model)) as z:
            return {info.filename: z.read(info) for info in z.infolist()}
    except zipfile.BadZipFile:
        return {}
    except (OSError, EOFError, ValueError, KeyError) as exc:    # a truncated or damaged ZIP
        raise MetadataError(f"the model's associated files are damaged ({exc})") from None


def signature_io(model: bytes, signature: str = "serving_default") -> tuple[list[str], list[str]]:
    """Signature names of the first subgraph's inputs and outputs, in the subgraph's order
    (the order TensorMetadata must follow; the converter's order is not PyTorch's)."""
    schema = _schema()
    try:
        root = schema.Model.GetRootAs(model, 0)
        for i in range(root.SignatureDefsLength()):
            sig = root.SignatureDefs(i)
            if _name(sig.SignatureKey()) != signature:
                continue
            graph = root.Subgraphs(sig.SubgraphIndex())
            by_index = {}
            for maps, what in ((sig.Inputs, sig.InputsLength()), (sig.Outputs, sig.OutputsLength())):
                for k in range(what):
                    by_index[maps(k).TensorIndex()] = _name(maps(k).Name())
            names = []
            for indices in (graph.InputsAsNumpy(), graph.OutputsAsNumpy()):
                missing = [int(t) for t in indices if int(t) not in by_index]
                if missing:
                    raise MetadataError(f"subgraph tensor {missing[0]} has no name in the {signature!r} signature")
                names.append([by_index[int(t)] for t in indices])
            return names[0], names[1]
    except MetadataError:
        raise
    except Exception as exc:
        raise MetadataError(f"the model's flatbuffer is damaged ({type(exc).__name__}: {exc})") from None
    raise MetadataError(f"the model has no {signature!r} signature")
