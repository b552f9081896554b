"""The int8 CPU track (`--precision int8`): dynamic-range weights, float32 activations and I/O,
gated on held-out real photos. Tiny backbone at 128x256: real onnx2tf, real LiteRT."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from bokehlite.compare import compare
from bokehlite.contract import artifact_stem
from bokehlite.export import onnx_export, parity, photo_gate, quantization
from bokehlite.export.pipeline import ExportError, export_track
from bokehlite.export.plan import ExportPlan
from bokehlite.export.tflite_inspect import TfliteModel
from bokehlite.export.track_model import build_model
from bokehlite.export.tracks import get_track, input_shapes
from bokehlite.model import BackboneConfig

SIZE = (128, 256)


@pytest.fixture(scope="module")
def int8_export(tiny_int8):
    """The session's tiny int8 export (conftest.py), at SIZE."""
    assert tiny_int8[0].name == f"{artifact_stem('cpu', SIZE, 'int8')}.tflite"
    return tiny_int8


def test_tiny_int8_export_carries_int8_weights_with_float32_io_and_float_softmax(int8_export):
    path, report = int8_export
    assert path.name == "bokeh_cpu_128x256_int8.tflite" and path.with_suffix(".json").is_file()
    model = TfliteModel(path)
    int8_weights = [i for i in range(len(model.graph.tensors))
                    if model.dtype(i) == "int8" and model.is_constant(i)]
    assert int8_weights, "no int8 weight tensor in the file"
    for t in list(model.graph.inputs) + list(model.graph.outputs):
        assert model.dtype(int(t)) == "float32"
    # The ops int8 would break compute in float32: read from the file, not from the report.
    for op in model.ops:
        if op.name in ("SOFTMAX", "DIV"):
            assert all(model.dtype(t) == "float32" for t in op.inputs + op.outputs if t >= 0), op
    assert {"SOFTMAX", "DIV"} <= set(report["quantization"]["kept_float"])
    assert report["quantization"]["quantized_ops"].get("CONV_2D", 0) > 0
    assert report["quantization"]["int8_weight_tensors"] == len(int8_weights)
    # The renderer's blurs stay float32, so XNNPACK runs them. The cpu track renders 1, 5,
    # 11, 19, 27 and 35 px: one 5x5 pass, and a vertical and a horizontal pass for each of
    # the four separable layers (the largest one's over 1024 weights).
    blurs = [op for op in model.ops if op.name == "DEPTHWISE_CONV_2D"]
    assert len(blurs) == 1 + 2 * 4 and all(model.dtype(op.inputs[1]) == "float32" for op in blurs)
    assert report["separable_blurs"] == 4
    assert "DEPTHWISE_CONV_2D" not in report["quantization"]["quantized_ops"]


def test_int8_depthwise_filters_go_back_to_float32_with_their_int8_values(tmp_path):
    import tensorflow as tf
    from bokehlite.export.float_blurs import float_depthwise_filters
    weights = np.random.default_rng(0).random((15, 15, 7, 1)).astype(np.float32) / 225   # 1575 values
    fn = tf.function(lambda x: tf.nn.depthwise_conv2d(x, tf.constant(weights), [1, 1, 1, 1], "SAME"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(tf.TensorSpec([1, 32, 32, 7], tf.float32))])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    hybrid = converter.convert()
    (tmp_path / "hybrid.tflite").write_bytes(hybrid)
    before = TfliteModel(tmp_path / "hybrid.tflite")
    [op] = [op for op in before.ops if op.name == "DEPTHWISE_CONV_2D"]
    assert before.dtype(op.inputs[1]) == "int8"          # what the converter does with >= 1024 weights
    data, changed = float_depthwise_filters(hybrid)
    assert changed == 1
    (tmp_path / "float.tflite").write_bytes(data)
    after = TfliteModel(tmp_path / "float.tflite")
    [op] = [op for op in after.ops if op.name == "DEPTHWISE_CONV_2D"]
    assert after.dtype(op.inputs[1]) == "float32"
    from ai_edge_litert.tools import flatbuffer_utils
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = tree.buffers[tree.subgraphs[0].tensors[op.inputs[1]].buffer]
    restored = np.frombuffer(bytes(buffer.data), "<f4").reshape(1, 15, 15, 7)
    step = weights.max(axis=(0, 1, 3)) / 127                   # per-channel symmetric int8 scale
    assert np.all(np.abs(restored[0] - weights[..., 0]) <= step / 2 + 1e-7)
    assert float_depthwise_filters(data)[1] == 0               # nothing left to do the second time


