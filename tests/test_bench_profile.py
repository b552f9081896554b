"""Per-op profiling with LiteRT's profiler, checked on tiny TensorFlow-made models whose ops
are known by construction, and on the repo's tiny exported model."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

from bokehlite.benchmarks.op_profile import profile_ops, top_types_text

# What the small graph below is made of, counted by hand from `_small_graph`.
SMALL_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "CONCATENATION": 1, "STRIDED_SLICE": 1}
SMALL_SHAPES = {"CONV_2D": [1, 64, 64, 16], "DEPTHWISE_CONV_2D": [1, 64, 64, 16],
                "CONCATENATION": [1, 64, 64, 32], "STRIDED_SLICE": [1, 62, 60, 32]}


def _convert(fn, *shapes) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    specs = [tf.TensorSpec(shape, tf.float32) for shape in shapes]
    concrete = tf.function(fn).get_concrete_function(*specs)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{'small': conv -> depthwise -> concat -> strided slice, 'heavy': a 15x15 depthwise
    conv on 128x128x16 beside a 4-element add}, as .tflite paths."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    conv = tf.constant(rng.normal(size=(3, 3, 8, 16)), tf.float32)
    depthwise = tf.constant(rng.normal(size=(3, 3, 16, 1)), tf.float32)
    big_depthwise = tf.constant(rng.normal(size=(15, 15, 16, 1)), tf.float32)

    def small(x):
        a = tf.nn.conv2d(x, conv, 1, "SAME")
        b = tf.nn.depthwise_conv2d(a, depthwise, [1, 1, 1, 1], "SAME")
        return tf.concat([a, b], axis=3)[:, 1:-1, 2:-2, :]

    def heavy(x, y):
        return tf.nn.depthwise_conv2d(x, big_depthwise, [1, 1, 1, 1], "SAME"), y + 1.0

    out = tmp_path_factory.mktemp("op_profile")
    paths = {}
    for name, fn, shapes in [("small", small, [(1, 64, 64, 8)]),
                             ("heavy", heavy, [(1, 128, 128, 16), (1, 4)])]:
        paths[name] = str(out / f"{name}.tflite")
        with open(paths[name], "wb") as f:
            f.write(_convert(fn, *shapes))
    return paths


def test_builtin_kernels_report_each_op_of_the_graph_by_its_schema_name_and_shape(models):
    profile = profile_ops(models["small"], 1, xnnpack=False, runs=2)
    assert {t["type"]: t["count"] for t in profile["by_type"]} == SMALL_OPS
    assert [op["node"] for op in profile["ops"]] == [0, 1, 2, 3]
    for op in profile["ops"]:
        assert op["kernel"] == "builtin"
        assert op["ms"] > 0, op
        assert op["output_shape"] == SMALL_SHAPES[op["type"]]
    assert profile["xnnpack"] is False and profile["threads"] == 1


def test_xnnpack_reports_the_graph_as_xnnpack_operators(models):
    profile = profile_ops(models["small"], 2, runs=2)
    found = Counter(op["type"] for op in profile["ops"])
    # XNNPACK's names for a 3x3 convolution and a 3x3 depthwise convolution.
    assert found["Convolution (NHWC, F32) IGEMM"] == 1
    assert found["Convolution (NHWC, F32) DWConv"] == 1
    assert not set(found) & set(SMALL_OPS)
    assert all(op["kernel"] == "xnnpack" and op["node"] is None and op["output_shape"] is None
               for op in profile["ops"])
    assert all(op["ms"] > 0 for op in profile["ops"])


@pytest.mark.parametrize("xnnpack,heavy_type,light_type", [
    (False, "DEPTHWISE_CONV_2D", "ADD"),
    # XNNPACK runs a 15x15 depthwise convolution as a grouped GEMM.
    (True, "Convolution (NHWC, F32) IGEMM", "Add (ND)"),
])
def test_a_heavy_depthwise_conv_ranks_first_and_a_tiny_add_last(models, xnnpack, heavy_type,
                                                                light_type):
    profile = profile_ops(models["heavy"], 2, xnnpack=xnnpack, runs=2)
    types = [t["type"] for t in profile["by_type"]]
    assert types == [heavy_type, light_type]
    assert profile["by_type"][0]["share"] > 0.95
    assert sum(t["share"] for t in profile["by_type"]) == pytest.approx(1.0)


def test_sum_of_ops_is_within_a_sane_factor_of_the_whole_model(models):
    for xnnpack in (False, True):
        profile = profile_ops(models["heavy"], 1, xnnpack=xnnpack, runs=3)
        whole, ops = profile["whole_model_ms"], profile["sum_of_ops_ms"]
        assert 0.5 * whole <= ops <= 1.25 * whole, profile["method"]


def test_progress_is_reported_for_compile_warm_up_and_each_run(models):
    said = []
    profile_ops(models["small"], 1, runs=3, progress=said.append)
    assert len(said) == 5
    assert [m for m in said if "profiled run" in m][-1].endswith("3/3")


def test_the_tiny_exported_model_profiles_every_operator_of_its_graph(tiny_export):
    from ai_edge_litert.interpreter import Interpreter
    tflite, _ = tiny_export("cpu")
    # The graph's own op list, read by the Interpreter rather than by our code.
    interpreter = Interpreter(model_path=str(tflite))
    expected = Counter(op["op_name"] for op in interpreter._get_ops_details())
    profile = profile_ops(str(tflite), 2, xnnpack=False, runs=1)
    assert Counter({t["type"]: t["count"] for t in profile["by_type"]}) == expected
    assert profile["ops"][0]["output_shape"] is not None
    fast = profile_ops(str(tflite), 2, runs=1)
    assert sum(op["kernel"] == "xnnpack" for op in fast["ops"]) > len(fast["ops"]) / 2
    assert fast["whole_model_ms"] > 0


def test_top_types_text_lists_costliest_first_cuts_at_n_and_gives_both_totals():
    profile = {"method": "by hand", "whole_model_ms": 12.0, "sum_of_ops_ms": 10.0,
               "by_type": [{"type": "CONV_2D", "ms": 7.0, "count": 3, "share": 0.7},
                           {"type": "PAD", "ms": 2.0, "count": 1, "share": 0.2},
                           {"type": "ADD", "ms": 1.0, "count": 5, "share": 0.1}]}
    lines = top_types_text(profile, n=2).splitlines()
    assert lines[1].split() == ["CONV_2D", "3", "7.00", "70.0%"]
    assert lines[2].split() == ["PAD", "1", "2.00", "20.0%"]
    assert lines[3] == "(+1 more types, 1.00 ms)"
    assert lines[4].startswith("sum of ops 10.00 ms, whole model 12.00 ms")
    assert len(lines[1]) == len(lines[2])


def test_bad_arguments_and_files_that_are_not_models_raise_clearly(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(RuntimeError, match="LiteRtCreateModelFromFile failed .*TFL3"):
        profile_ops(str(garbage), 1)
    with pytest.raises(FileNotFoundError):
        profile_ops(str(tmp_path / "missing.tflite"), 1)
    with pytest.raises(ValueError):
        profile_ops(str(garbage), 1, runs=0)
