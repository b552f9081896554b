"""Interpreter backends and the model contract: what loads, what is refused, and why."""
from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.runtime.variants import variant

from bokehlite.runtime import BackendError, BokehRenderer, ModelError
from bokehlite.runtime.backends import default_threads, open_model
from bokehlite.runtime.litert_cpu import xnnpack_flags

needs_numpy2_and_tflite_runtime = pytest.mark.skipif(
    importlib.util.find_spec("tflite_runtime") is None or int(np.__version__.split(".")[0]) < 2,
    reason="needs tflite_runtime installed next to NumPy 2")


@pytest.fixture(scope="session")
def gpu_model(tiny_export):
    return tiny_export("gpu")[0]


def photo(h=40, w=70):
    return np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_litert_is_the_default_and_threads_default_to_all_cores(gpu_model):
    r = BokehRenderer(gpu_model)
    assert r.backend == "litert"
    assert r.threads == default_threads() >= 1


def test_threads_are_passed_and_validated(gpu_model):
    assert BokehRenderer(gpu_model, threads=1).threads == 1
    with pytest.raises(ValueError, match="positive integer"):
        BokehRenderer(gpu_model, threads=0)


def test_xnnpack_is_on_by_default_and_can_be_turned_off(gpu_model):
    on, off = BokehRenderer(gpu_model), BokehRenderer(gpu_model, xnnpack=False)
    assert (on.xnnpack, off.xnnpack) == (True, False)
    a, b = on.render(photo()), off.render(photo())
    assert np.abs(a.astype(int) - b).max() <= 2
    # The Interpreter can say how many nodes went to XNNPACK (CompiledModel cannot).
    on, off = (BokehRenderer(gpu_model, backend="litert-interpreter", xnnpack=x) for x in (True, False))
    on.render(photo()), off.render(photo())
    assert on.delegated_nodes > 0 and off.delegated_nodes == 0


def test_xnnpack_flags_keep_the_int8_defaults_and_add_transient_indirection():
    assert xnnpack_flags(low_memory=True) == 0x01 | 0x02 | 0x20    # QS8 | QU8 | TRANSIENT_INDIRECTION_BUFFER
    assert xnnpack_flags(low_memory=False) is None                 # XNNPACK's own defaults