def test_int8_sidecar_records_method_gate_and_per_photo_figures(int8_export):
    path, report = int8_export
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == report["sha256"] and sidecar["precision"] == "int8"
    q = sidecar["quantization"]
    assert q["method"] == "dynamic-range" and q["weights"] == "int8" and q["activations"] == "float32"
    assert q["granularity"] == "per-channel" and q["symmetric"] is True and q["problems"] == []
    assert sidecar["parity"]["gate"] == {"min_bokeh_psnr": 30.0, "max_defocus_mae": 0.02}
    photos = sidecar["parity"]["real_photos"]
    assert [p["photo"] for p in photos["photos"]] == list(photo_gate.HELD_OUT)
    assert photos["held_out"] is True
    assert photos["weights"] == sidecar["weights"] == "untrained"       # the figure says which weights it is on
    assert photos["worst"]["bokeh_psnr"] == min(p["bokeh_psnr"] for p in photos["photos"])
    assert photos["worst"]["defocus_mae"] == max(p["defocus_mae"] for p in photos["photos"])
    assert not parity.GATES["int8"].failures(photos)


def test_int8_gate_figures_match_an_independent_pytorch_run(int8_export):
    """Rebuild the seeded float32 model (never exported, so never touched by torch.onnx) and
    recompute one photo's figures: the gate compared against the right reference."""
    path, report = int8_export
    model, _ = build_model(get_track("cpu"), backbone=BackboneConfig.tiny())
    x = photo_gate.fitted(photo_gate.load_photo(photo_gate.photo_path("coffee.png")), SIZE)
    with torch.no_grad():
        bokeh, defocus = (o.numpy().transpose(0, 2, 3, 1) for o in model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))
    got = parity.run_tflite(path, {"image": x})
    recorded = next(p for p in report["parity"]["real_photos"]["photos"] if p["photo"] == "coffee.png")
    assert compare(bokeh, got["bokeh"])["psnr"] == pytest.approx(recorded["bokeh_psnr"], abs=0.01)
    assert float(np.abs(defocus - got["defocus"]).mean()) == pytest.approx(recorded["defocus_mae"], rel=1e-3, abs=1e-7)


def test_int8_file_is_under_half_the_float32_one_which_has_no_int8_weights(int8_export, tiny_export):
    path, _ = int8_export
    float_path, _ = tiny_export("cpu")
    assert path.stat().st_size < 0.5 * float_path.stat().st_size
    assert quantization.summary(TfliteModel(float_path))["problems"] == [
        "no op carries int8 weights: the converter did not quantize"]


