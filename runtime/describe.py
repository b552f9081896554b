"""bokeh-render --describe: what a .tflite says it is, for a person or (--json) as data.

Two sources, shown side by side: the standard TFLite Model Metadata (name, version,
licence, each tensor's content, range and normalisation; what Android tooling reads) and
our contract (the sidecar beside the model, else the copy embedded in it). Tensor shapes
come from the model's own signature, so what is printed is what the file holds.
"""
from __future__ import annotations

import mmap
from pathlib import Path

from .. import contract
from ..files import sha256
from ..tflite_metadata import MetadataError, decode_metadata, model_metadata_buffer, signature_io
from .errors import ModelError
from .sidecar import embedded_sidecar, read_sidecar


def describe(model_path: str | Path) -> dict:
    """{"model", "size_bytes", "sha256", "metadata" (decoded, or None), "contract" (where it
    came from and what it says, or None), "inputs", "outputs"}; ModelError for a file that
    is not a TFLite model or whose metadata is damaged."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.stat().st_size < 8:
        raise ModelError(f"{path}: not a TFLite model (too short)")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[4:8] != b"TFL3":
            raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
        try:
            buffer = model_metadata_buffer(data)
            meta = None if buffer is None else decode_metadata(buffer)
            inputs, outputs = signature_io(data)
            shapes = _shapes(data)
        except MetadataError as exc:
            raise ModelError(f"{path}: {exc}") from None
    digest = sha256(path)
    side = None
    if contract.sidecar_path(path).is_file():
        side = read_sidecar(path)
        source = "sidecar " + ("(sha256 matches this file)" if side.get("sha256") == digest
                               else "(sha256 does NOT match this file)")
    else:
        side = embedded_sidecar(path)
        source = "embedded in the model" if side is not None else None
    subgraph = (meta or {}).get("subgraph_metadata", [{}])[0] if meta else {}
    return {
        "model": str(path), "size_bytes": path.stat().st_size, "sha256": digest, "metadata": meta,
        "contract": None if side is None else {
            "source": source, "track": side.get("track"), "precision": side.get("precision"),
            "weights": side.get("weights"), "input_size": side.get("input_size"),
            "postprocess": side.get("postprocess"), "metadata": side.get("metadata")},
        "inputs": _tensors(inputs, shapes, subgraph.get("input_tensor_metadata", []),
                           (side or {}).get("inputs", [])),
        "outputs": _tensors(outputs, shapes, subgraph.get("output_tensor_metadata", []),
                            (side or {}).get("outputs", [])),
    }


def _shapes(data) -> dict[str, tuple[list[int], str]]:
    """Signature name -> (shape, dtype) of the serving_default tensors."""
    from ai_edge_litert import schema_py_generated as schema
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    root = schema.Model.GetRootAs(data, 0)
    out = {}
    for i in range(root.SignatureDefsLength()):
        sig = root.SignatureDefs(i)
        if sig.SignatureKey() not in (contract.SIGNATURE.encode(), contract.SIGNATURE):
            continue
        graph = root.Subgraphs(sig.SubgraphIndex())
        for maps, n in ((sig.Inputs, sig.InputsLength()), (sig.Outputs, sig.OutputsLength())):
            for k in range(n):
                tensor = graph.Tensors(maps(k).TensorIndex())
                name = maps(k).Name()
                out[name.decode() if isinstance(name, bytes) else name] = (
                    [int(s) for s in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else [],
                    types.get(tensor.Type(), str(tensor.Type())))
    return out


def _tensors(names: list[str], shapes: dict, metadata: list[dict], specs: list[dict]) -> list[dict]:
    """One entry per tensor in the subgraph's order; metadata matched by position (the schema's
    rule) and its name checked against the signature's."""
    by_name = {s.get("name"): s for s in specs if isinstance(s, dict)}
    out = []
    for i, name in enumerate(names):
        meta = metadata[i] if i < len(metadata) else {}
        shape, dtype = shapes.get(name, ([], "unknown"))
        props = meta.get("content", {}).get("content_properties", {})
        kind, value = next(iter(props.items())) if props else (None, None)
        norm = next((u["options"]["NormalizationOptions"] for u in meta.get("process_units", [])
                     if "NormalizationOptions" in (u.get("options") or {})), None)
        stats = meta.get("stats", {})
        spec = by_name.get(name, {})
        out.append({
            "name": name, "shape": shape, "dtype": dtype,
            "metadata_name": meta.get("name"),
            "content": (f"{value.get('color_space', 'UNKNOWN')} image" if kind == "ImageProperties"
                        else "feature" if kind == "FeatureProperties" else kind),
            "range": ([stats["min"][0], stats["max"][0]] if stats.get("min") and stats.get("max")
                      else spec.get("range")),
            "normalization": norm, "description": spec.get("meaning") or meta.get("description")})
    return out


def format_description(d: dict) -> str:
    """The describe() dict as lines a person reads."""
    meta, side = d["metadata"], d["contract"]
    lines = [f"{d['model']}  ({d['size_bytes'] / 1e6:.1f} MB, sha256 {d['sha256'][:16]}...)"]
    if meta is None:
        lines.append("  TFLite Model Metadata: none")
    else:
        lines += [f"  name:        {meta.get('name', '-')}", f"  version:     {meta.get('version', '-')}",
                  f"  author:      {meta.get('author', '-')}", f"  licence:     {meta.get('license', '-')}",
                  f"  description: {meta.get('description', '-')}",
                  f"  metadata:    TFLite Model Metadata, min parser {meta.get('min_parser_version', '-')}"
                  + ("; associated files: " + ", ".join(a.get("name", "?") for a in meta["associated_files"])
                     if meta.get("associated_files") else "")]
    if side is None:
        lines.append("  contract:    none (no sidecar beside it and none embedded): bokeh-render cannot run it")
    else:
        post = side.get("postprocess") or {}
        if post.get("blend") == "eq9":
            how = (f"Eq. 9 at the photo's resolution: {post.get('source')!r} with {post.get('defocus')!r}, "
                   f"eta {post.get('eta'):g}, tau {post.get('tau'):g}")
        elif post.get("blend") == "none":
            how = "bokeh sampled up to the photo (bokeh only: no full-resolution Eq. 9)"
        else:
            how = str(post.get("blend"))
        size = side.get("input_size") or ["?", "?"]
        lines += [f"  contract:    {side['source']}",
                  f"  track:       {side.get('track')}, {side.get('precision')}, {side.get('weights')} weights, "
                  f"input {size[0]}x{size[1]}", f"  postprocess: {how}"]
    for title in ("inputs", "outputs"):
        lines.append(f"{title}:")
        for t in d[title]:
            rng = t["range"]
            parts = [f"{t['dtype']} {t['shape']}", t["content"] or "no metadata"]
            if rng:
                parts.append(f"range [{rng[0]:g}, {rng[1]:g}]")
            norm = t["normalization"]
            if norm:
                mean, std = norm.get("mean", [0.0]), norm.get("std", [1.0])
                if title == "inputs":
                    parts.append(f"from pixels: (x - {mean[0]:g}) / {std[0]:g}")
                else:
                    parts.append(f"to pixels: x * {1 / std[0]:g} + {mean[0]:g}" if std[0] else "")
            if t["metadata_name"] not in (None, t["name"]):
                parts.append(f"METADATA NAMES IT {t['metadata_name']!r}")
            lines.append(f"  {t['name']:<10} " + ", ".join(p for p in parts if p))
            if t["description"]:
                lines.append(f"  {'':<10} {t['description']}")
    return "\n".join(lines)