def test_low_memory_changes_memory_not_arithmetic(gpu_model):
    """Transient indirection buffers are rebuilt per tile; the sums are the same. The
    Interpreter runs the same XNNPACK kernels."""
    x = {"image": np.random.default_rng(5).random((1, 128, 192, 3), dtype=np.float32)}
    low = open_model(gpu_model, "litert", 1)
    assert low.options == {"xnnpack": True, "low_memory": True}
    high = open_model(gpu_model, "litert", 1, low_memory=False)
    assert high.options == {"xnnpack": True, "low_memory": False}
    interpreter = open_model(gpu_model, "litert-interpreter", 1)
    a, b, c = low(**x), high(**x), interpreter(**x)
    assert set(a) == set(b) == set(c) == {"bokeh", "defocus", "blur"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_allclose(a[name], c[name], atol=1e-5)
    with pytest.raises(ValueError, match="takes no option delegates"):
        open_model(gpu_model, "litert", 1, delegates=())


@needs_numpy2_and_tflite_runtime
def test_tflite_runtime_under_numpy2_gives_a_clear_message(gpu_model, capfd):
    with pytest.raises(BackendError) as info:
        BokehRenderer(gpu_model, backend="tflite_runtime")
    message = str(info.value)
    assert "numpy<2" in message and "LiteRT" in message and "\n" not in message
    assert "_ARRAY_API" not in capfd.readouterr().err      # NumPy's page of warnings was caught


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow not installed")
def test_tensorflow_lite_backend_renders_like_litert(gpu_model):
    tf_result = BokehRenderer(gpu_model, backend="tensorflow").render(photo())
    assert np.abs(tf_result.astype(int) - BokehRenderer(gpu_model).render(photo())).max() <= 2


def test_unknown_backend_is_refused(gpu_model):
    with pytest.raises(BackendError, match="unknown backend 'onnx'"):
        open_model(gpu_model, backend="onnx")


# --- models that must be refused, each with one clear line ------------------------------------

def copy_with_sidecar(gpu_model: Path, dest: Path, data: bytes) -> Path:
    dest.mkdir(exist_ok=True)
    target = dest / gpu_model.name
    target.write_bytes(data)
    shutil.copyfile(gpu_model.with_suffix(".json"), target.with_suffix(".json"))
    return target


@pytest.mark.parametrize("damage", ["empty", "text", "truncated", "flipped"])
def test_corrupt_tflite_is_refused(gpu_model, tmp_path, damage):
    data = gpu_model.read_bytes()
    data = {"empty": b"", "text": b"not a model\n", "truncated": data[:len(data) // 3],
            "flipped": data[:4] + b"XXXX" + data[8:]}[damage]
    model = copy_with_sidecar(gpu_model, tmp_path, data)
    with pytest.raises(ModelError) as info:
        BokehRenderer(model)
    assert "\n" not in str(info.value) and str(model) in str(info.value)


def test_missing_model_and_missing_sidecar_are_refused(gpu_model, tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        BokehRenderer(tmp_path / "none.tflite")
    # A .tflite alone renders from the contract embedded in its metadata (test_metadata.py);
    # one without that, and without a sidecar, is refused.
    from bokehlite.tflite_metadata import without_metadata
    lonely = tmp_path / gpu_model.name
    lonely.write_bytes(without_metadata(gpu_model.read_bytes()))
    with pytest.raises(ModelError, match="sidecar JSON not found"):
        BokehRenderer(lonely)


def test_model_of_another_track_is_refused(gpu_model, tiny_export, tmp_path):
    # The CPU-track model (outputs bokeh, defocus) next to a GPU-track sidecar that even
    # agrees on the input: the missing 'blur' output alone must be enough to refuse it.
    cpu_model, cpu_report = tiny_export("cpu")
    model = variant(gpu_model, tmp_path, lambda s: s.update(
        input_size=cpu_report["input_size"], inputs=cpu_report["inputs"],
        sha256=hashlib.sha256(cpu_model.read_bytes()).hexdigest()))
    shutil.copyfile(cpu_model, model)
    with pytest.raises(ModelError, match=r"signature outputs are \['bokeh', 'defocus'\]"):
        BokehRenderer(model)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(input_size=[256, 384]), "input shape is"),
    (lambda s: s["inputs"][0].update(shape=[1, 256, 384, 3], name="image"), "input shape is"),
    (lambda s: s["inputs"][0].update(color="BGR"), "input color is 'BGR'"),
    (lambda s: s["outputs"][1]["shape"].__setitem__(1, 7), "in the model, the sidecar says"),
    (lambda s: s["outputs"].pop(), "the sidecar declares"),
    (lambda s: s["postprocess"].update(source="mask"), "postprocess source 'mask'"),
    (lambda s: s["postprocess"].update(eta="20"), "eta and tau must be finite numbers"),
    (lambda s: s.update(version=1), "version 1 is not supported"),
    (lambda s: s.update(format="something-else"), "sidecar format"),
    (lambda s: s.update(sha256="0" * 64), "sha256 mismatch"),
    (lambda s: s.update(track="video"), "track 'video' is not supported"),
    (lambda s: s.update(track="render"), r"sidecar inputs are \['image'\], the render track takes"),
])
def test_sidecar_that_disagrees_with_the_model_is_refused(gpu_model, tmp_path, edit, message):
    with pytest.raises(ModelError, match=message) as info:
        BokehRenderer(variant(gpu_model, tmp_path, edit))
    assert "\n" not in str(info.value)


def test_sidecar_that_is_not_json_is_refused(gpu_model, tmp_path):
    model = variant(gpu_model, tmp_path, lambda s: None)
    model.with_suffix(".json").write_text("{ not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        BokehRenderer(model)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(sha256="0" * 64), "sha256 mismatch"),
    (lambda s: s.update(version=1), "version 1 is not supported"),
])
@pytest.mark.parametrize("backend", ["litert", "litert-gpu"])
def test_a_mismatched_sidecar_is_refused_before_any_interpreter_opens_the_file(gpu_model, tmp_path, edit,
                                                                                 message, backend):
    """The file is garbage that any interpreter would refuse (and a GPU would take long to
    compile, were it a model): the sidecar's own check must be the one that speaks."""
    model = variant(gpu_model, tmp_path, edit)
    model.write_bytes(b"\x00" * 4 + b"TFL3" + b"\x00" * 4088)      # the identifier, then nothing
    with pytest.raises(ModelError, match=message):
        BokehRenderer(model, backend=backend)
