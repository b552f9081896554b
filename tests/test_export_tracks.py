"""End-to-end exports on tiny configs: real onnx2tf, real interpreters."""
from __future__ import annotations

import json

import pytest
import torch

from bokehlite.export import parity
from bokehlite.export.gpu_check import check_gpu_compatibility
from bokehlite.contract import artifact_stem
from bokehlite.export.pipeline import ExportError, export_track
from bokehlite.export.plan import ExportPlan
from bokehlite.export.tflite_inspect import TfliteModel
from bokehlite.export.track_model import build_model
from bokehlite.export.tracks import get_track
from bokehlite.model import BackboneConfig, stage_config
from bokehlite.model import BokehNet


@pytest.mark.parametrize("track", ["gpu", "cpu"])
def test_tiny_export_passes_gates_and_matches_pytorch_independently(tiny_export, track):
    path, report = tiny_export(track)
    assert path.is_file() and path.with_suffix(".json").is_file() and path.with_suffix(".onnx").is_file()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == report["sha256"] and sidecar["weights"] == "untrained"
    assert sidecar["precision"] == get_track(track).precision
    assert sidecar["gpu_check"]["compatible"] is True
    # Independent check: rebuild the same seeded model and compare a fresh scene.
    model, _ = build_model(get_track(track), backbone=BackboneConfig.tiny())
    h, w = sidecar["input_size"]
    x = parity.scenes(h, w, count=3)[2]
    with torch.no_grad():
        expected = [parity.nhwc(o.numpy()) for o in model(torch.from_numpy(x))]
    got = parity.run_tflite(path, {"image": parity.nhwc(x)})
    gate = parity.GATES[get_track(track).precision]     # the export's own gate for this precision
    for name, ref in zip(get_track(track).outputs, expected):
        stats = parity.compare(ref, got[name])
        assert not gate.failures(stats), (name, stats, gate.failures(stats))


def test_tflite_signature_has_named_inputs_and_outputs(tiny_export):
    path, _ = tiny_export("gpu")
    sig = TfliteModel(path).signatures()["serving_default"]
    assert sig["inputs"] == ["image"]
    assert sorted(sig["outputs"]) == ["blur", "bokeh", "defocus"]


def test_gpu_track_is_float16_weights_with_float32_io(tiny_export):
    path, report = tiny_export("gpu")
    model = TfliteModel(path)
    assert "DEQUANTIZE" in report["op_histogram"]
    assert any(model.dtype(i) == "float16" for i in range(len(model.graph.tensors)))
    for t in list(model.graph.inputs) + list(model.graph.outputs):
        assert model.dtype(int(t)) == "float32"


def test_cpu_track_has_no_large_depthwise_kernels(tiny_export):
    """XNNPACK spends O(H*W*k^2) memory on large depthwise kernels; the pyramid keeps k small."""
    path, _ = tiny_export("cpu")
    model = TfliteModel(path)
    sizes = [model.shape(op.inputs[1])[1] for op in model.ops if op.name == "DEPTHWISE_CONV_2D"]
    assert sizes and max(sizes) <= 19


def test_failing_tflite_parity_gate_leaves_no_file(tmp_path):
    """ONNX gates (float32) pass; the float16 TFLite gate, checked after conversion, fails."""
    gates = {"float32": parity.GATES["float32"], "float16": parity.Gate(None, 1e9, None)}
    with pytest.raises(ExportError, match=r"parity gate failed \(TFLite vs PyTorch"):
        export_track(ExportPlan.build("gpu", (128, 192), backbone=BackboneConfig.tiny(), gates=gates), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_size_names_the_required_multiple(tmp_path):
    with pytest.raises(ValueError, match="multiples of 128"):
        export_track(ExportPlan.build("cpu", (128, 200), backbone=BackboneConfig.tiny()), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _authors_state_dict(net: BokehNet) -> dict:
    """Rename our keys to the authors' BokehNet2 names (the inverse of our importer)."""
    rules = [("defocus_net.encoder.conv1.", "midas.pretrained.layer1.0."),
             ("defocus_net.encoder.bn1.", "midas.pretrained.layer1.1."),
             ("defocus_net.encoder.layer1.", "midas.pretrained.layer1.4."),
             ("defocus_net.encoder.", "midas.pretrained."), ("defocus_net.head.", "midas.scratch.output_conv."),
             ("radiance.", "radiance.")]
    out = {}
    for key, value in net.state_dict().items():
        if key.startswith("defocus_net.adapters."):
            i = int(key.split(".")[2])
            new = f"midas.scratch.layer{i + 1}_rn." + key.split(".", 3)[3]
        elif key.startswith("defocus_net.fusions."):
            _, _, i, unit, rest = key.split(".", 4)
            new = f"midas.scratch.refinenet{int(i) + 1}.resConfUnit{1 if unit == 'rcu_skip' else 2}.{rest}"
        else:
            new = next(n + key[len(o):] for o, n in rules if key.startswith(o))
        out[new] = value.clone()
    return out


def test_authors_checkpoint_exports_with_its_weights(tmp_path):
    torch.manual_seed(3)
    net = BokehNet(stage_config("inference", backbone=BackboneConfig.tiny()))
    ckpt = tmp_path / "authors.pth"
    torch.save({"net": _authors_state_dict(net), "optimizer": {}}, ckpt)
    report = export_track(ExportPlan.build("gpu", (128, 192), checkpoint=ckpt, backbone=BackboneConfig.tiny()),
                          tmp_path / "out")
    assert report["weights"] == "trained"
    tflite = tmp_path / "out" / f"{artifact_stem('gpu', (128, 192))}.tflite"
    x = parity.scenes(128, 192, 1)[0]
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x))["bokeh"].numpy()
    got = parity.run_tflite(tflite, {"image": parity.nhwc(x)})["bokeh"]
    assert parity.compare(parity.nhwc(ref), got)["psnr"] >= 45.0