def test_int8_gate_set_impossibly_high_fails_the_export_and_leaves_nothing(tmp_path):
    gates = dict(parity.GATES, int8=parity.PhotoGate(min_bokeh_psnr=1e9, max_defocus_mae=0.0))
    with pytest.raises(ExportError, match=r"parity gate failed \(TFLite int8 vs float32 PyTorch on real "
                                          r"photos.*astronaut\.png: bokeh PSNR"):
        export_track(ExportPlan.build("cpu", SIZE, backbone=BackboneConfig.tiny(), gates=gates, precision="int8"),
                     tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_photo_gate_names_each_failing_photo_and_figure():
    stats = {"photos": [{"photo": "a.png", "bokeh_psnr": 29.0, "defocus_mae": 0.001},
                        {"photo": "b.png", "bokeh_psnr": None, "defocus_mae": 0.03}]}
    assert parity.PhotoGate(30.0, 0.02).failures(stats) == [
        "a.png: bokeh PSNR 29.0 dB < 30 dB", "b.png: defocus mean |err| 0.0300 > 0.02"]


@pytest.mark.parametrize("track", ["render", "portrait"])
def test_int8_on_a_track_without_learned_weights_exits_2_with_one_line(tmp_path, track):
    result = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", "--track", track, "--precision",
                             "int8", "--tiny", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "int8 is only built for the cpu and gpu tracks" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_gpu_track_int8_for_the_cpu_fallback_passes_the_photo_gate_with_a_float_renderer(tiny_gpu_int8):
    """A phone whose GPU is refused runs the gpu track on its CPU: int8 convolutions in the
    defocus net, the renderer's blurs in float32, gated on the real photos like the cpu track.
    The export is the run's shared one (conftest.py `tiny_gpu_int8`; test_arm64.py runs it)."""
    tflite, report = tiny_gpu_int8
    assert tflite.name == "bokeh_gpu_128x192_int8.tflite"
    model = TfliteModel(tflite)
    assert report["precision"] == "int8" and report["quantization"]["quantized_ops"].get("CONV_2D", 0) > 0
    assert all(model.dtype(op.inputs[1]) == "float32" for op in model.ops if op.name == "DEPTHWISE_CONV_2D")
    worst = report["parity"]["real_photos"]["worst"]
    assert worst["bokeh_psnr"] >= 30.0 and worst["defocus_mae"] <= 0.02
    assert report["gpu_rewrites"] == [] and report["fp16_arithmetic"] is None      # made for the CPU


def test_onnx_export_leaves_the_track_model_in_eval_mode(tmp_path):
    """torch.onnx.export restores the wrapper's mode; the photo gate's PyTorch reference runs
    after the export and must still use the BatchNorms' running statistics."""
    track = get_track("cpu", "int8")
    model, _ = build_model(track, backbone=BackboneConfig.tiny())
    x = torch.rand(1, 3, *SIZE)
    with torch.no_grad():
        before = model(x)
    onnx_export.export_onnx(model, input_shapes(track, SIZE), track.outputs, tmp_path / "m.onnx")
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        after = model(x)
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_calibration_set_sharing_a_gate_photo_is_refused():
    coffee = photo_gate.load_photo(photo_gate.photo_path("coffee.png"))
    with pytest.raises(ValueError, match="mine.png is the int8 gate's held-out photo coffee.png"):
        photo_gate.check_held_out([coffee[:, ::-1], coffee.copy()], ["flipped.png", "mine.png"])
    photo_gate.check_held_out([coffee[:, ::-1]])        # a mirrored copy is a different photo


# --- static int8 (--calibration DIR) ---------------------------------------------------------

def calibration_folder(folder, count: int):
    """`count` crops of real photos that are not the gate's (the built-in set's sources)."""
    from bokehlite.export.calibration import write_builtin_set
    write_builtin_set(folder, count)
    return folder


def int8_activation(model, op) -> bool:
    return any(model.dtype(t) == "int8" for t in op.inputs + op.outputs if t >= 0 and not model.is_constant(t))


def downstream_of_softmax(model) -> set[int]:
    """Indices of every op that consumes, at any distance, the SOFTMAX's output."""
    [softmax] = [o for o in model.ops if o.name == "SOFTMAX"]
    tensors, found = set(softmax.outputs), set()
    for op in model.ops:                     # the ops are stored in execution order
        if op.index not in found and tensors & set(op.inputs):
            found.add(op.index)
            tensors |= set(op.outputs)
    return found


def feeds_softmax(model, op) -> bool:
    """Whether `op` reaches the SOFTMAX through ops that are not convolutions (it is the head's last)."""
    [softmax] = [o for o in model.ops if o.name == "SOFTMAX"]
    todo, seen = [op], set()
    while todo:
        o = todo.pop()
        for t in o.outputs:
            for c in model.ops:
                if t in c.inputs and c.index not in seen:
                    seen.add(c.index)
                    if c is softmax or c.index == softmax.index:
                        return True
                    if c.name != "CONV_2D":
                        todo.append(c)
    return False


def test_static_int8_keeps_the_head_and_everything_after_the_softmax_off_int8_activations(tmp_path):
    folder = calibration_folder(tmp_path / "calib", 32)
    report = export_track(ExportPlan.build("cpu", SIZE, backbone=BackboneConfig.tiny(), precision="int8",
                                           calibration=folder), tmp_path / "out")
    model = TfliteModel(tmp_path / "out" / "bokeh_cpu_128x256_int8.tflite")
    int8_activations = {op.name for op in model.ops for t in op.inputs + op.outputs
                        if t >= 0 and not model.is_constant(t) and model.dtype(t) == "int8"}
    assert int8_activations == {"CONV_2D", "QUANTIZE", "DEQUANTIZE"}
    for t in list(model.graph.inputs) + list(model.graph.outputs):
        assert model.dtype(int(t)) == "float32"
    convs = [op for op in model.ops if op.name == "CONV_2D"]
    # The renderer's and the residual module's convolutions (after the softmax) and the head's last
    # (the logits) never see an int8 activation; the big ones carry dynamic-range int8 weights.
    after = [op for op in convs if op.index in downstream_of_softmax(model)]
    [logits] = [op for op in convs if feeds_softmax(model, op)]
    assert after and not any(int8_activation(model, op) for op in after + [logits])
    assert all(model.dtype(op.inputs[1]) == ("int8" if np.prod(model.shape(op.inputs[1])) >= 1024 else "float32")
               for op in after + [logits])
    static = [op for op in convs if int8_activation(model, op)]
    assert static and all(model.dtype(op.inputs[1]) == "int8" for op in static)
    q = report["quantization"]
    assert q["method"] == "static" and q["problems"] == [] and {"SOFTMAX", "DIV"} <= set(q["kept_float"])
    assert q["convolutions"]["static"] == len(static) and sum(q["convolutions"].values()) == len(convs)
    assert q["calibration"]["count"] == 32 and q["calibration"]["source"] == str(folder.resolve())
    assert not parity.GATES["int8"].failures(report["parity"]["real_photos"])


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    """A tiny stage-1 checkpoint (60 steps on 12 synthetic EBB! pairs; the cpu track takes it with an
    identity residual) and its float32 cpu-track export: trained weights, on which every-convolution
    static int8 fails the gate."""
    from bokehlite.model.synthetic_ebb import write_synthetic_ebb
    from bokehlite.model.train_cli import main as train
    root = tmp_path_factory.mktemp("trained_tiny")
    ebb = write_synthetic_ebb(root / "ebb", 16, (256, 384), seed=0)
    assert train([str(ebb), "--stage", "1", "--out", str(root / "run"), "--backbone", "tiny", "--workers", "0",
                  "--threads", "1", "--no-vgg", "--crop", "64", "--batch-size", "4", "--val-count", "4",
                  "--max-steps", "60", "--val-every", "60", "--lr", "2e-3", "--lr-step-size", "10",
                  "--lr-gamma", "0.3"]) == 0
    checkpoint = root / "run" / "best.pth"
    export_track(ExportPlan.build("cpu", SIZE, checkpoint=checkpoint), root / "float")
    return checkpoint, root / "float" / "bokeh_cpu_128x256.tflite", calibration_folder(root / "calib", 32)


def test_on_trained_weights_every_convolution_static_fails_the_gate_and_the_recipe_passes_it(trained_tiny):
    from bokehlite.export.calibration import quantize_static
    checkpoint, float_path, folder = trained_tiny
    model, trained = build_model(get_track("cpu", "int8"), checkpoint)
    assert trained
    data = float_path.read_bytes()
    figures = {}
    for depth in (None, 6):
        path = float_path.with_name(f"static_{depth}.tflite")
        path.write_bytes(quantize_static(data, folder, SIZE, depth=depth))
        figures[depth] = photo_gate.evaluate(path, model, SIZE)
    everything = parity.GATES["int8"].failures(figures[None])
    assert any(line.startswith("astronaut.png: defocus mean |err|") for line in everything), everything
    assert not parity.GATES["int8"].failures(figures[6])
    assert figures[6]["worst"]["defocus_mae"] < 0.5 * figures[None]["worst"]["defocus_mae"]


def test_static_int8_export_of_trained_weights_passes_the_gate(trained_tiny, tmp_path):
    checkpoint, _, folder = trained_tiny
    report = export_track(ExportPlan.build("cpu", SIZE, checkpoint=checkpoint, precision="int8", calibration=folder),
                          tmp_path)
    assert report["weights"] == "trained" and report["quantization"]["method"] == "static"
    assert report["quantization"]["convolutions"]["static"] > 0
    worst = report["parity"]["real_photos"]["worst"]
    assert worst["bokeh_psnr"] >= 30.0 and worst["defocus_mae"] <= 0.02


def test_per_layer_report_names_every_convolution_and_where_int8_noise_grows(trained_tiny):
    from bokehlite.export.calibration import quantize_static
    from bokehlite.export.int8_layers import format_rows, layer_report
    _, float_path, folder = trained_tiny
    data = float_path.read_bytes()
    model = TfliteModel(float_path)
    quantized = quantize_static(data, folder, SIZE, depth=None)
    photos = [photo_gate.fitted(photo_gate.load_photo(photo_gate.photo_path("astronaut.png")), SIZE)]
    rows = layer_report(data, quantized, photos)
    convs = [op.index for op in model.ops if op.name == "CONV_2D"]
    assert [r["op"] for r in rows] == convs
    places = {r["place"] for r in rows}
    assert {"after softmax", "1 before softmax"} <= places
    assert all(r["snr_db"] is not None and np.isfinite(r["snr_db"]) for r in rows)
    [first] = [r for r in rows if r["weights"][1:3] == [7, 7]]        # the encoder's 7x7 stem
    [logits] = [r for r in rows if r["place"] == "1 before softmax"]
    assert logits["snr_db"] < first["snr_db"]            # noise adds up on the way to the softmax
    assert "1 before softmax" in format_rows(rows)


@pytest.mark.parametrize("case, message", [
    ("31 photos", "calibration needs at least 32 photos"),
    ("no int8", "--calibration goes with --precision int8"),
    ("missing", "calibration folder not found"),
])
def test_bad_calibration_exits_2_with_one_line(tmp_path, case, message):
    folder = calibration_folder(tmp_path / "calib", 31 if case == "31 photos" else 32)
    args = ["--track", "cpu", "--tiny", "--input-size", "128x256", "-o", str(tmp_path / "out"),
            "--calibration", str(tmp_path / "nope" if case == "missing" else folder)]
    if case != "no int8":
        args += ["--precision", "int8"]
    result = subprocess.run([sys.executable, "-m", "bokehlite.export.cli", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_calibration_folder_holding_a_gate_photo_is_refused_before_the_export(tmp_path):
    import shutil
    folder = calibration_folder(tmp_path / "calib", 32)
    shutil.copyfile(photo_gate.photo_path("rocket.jpg"), folder / "zz_rocket.jpg")
    with pytest.raises(ValueError, match=r"zz_rocket.jpg is the int8 gate's held-out photo rocket.jpg \(same pixels\)"):
        export_track(ExportPlan.build("cpu", SIZE, backbone=BackboneConfig.tiny(), precision="int8",
                                      calibration=folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()
