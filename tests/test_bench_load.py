"""bench-runtime against each peer at its best (issue 32): ONNX Runtime's int8 row is its fast
x86 configuration (QDQ U8S8), and no ratio between runtimes is stated on a loaded machine.

The load rule is fed fake loads; the report's wording is read off hand-written results; the
quantization is one real ONNX Runtime run on a two-convolution model (seconds).
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bokehlite.benchmarks.efficiency import precision_ratios, ratios
from bokehlite.benchmarks.ort_int8 import METHOD, int8_ratios, qdq_types, quantize
from bokehlite.benchmarks.report import sections, to_text, write_json
from bokehlite.benchmarks.stats import summarize
from bokehlite.benchmarks.targets import LOAD_LIMIT_PER_CORE, TARGETS, evaluate_targets, judge_load, withhold_ratios
from bokehlite.benchmarks.timing import Protocol

CROSS = {t.id for t in TARGETS if t.cross_runtime}


# ---------------------------------------------------------------- the load rule


def _settle_with(loads: list[float], monkeypatch) -> tuple[float, list[float], list[str]]:
    """Suite.settle on a fake 1-minute load average that takes `loads` in turn (then stays at
    the last) on 2 cores: (what it returned, the sleeps it took, what it said)."""
    from bokehlite.benchmarks import suite

    seen, sleeps, said = iter(loads), [], []
    last = [loads[0]]

    def loadavg():
        last[0] = next(seen, last[0])
        return (last[0], 0.0, 0.0)
    monkeypatch.setattr(suite.os, "getloadavg", loadavg)
    monkeypatch.setattr(suite.time, "sleep", sleeps.append)
    monkeypatch.setattr(suite, "default_threads", lambda: 2)
    return suite.Suite(suite.Settings(), progress=said.append).settle(), sleeps, said


def test_timing_waits_for_the_runs_own_exports_to_leave_the_load_average(monkeypatch):
    """After a full run's exports the load average read 1.38 on 2 cores, which the rule calls
    loaded (limit 0.5 a core): the run waits until it falls to 1.0, and says so."""
    load, sleeps, said = _settle_with([1.38, 1.2, 1.05, 0.97, 0.5], monkeypatch)
    assert load == 0.97 and len(sleeps) == 3
    assert len(said) == 1 and "waiting up to" in said[0] and "(1.38)" in said[0]


def test_a_machine_busy_with_other_work_is_waited_for_only_so_long(monkeypatch):
    from bokehlite.benchmarks.suite import SETTLE_MAX_S

    load, sleeps, _ = _settle_with([3.0], monkeypatch)
    assert load == 3.0 and sum(sleeps) == SETTLE_MAX_S        # then measured, and judged loaded


def test_an_idle_machine_is_not_waited_for(monkeypatch):
    load, sleeps, said = _settle_with([0.4], monkeypatch)
    assert load == 0.4 and sleeps == [] and said == []


def test_an_idle_machine_is_not_loaded_though_the_bench_itself_loads_it():
    load = judge_load(before=0.2, after=2.1, cores=2, own_threads=2)   # after: our own 2 threads
    assert load["loaded"] is False and load["not_stated"] is None
    assert load["load"] == pytest.approx(0.2) and load["per_core"] == pytest.approx(0.1)
    assert load["limit_per_core"] == LOAD_LIMIT_PER_CORE == 0.5


@pytest.mark.parametrize("before, after, judged", [
    (1.6, 1.84, 1.6),     # busy before the first row (docs/benchmarks.md's run)
    (0.1, 3.5, 1.5),      # others arrived while the rows were timed: after less our 2 threads
])
def test_a_machine_loaded_before_or_during_the_rows_is_loaded_and_says_its_load(before, after, judged):
    load = judge_load(before=before, after=after, cores=2, own_threads=2)
    assert load["loaded"] is True and load["load"] == pytest.approx(judged)
    assert load["not_stated"] == f"machine loaded (load {judged:.2f} on 2 cores)"


def test_the_limit_is_per_core_and_exclusive():
    assert judge_load(1.0, 0.0, cores=2, own_threads=2)["loaded"] is False     # exactly 0.5 per core
    assert judge_load(1.01, 0.0, cores=2, own_threads=2)["loaded"] is True
    assert judge_load(1.01, 0.0, cores=16, own_threads=16)["loaded"] is False  # the same load, more cores
    assert judge_load(0.0, 0.5, cores=2, own_threads=2)["load"] == 0.0         # never below zero
    with pytest.raises(ValueError, match="cores >= 1"):
        judge_load(0.0, 0.0, cores=0, own_threads=1)


# ---------------------------------------------------------------- targets, JSON and text under load


def row(backend, ms, precision="float32", extra=False):
    r = {"backend": backend, "precision": precision, "threads": 2, "stats": summarize(ms), "peak_rss_mb": 600.0,
         "baseline_rss_mb": 100.0, "init_ms": 1.0, "first_ms": ms[0], "capped": False}
    return {**r, "extra": True} if extra else r


def bench_results(load_before, load_after, cores=2):
    """A cpu track at 2 threads as the suite leaves it: float32 LiteRT 400 ms, ORT 500, PyTorch
    1000; int8 LiteRT 157 ms, persistent 120, ORT U8S8 155 (issue 32's idle figures)."""
    track = {"size": [1024, 1536], "artifact": {"tiny_backbone": False, "weights": "untrained"}, "inputs": {},
             "precision": "float32", "results": [
                 row("litert-xnnpack", [400.0]), row("onnxruntime", [500.0]), row("pytorch", [1000.0]),
                 row("litert-xnnpack", [157.0], "int8", True), row("litert-xnnpack-persistent", [120.0], "int8", True),
                 row("onnxruntime", [155.0], "int8", True)],
             "extra_artifacts": {"int8": {"precision": "int8", "tiny_backbone": False, "tflite": "cpu_int8.tflite"}},
             "ort_int8": {**METHOD, "photos": 32, "source": "built-in", "seconds": 3.0}}
    track["ratios"] = ratios(track, (2,))
    track["precision_ratios"] = precision_ratios(track)
    track["int8_ratios"] = int8_ratios(track)
    results = {
        "device": "cpu", "tracks": {"cpu": track}, "gemm_peak": [], "command": ["bench-runtime"],
        "created": "2025-01-01T00:00:00+00:00", "sweep": [], "paper": {}, "warnings": [],
        "machine": {"cpu_model": "Test CPU", "cores": cores, "platform": "Linux", "python": "3.11", "versions": {},
                    "load_avg_before": load_before, "load_avg_after": load_after},
        "protocol": {**Protocol().to_dict(), "statistic": "avg", "size": [1024, 1536], "threads": [2],
                     "input": "generated", "images": ["scene"], "backends": {}, "isolation": "one process each"}}
    results["targets"] = evaluate_targets(results)
    return results


def test_on_a_loaded_machine_no_cross_runtime_target_is_stated_and_the_others_are_judged():
    assert CROSS == {f"{track}-{ratio}" for track in ("cpu", "gpu")
                     for ratio in ("tflite-ort", "tflite-pytorch", "int8-litert-ort")}
    rows = {t["id"]: t for t in bench_results(1.6, 1.84)["targets"]}
    for tid in ("cpu-tflite-ort", "cpu-tflite-pytorch", "cpu-int8-litert-ort"):
        assert rows[tid]["value"] is None and rows[tid]["met"] is None
        assert rows[tid]["note"] == "not stated: machine loaded (load 1.60 on 2 cores)"
    assert rows["cpu-int8-latency"]["value"] == 157.0 and rows["cpu-int8-latency"]["met"] is True
    assert rows["gpu-tflite-ort"]["note"] == "not evaluated: the gpu track was not run"
    idle = {t["id"]: t for t in bench_results(0.1, 2.0)["targets"]}
    assert idle["cpu-int8-litert-ort"]["value"] == pytest.approx(157 / 155)
    assert idle["cpu-int8-litert-ort"]["met"] is False
    assert idle["cpu-tflite-ort"]["value"] == pytest.approx(0.8) and idle["cpu-tflite-ort"]["met"] is True


def test_the_json_of_a_loaded_run_keeps_the_rows_but_states_no_ratio_between_runtimes(tmp_path):
    results = withhold_ratios(bench_results(1.6, 1.84))
    write_json(tmp_path / "bench.json", results)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["load"]["loaded"] is True and saved["load"]["cores"] == 2
    assert (saved["load"]["load_avg_before"], saved["load"]["load_avg_after"]) == (1.6, 1.84)
    track = saved["tracks"]["cpu"]
    [r], [i] = track["ratios"], track["int8_ratios"]
    assert r["tflite_ort"] is r["persistent_ort"] is r["tflite_pytorch"] is None
    assert i["litert_ort"] is i["persistent_ort"] is None and i["ort_config"] == "U8S8"
    assert r["not_stated"] == i["not_stated"] == "machine loaded (load 1.60 on 2 cores)"
    assert (r["tflite_ms"], r["ort_ms"], i["litert_ms"], i["ort_ms"]) == (400.0, 500.0, 157.0, 155.0)
    assert r["xnnpack_speedup"] is None                          # no builtin row here; same-runtime anyway
    # Judged again on the withheld results, the targets still say why, not "not timed".
    rows = {t["id"]: t for t in evaluate_targets(results)}
    assert rows["cpu-int8-litert-ort"]["note"].startswith("not stated: machine loaded")
    assert rows["cpu-tflite-ort"]["note"].startswith("not stated: machine loaded")


def test_an_idle_runs_json_states_its_ratios_and_its_load():
    results = withhold_ratios(bench_results(0.3, 2.2))
    assert results["load"]["loaded"] is False and results["load"]["load"] == pytest.approx(0.3)
    assert results["tracks"]["cpu"]["int8_ratios"][0]["litert_ort"] == pytest.approx(157 / 155)
    assert "not_stated" not in results["tracks"]["cpu"]["ratios"][0]


def lines(text, start):
    return [line for line in text.splitlines() if line.startswith(start)]


def table_rows(text, *cells):
    """The text report's table rows whose first cells are `cells`."""
    return [line for line in text.splitlines() if line.split()[:len(cells)] == list(cells)]


def test_the_text_report_of_a_loaded_run_prints_the_rows_and_says_why_no_ratio():
    text = to_text(sections(withhold_ratios(bench_results(1.6, 1.84))))
    assert "Load average (1 min)  1.60 before, 1.84 after the timed rows, on 2 cores" in text
    [verdict] = lines(text, "Cross-runtime ratios  ")
    assert "NOT STATED: machine loaded, load 1.60 on 2 cores (0.80 per core, limit 0.5" in verdict
    [headline] = table_rows(text, "cpu", "1024x1536", "2", "400.0")
    [int8] = table_rows(text, "cpu", "1024x1536", "2", "157.0")
    assert headline.count("not stated") == 3 and int8.count("not stated") == 2
    assert "155.0" in int8 and "0.80" not in headline and "1.01" not in int8
    assert text.count("Cross-runtime ratios not stated: machine loaded (load 1.60 on 2 cores), above 0.5 per "
                      "core") == 2
    for start in ("CPU track, TFLite/ORT", "CPU track, TFLite/PyTorch", "CPU track, LiteRT int8 (low memory) / ORT"):
        [target] = lines(text, start)
        assert "not stated: machine loaded (load 1.60 on 2 cores)" in target and " met " not in f" {target} "


def test_the_text_report_of_an_idle_run_states_its_ratios():
    text = to_text(sections(withhold_ratios(bench_results(0.2, 2.0))))
    [verdict] = lines(text, "Cross-runtime ratios  ")
    assert verdict.split("  ", 1)[1].strip().startswith("stated: load 0.20 on 2 cores (0.10 per core")
    [int8] = table_rows(text, "cpu", "1024x1536", "2", "157.0")
    assert "1.01" in int8 and "not stated" not in text


def test_the_report_names_the_ort_int8_configuration_in_its_rows():
    text = to_text(sections(bench_results(0.2, 2.0)))
    [ort] = table_rows(text, "cpu", "1024x1536", "onnxruntime", "int8")    # the latency table's row
    assert ort.split()[4] == "U8S8"
    assert "ORT int8 U8S8 ms" in text
    assert "QDQ U8S8, Conv only, activations uint8 (QUInt8), per tensor, weights int8 (QInt8), per channel" in text
    assert "fastest int8 on x86" in text


# ---------------------------------------------------------------- the quantization itself


def conv_model(path):
    """image (1, 3, 8, 8) -> Conv 3x3 (4 channels, bias) -> Relu -> Conv 1x1 (2 channels)."""
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(0)
    consts = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
              for n, s in (("w1", (4, 3, 3, 3)), ("b1", (4,)), ("w2", (2, 4, 1, 1)))]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Conv", ["r", "w2"], ["bokeh"])], "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("bokeh", TensorProto.FLOAT, [1, 2, 8, 8])], consts)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(1)
    for i in range(32):
        cv2.imwrite(str(folder / f"p{i:02d}.png"), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def quantized(photos, tmp_path_factory):
    work = tmp_path_factory.mktemp("ort_int8")
    conv_model(work / "float.onnx")
    out = quantize(str(work / "float.onnx"), str(work / "int8.onnx"), str(photos), (8, 8))
    return out, work / "int8.onnx"


def test_ort_int8_has_uint8_activations_and_int8_per_channel_weights(quantized):
    """Read off the written model, not off what the quantizer was asked for."""
    import onnx
    from onnx import numpy_helper
    info, path = quantized
    model = onnx.load(str(path))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quantize_nodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize_nodes and {consts[n.input[2]].dtype for n in quantize_nodes} == {np.dtype(np.uint8)}
    weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert weights <= set(dq), "every Conv weight comes through a DequantizeLinear"
    for name in weights:
        w, scale = consts[dq[name].input[0]], consts[dq[name].input[1]]
        axis = next(a.i for a in dq[name].attribute if a.name == "axis")
        assert w.dtype == np.int8 and axis == 0 and scale.shape == (w.shape[0],)   # one scale per out channel
    assert info["found"] == {"activations": ["uint8"], "weights": ["int8"], "per_channel": True,
                             "quantized_convs": 2, "convs": 2}
    assert (info["config"], info["activation_type"], info["weight_type"], info["format"]) == \
        ("U8S8", "QUInt8", "QInt8", "QDQ")
    assert info["photos"] == 32 and not list(path.parent.glob("*.tmp.onnx"))


def test_ort_runs_the_int8_copy_close_to_the_float_model(quantized):
    import onnxruntime as ort
    _, path = quantized
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    def run(model):
        return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]

    int8, fp32 = run(path), run(path.parent / "float.onnx")
    assert int8.shape == fp32.shape == (1, 2, 8, 8)
    assert np.abs(int8 - fp32).max() < 0.1 * np.abs(fp32).max()


def test_a_signed_activation_copy_is_refused_not_timed(photos, tmp_path, monkeypatch):
    """quantize_static's default (QInt8 activations, ORT's slow x86 path) must not slip through."""
    from bokehlite.benchmarks import ort_int8
    conv_model(tmp_path / "float.onnx")
    monkeypatch.setitem(ort_int8.METHOD, "activation_type", "QInt8")
    with pytest.raises(RuntimeError, match=r"'activations': \['int8'\].*expected U8S8"):
        quantize(str(tmp_path / "float.onnx"), str(tmp_path / "int8.onnx"), str(photos), (8, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.onnx"]      # nothing half-written left


def test_qdq_types_of_a_float_model_finds_nothing_quantized(tmp_path):
    import onnx
    conv_model(tmp_path / "float.onnx")
    assert qdq_types(onnx.load(str(tmp_path / "float.onnx"))) == {
        "activations": [], "weights": [], "per_channel": False, "quantized_convs": 0, "convs": 2}