def test_gpu_checker_flags_a_crafted_incompatible_model(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def bad(x):
        index = tf.argmax(tf.cumsum(x, axis=1), axis=-1)         # ARG_MAX with an int64 output
        volume = tf.reshape(x, [1, 2, 4, 8, 3]) * 2.0            # a 5-D tensor
        return {"index": index, "volume": volume}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([bad.get_concrete_function()])
    path = tmp_path / "bad.tflite"
    path.write_bytes(converter.convert())
    result = check_gpu_compatibility(path)
    reasons = " | ".join(p["reason"] for p in result["problems"])
    assert not result["compatible"]
    assert "ARG_MAX is not supported" in reasons
    assert "int64" in reasons
    assert "rank 5" in reasons


def test_gpu_checker_flags_options_the_delegate_rejects(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def bad(x):
        y = tf.raw_ops.MirrorPad(input=x, paddings=[[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        return {"y": tf.compat.v1.image.resize_bilinear(y, [20, 20], align_corners=False,
                                                        half_pixel_centers=True)}

    path = tmp_path / "pad.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([bad.get_concrete_function()]).convert())
    reasons = " | ".join(p["reason"] for p in check_gpu_compatibility(path)["problems"])
    assert "SYMMETRIC" in reasons


def test_report_json_holds_the_contract(tiny_export):
    _, report = tiny_export("gpu")
    for key in ("track", "inputs", "outputs", "preprocess", "postprocess", "op_histogram", "parity",
                "gpu_check", "gpu_accelerator", "gpu_rewrites", "versions", "sha256", "size_bytes", "weights"):
        assert key in report, key
    assert report["postprocess"]["source"] == "blur"
    assert {o["name"] for o in report["outputs"]} == {"bokeh", "blur", "defocus"}
    assert report["versions"]["onnx2tf"] != "not installed"


def test_render_track_takes_a_checkpoints_radiance_with_its_own_width_and_constants(tmp_path, monkeypatch):
    from bokehlite.model import RadianceConfig, save_checkpoint
    from bokehlite.model.bokehnet import BokehNet as Net
    radiance = RadianceConfig(hidden=8, threshold=0.9, alpha=2.0, beta=3)
    source = BokehNet(stage_config("stage1", backbone=BackboneConfig.tiny(), radiance=radiance))
    save_checkpoint(source, tmp_path / "stage1.pth")
    monkeypatch.setattr(Net, "__init__", lambda *a, **k: (_ for _ in ()).throw(AssertionError("built")))
    model, trained = build_model(get_track("render"), tmp_path / "stage1.pth")
    assert trained and model.net.radiance.cfg == radiance
    for key, value in source.radiance.state_dict().items():
        assert torch.equal(model.net.radiance.state_dict()[key], value), key


def test_render_track_export_with_a_broken_radiance_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys
    state = BokehNet(stage_config("inference", backbone=BackboneConfig.tiny())).state_dict()
    broken = {("midas." + k if not k.startswith("radiance.") else k): v for k, v in state.items()}
    broken["radiance.conv2.weight"] = broken["radiance.conv2.weight"][:4]       # mis-shaped
    torch.save(broken, tmp_path / "broken.pth")
    proc = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", "render", "--input-size",
                           "64x96", "--checkpoint", str(tmp_path / "broken.pth"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "radiance.conv2.weight" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
