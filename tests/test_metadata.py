"""TFLite Model Metadata in every export (issue 22): it decodes, it names the signature's
tensors in the subgraph's order, it changes nothing else, and a .tflite alone renders."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bokehlite import contract
from bokehlite.tflite_metadata import (METADATA_NAME, MetadataError, associated_files, decode_metadata,
                                       encode_metadata, model_metadata_buffer, repack, signature_io,
                                       with_metadata, without_metadata)

TRACKS = ("gpu", "cpu", "render")


def render_cli(*args):
    return subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def photo(h=40, w=70):
    return np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)


def alone(model: Path, dest: Path, data: bytes | None = None) -> Path:
    """A copy of `model` (or `data`) in `dest`, with no sidecar beside it."""
    dest.mkdir(exist_ok=True)
    target = dest / model.name
    target.write_bytes(model.read_bytes() if data is None else data)
    return target


@pytest.mark.parametrize("track", TRACKS)
def test_metadata_of_every_track_decodes_and_names_the_signature_in_subgraph_order(tiny_export, track):
    path, report = tiny_export(track)
    data = path.read_bytes()
    meta = decode_metadata(model_metadata_buffer(data))
    inputs, outputs = signature_io(data)
    assert sorted(outputs) == sorted(contract.TRACKS[track].outputs)
    (sub,) = meta["subgraph_metadata"]
    assert [t["name"] for t in sub["input_tensor_metadata"]] == inputs
    assert [t["name"] for t in sub["output_tensor_metadata"]] == outputs
    assert meta["name"].startswith(f"bokehlite {track} track") and meta["license"] and meta["author"]
    assert meta["min_parser_version"] == "1.0.0" and meta["version"].endswith(f"({report['precision']}, "
                                                                              f"{report['weights']} weights)")
    specs = {s["name"]: s for s in report["inputs"] + report["outputs"]}
    for kind, tensors in (("input", sub["input_tensor_metadata"]), ("output", sub["output_tensor_metadata"])):
        for t in tensors:
            spec = specs[t["name"]]
            assert t["stats"] == {"min": [spec["range"][0]], "max": [spec["range"][1]]}
            (prop, value), = t["content"]["content_properties"].items()
            if len(spec["shape"]) == 4:
                assert prop == "ImageProperties"
                assert value["color_space"] == ("RGB" if spec["shape"][3] == 3 else "GRAYSCALE")
                assert value["default_size"] == {"width": spec["shape"][2], "height": spec["shape"][1]}
                (norm,) = [u["options"]["NormalizationOptions"] for u in t["process_units"]]
                std = 255.0 if kind == "input" else np.float32(1 / 255)
                assert norm == {"mean": [0.0], "std": [pytest.approx(std, rel=1e-7)]}
            else:
                assert prop == "FeatureProperties" and spec["shape"] == [1, 1]
    # The sidecar: sha256 of the final file, and of the metadata; the embedded copy is the
    # sidecar without the keys about the final file.
    assert report["sha256"] == hashlib.sha256(data).hexdigest() and report["size_bytes"] == len(data)
    assert report["metadata"]["sha256"] == hashlib.sha256(model_metadata_buffer(data)).hexdigest()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == json.loads(json.dumps(report))
    inner = json.loads(associated_files(data)[contract.CONTRACT_FILE])
    assert inner == {k: v for k, v in sidecar.items() if k not in contract.EMBEDDED_OMITS}
    assert set(contract.EMBEDDED_OMITS) <= set(sidecar)
    assert report["metadata"]["associated_files"] == [{
        "name": contract.CONTRACT_FILE, "size_bytes": len(associated_files(data)[contract.CONTRACT_FILE]),
        "sha256": hashlib.sha256(associated_files(data)[contract.CONTRACT_FILE]).hexdigest()}]


def test_gpu_outputs_are_not_in_pytorch_order_and_the_metadata_follows_the_subgraph(tiny_export):
    # Why TensorMetadata is matched by name: the converter reorders the outputs. If it ever
    # stops doing so, the test above still guards the mapping; this one says the case is real.
    data = tiny_export("gpu")[0].read_bytes()
    _, outputs = signature_io(data)
    assert outputs != list(contract.TRACKS["gpu"].outputs)


@pytest.mark.parametrize("track", TRACKS)
def test_without_its_metadata_the_model_is_unchanged_and_the_writer_is_reproducible(tiny_export, track):
    data = tiny_export(track)[0].read_bytes()
    bare = without_metadata(data)
    assert model_metadata_buffer(bare) is None and associated_files(bare) == {}
    assert repack(bare) == bare                  # the writer's packing is a fixed point
    meta, files = model_metadata_buffer(data), associated_files(data)
    key = contract.CONTRACT_METADATA_KEY
    assert model_metadata_buffer(data, key) == files[contract.CONTRACT_FILE]     # one contract, two ways in
    assert with_metadata(bare, meta, files, {key: files[contract.CONTRACT_FILE]}) == data   # no time stamps
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_STORED
               for i in zipfile.ZipFile(tiny_export(track)[0]).infolist())
    from ai_edge_litert import schema_py_generated as schema
    a = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    b = schema.ModelT.InitFromPackedBuf(bytearray(bare), 0)
    added = [METADATA_NAME.encode(), contract.CONTRACT_METADATA_KEY.encode()]
    assert [m.name for m in a.metadata][-2:] == added and len(a.buffers) == len(b.buffers) + 2
    assert [(m.name, m.buffer) for m in a.metadata][:-2] == [(m.name, m.buffer) for m in b.metadata or []]


def test_buffers_keep_their_16_byte_alignment(tiny_export):
    from ai_edge_litert import schema_py_generated as schema
    data = tiny_export("gpu")[0].read_bytes()
    root = schema.Model.GetRootAs(data, 0)
    starts = [root.Buffers(i).DataAsNumpy().ctypes.data - np.frombuffer(data, np.uint8).ctypes.data
              for i in range(root.BuffersLength()) if root.Buffers(i).DataLength() > 0]
    assert starts and all(s % 16 == 0 for s in starts)


def test_the_export_refuses_a_writer_that_changes_anything_else(tiny_export, tmp_path, monkeypatch):
    from bokehlite.export import metadata
    path, report = tiny_export("gpu")
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(without_metadata(path.read_bytes()))
    real = metadata.with_metadata

    def careless(model, meta, files, buffers=None):     # a writer that also changes the model's description
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
        tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
        tree.description = b"changed"
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
        return real(bytes(builder.Output()), meta, files, buffers)

    monkeypatch.setattr(metadata, "with_metadata", careless)
    before = bare.read_bytes()
    with pytest.raises(MetadataError, match="changed something else"):
        metadata.write_metadata(bare, {k: v for k, v in report.items() if k not in contract.EMBEDDED_OMITS})
    assert bare.read_bytes() == before           # nothing written


def _run_litert(path: Path, backend: str, inputs: dict) -> dict:
    from bokehlite.runtime import backends
    runner = backends.open_model(path, backend, 1)
    return runner(**inputs)


def _inputs(report: dict) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for spec in report["inputs"]:
        lo, hi = spec["range"]
        out[spec["name"]] = rng.uniform(lo, hi, spec["shape"]).astype(np.float32)
    return out


@pytest.mark.parametrize("track", TRACKS)
@pytest.mark.parametrize("backend", ["litert", "litert-interpreter"])
def test_litert_outputs_on_the_cpu_are_bit_identical_with_and_without_metadata(tiny_export, tmp_path,
                                                                               track, backend):
    path, report = tiny_export(track)
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(without_metadata(path.read_bytes()))
    x = _inputs(report)
    with_meta, without = _run_litert(path, backend, x), _run_litert(bare, backend, x)
    assert sorted(with_meta) == sorted(without) == sorted(contract.TRACKS[track].outputs)
    for name in with_meta:
        assert np.array_equal(with_meta[name], without[name]), name


def test_litert_gpu_outputs_are_bit_identical_with_and_without_metadata(tiny_export, tmp_path, gpu_adapter):
    path, report = tiny_export("gpu")
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(without_metadata(path.read_bytes()))
    x = _inputs(report)
    with_meta, without = _run_litert(path, "litert-gpu", x), _run_litert(bare, "litert-gpu", x)
    for name in contract.TRACKS["gpu"].outputs:
        assert np.array_equal(with_meta[name], without[name]), name


def test_a_tflite_alone_renders_from_its_embedded_contract(tiny_export, tmp_path):
    from bokehlite.runtime import BokehRenderer
    path, _ = tiny_export("gpu")
    lone = alone(path, tmp_path / "alone")
    assert not lone.with_suffix(".json").exists()
    image = photo()
    beside, inside = BokehRenderer(path), BokehRenderer(lone)
    assert inside.contract == beside.contract
    assert np.array_equal(inside.render(image), beside.render(image))
    (tmp_path / "in").mkdir()
    import cv2
    cv2.imwrite(str(tmp_path / "in" / "p.png"), image)
    proc = render_cli(tmp_path / "in" / "p.png", "-m", lone, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "p.png").is_file()


def test_a_sidecar_beside_the_model_still_wins_and_is_still_checked(tiny_export, tmp_path):
    from bokehlite.runtime import BokehRenderer, ModelError
    path, report = tiny_export("gpu")
    target = alone(path, tmp_path / "m")
    target.with_suffix(".json").write_text(json.dumps({**report, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        BokehRenderer(target)


def _metadata_offset(data: bytes) -> int:
    meta = model_metadata_buffer(data)
    at = data.find(meta)
    assert at > 0 and data.find(meta, at + 1) == -1
    return at


@pytest.mark.parametrize("damage", ["root offset", "identifier", "string length", "zip cut off"])
def test_a_damaged_metadata_buffer_is_one_line_and_exit_2(tiny_export, tmp_path, damage):
    path, _ = tiny_export("gpu")
    data = bytearray(path.read_bytes())
    at = _metadata_offset(bytes(data))
    if damage == "root offset":
        data[at:at + 4] = (0x7FFFFFF0).to_bytes(4, "little")
    elif damage == "identifier":
        data[at + 4:at + 8] = b"XXXX"
    elif damage == "string length":          # the model's name: its length now runs past the end
        name = b"bokehlite gpu track"
        where = bytes(data).find(name, at)
        data[where - 4:where] = (0x00FFFFFF).to_bytes(4, "little")
    else:
        data = data[:len(data) - 30]
    lone = alone(path, tmp_path / "bad", bytes(data))
    (tmp_path / "p").mkdir()
    import cv2
    cv2.imwrite(str(tmp_path / "p" / "p.png"), photo())
    for args in ((tmp_path / "p" / "p.png", "-m", lone, "-o", tmp_path / "out"), ("--describe", lone)):
        proc = render_cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(lone) in lines[0] and "Traceback" not in proc.stderr, proc.stderr
        if damage != "zip cut off":
            assert "TFLITE_METADATA" in lines[0]
        elif args[0] != "--describe":
            assert contract.CONTRACT_FILE in lines[0]
    assert not (tmp_path / "out" / "p.png").exists()


def test_a_tflite_alone_without_any_contract_is_refused_with_one_line(tiny_export, tmp_path):
    from bokehlite.runtime import BokehRenderer, ModelError
    path, _ = tiny_export("gpu")
    bare = alone(path, tmp_path / "bare", without_metadata(path.read_bytes()))
    with pytest.raises(ModelError, match="sidecar JSON not found.*no embedded contract"):
        BokehRenderer(bare)


def test_describe_prints_the_metadata_and_the_contract(tiny_export, tmp_path):
    path, report = tiny_export("render")
    proc = render_cli("--describe", path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for wanted in ("name:        bokehlite render track 128x192", "licence:", "version:",
                   "contract:    sidecar (sha256 matches this file)",
                   "image      float32 [1, 128, 192, 3], RGB image, range [0, 1], from pixels: (x - 0) / 255",
                   "aperture   float32 [1, 1], feature, range [0, 100]",
                   "disparity  float32 [1, 128, 192, 1], GRAYSCALE image"):
        assert wanted in text, text
    proc = render_cli("--describe", alone(path, tmp_path / "a"), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["contract"]["source"] == "embedded in the model"
    assert data["metadata"] == decode_metadata(model_metadata_buffer(path.read_bytes()))
    inputs, outputs = signature_io(path.read_bytes())
    assert [t["name"] for t in data["inputs"]] == inputs and [t["name"] for t in data["outputs"]] == outputs
    assert {t["name"]: t["shape"] for t in data["inputs"]}["aperture"] == [1, 1]


def test_describe_usage_errors_are_one_line_exit_2(tmp_path):
    for args in (("--describe", tmp_path / "none.tflite"), ("--describe", tmp_path / "x.tflite", "photo.jpg"),
                 ("photo.jpg",)):
        if args[1:2] == (tmp_path / "x.tflite",):
            (tmp_path / "x.tflite").write_bytes(b"\0" * 64)
        proc = render_cli(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_encode_and_decode_round_trip_and_refuse_what_the_schema_lacks():
    meta = {"name": "m", "subgraph_metadata": [{"input_tensor_metadata": [
        {"name": "x", "dimension_names": ["b", "h"], "content": {"content_properties": {"FeatureProperties": {}},
                                                               "range": {"min": 1, "max": 2}}}]}],
            "associated_files": [{"name": "a.txt", "type": "TENSOR_AXIS_LABELS", "locale": "en"}]}
    data = encode_metadata(meta)
    assert data[4:8] == b"M001" and decode_metadata(data) == meta and encode_metadata(meta) == data
    with pytest.raises(MetadataError, match="no field 'colour'"):
        encode_metadata({"name": "m", "colour": "red"})
    with pytest.raises(MetadataError, match="not one of"):
        encode_metadata({"associated_files": [{"type": "PICTURES"}]})
    with pytest.raises(MetadataError, match="identifier"):
        decode_metadata(b"\x08\0\0\0TFL3" + b"\0" * 8)
