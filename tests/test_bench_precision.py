"""bench-runtime --precision (issues 13 and 23): the int8 rows beside float32, ONNX Runtime's
int8 beside LiteRT's, their ratios and their targets.

Known answers on hand-written results, usage errors without any export, and one real
tiny run that exports the int8 model itself and times it beside the float32 one.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from bokehlite.benchmarks.cli import main
from bokehlite.benchmarks.efficiency import efficiency, find, precision_ratios, ratios
from bokehlite.benchmarks.ort_int8 import int8_ratios
from bokehlite.benchmarks.stats import summarize
from bokehlite.benchmarks.targets import evaluate_targets
from fixtures.bench import check_ratio, run_bench

SIZE = "128x256"     # the cpu track needs multiples of 128 (so not 128x192); conftest's tiny size


def row(backend, ms, precision="float32", rss=900.0, extra=False):
    r = {"backend": backend, "precision": precision, "threads": 2, "stats": summarize(ms), "peak_rss_mb": rss,
         "baseline_rss_mb": 100.0, "init_ms": 1.0, "first_ms": ms[0], "capped": False}
    return {**r, "extra": True} if extra else r


def cpu_track(int8_ms=(180.0, 200.0, 190.0), int8_rss=700.0, size=(1024, 1536), tiny=False, ort_int8_ms=(300.0,),
              persistent_ms=(120.0,)):
    """float32 XNNPACK median 400 ms (samples 380, 400, 450), ORT 500, PyTorch 1000, and
    optionally the int8 rows: LiteRT low memory (median 190 ms by default), persistent (120)
    and ONNX Runtime's (300); 2 threads on a 2-core machine."""
    results = [row("litert-xnnpack", [380.0, 400.0, 450.0]), row("onnxruntime", [500.0]),
               row("pytorch", [1000.0])]
    extras = {}
    if int8_ms:
        results.append(row("litert-xnnpack", list(int8_ms), "int8", int8_rss, extra=True))
        if persistent_ms:
            results.append(row("litert-xnnpack-persistent", list(persistent_ms), "int8", 900.0, extra=True))
        if ort_int8_ms:
            results.append(row("onnxruntime", list(ort_int8_ms), "int8", 650.0, extra=True))
        extras = {"int8": {"precision": "int8", "tiny_backbone": tiny}}
    track = {"size": list(size), "artifact": {"tiny_backbone": tiny}, "precision": "float32",
             "extra_artifacts": extras, "results": results}
    track["ratios"] = ratios(track, (2,))
    track["precision_ratios"] = precision_ratios(track)
    track["int8_ratios"] = int8_ratios(track)
    return track


def targets(track, gpu=None):
    tracks = {"cpu": track, **({"gpu": gpu} if gpu else {})}
    rows = evaluate_targets({"device": "cpu", "machine": {"cores": 2}, "tracks": tracks})
    return {r["id"]: r for r in rows}


# ---------------------------------------------------------------- known answers


def test_int8_ratio_is_int8_median_over_float32_median_at_the_same_threads():
    [r, ort] = [r for r in cpu_track()["precision_ratios"] if r["backend"] != "litert-xnnpack-persistent"]
    assert (ort["backend"], ort["ms"], ort["own_ms"]) == ("onnxruntime", 300.0, 500.0)   # ORT int8 / ORT float32
    assert (r["precision"], r["own_precision"], r["backend"], r["threads"]) == ("int8", "float32", "litert-xnnpack", 2)
    assert r["statistic"] == "median" and r["ms"] == 190.0 and r["own_ms"] == 400.0
    assert r["ratio"] == pytest.approx(0.475)                    # 190 / 400, not the avg 410
    assert (r["peak_rss_mb"], r["own_peak_rss_mb"]) == (700.0, 900.0)


def test_the_int8_row_never_stands_in_for_the_float32_one():
    track = cpu_track(int8_ms=(10.0,))
    assert find(track, "litert-xnnpack", 2)["stats"]["median"] == 400.0
    assert find(track, "litert-xnnpack", 2, "int8")["stats"]["median"] == 10.0
    [r] = track["ratios"]
    assert r["tflite_ms"] == pytest.approx(410.0) and r["tflite_ort"] == pytest.approx(0.82)   # float32 avg / 500
    track["flops"] = {"total": 10e9, "stages": {}}
    gemm = [{"threads": 2, "gflops": 100.0}]
    eff = efficiency(track, gemm)
    # 10 GFLOP in 10 ms would be 1000 GFLOP/s, "over the peak": int8 is kept out of % of fp32 peak.
    assert [b["backend"] for b in eff["backends"]] == ["litert-xnnpack", "onnxruntime", "pytorch"]
    assert not any(b["exceeds_peak"] for b in eff["backends"])


def test_int8_targets_are_judged_at_full_size_on_the_low_memory_median():
    rows = targets(cpu_track(int8_ms=(150.0, 158.0, 400.0), int8_rss=480.0))     # median 158, avg 236
    assert rows["cpu-int8-speedup"]["value"] == pytest.approx(0.395) and rows["cpu-int8-speedup"]["met"] is True
    assert rows["cpu-int8-peak-rss"]["value"] == 480.0 and rows["cpu-int8-peak-rss"]["met"] is True
    assert rows["cpu-int8-latency"]["value"] == pytest.approx(158.0) and rows["cpu-int8-latency"]["met"] is True
    assert rows["cpu-latency"]["value"] == pytest.approx(410.0) and rows["cpu-latency"]["met"] is False
    rows = targets(cpu_track())                                   # int8 median 190 ms, 700 MB
    assert rows["cpu-int8-latency"]["value"] == pytest.approx(190.0) and rows["cpu-int8-latency"]["met"] is True
    assert rows["cpu-int8-speedup"]["value"] == pytest.approx(0.475) and rows["cpu-int8-speedup"]["met"] is False
    assert rows["cpu-int8-peak-rss"]["met"] is False
    rows = targets(cpu_track(int8_ms=(205.0, 210.0)))
    assert rows["cpu-int8-latency"]["value"] == pytest.approx(207.5) and rows["cpu-int8-latency"]["met"] is False
    assert (rows["cpu-int8-speedup"]["limit"], rows["cpu-int8-latency"]["limit"], rows["cpu-int8-peak-rss"]["limit"]) \
        == (0.4, 200.0, 500.0)


def test_litert_int8_over_ort_int8_is_the_low_memory_median_over_ort_int8s():
    [r] = cpu_track()["int8_ratios"]
    assert (r["threads"], r["litert_ms"], r["persistent_ms"], r["ort_ms"]) == (2, 190.0, 120.0, 300.0)
    assert r["litert_ort"] == pytest.approx(190 / 300) and r["persistent_ort"] == pytest.approx(0.4)
    assert (r["litert_peak_rss_mb"], r["ort_peak_rss_mb"]) == (700.0, 650.0)
    rows = targets(cpu_track())
    assert rows["cpu-int8-litert-ort"]["value"] == pytest.approx(0.6333, abs=1e-4)
    assert rows["cpu-int8-litert-ort"]["met"] is True and rows["cpu-int8-litert-ort"]["limit"] == 0.7
    rows = targets(cpu_track(ort_int8_ms=(250.0,)))            # 190 / 250 = 0.76
    assert rows["cpu-int8-litert-ort"]["met"] is False
    # The float32 ORT row never stands in for the int8 one.
    rows = targets(cpu_track(ort_int8_ms=None))
    assert cpu_track(ort_int8_ms=None)["int8_ratios"] == []
    assert rows["cpu-int8-litert-ort"]["met"] is None
    assert rows["cpu-int8-litert-ort"]["note"] == "not evaluated: ONNX Runtime's int8 row was not timed"
    rows = targets(cpu_track(int8_ms=None))
    assert rows["cpu-int8-litert-ort"]["note"] == "not evaluated: int8 was not timed (--precision float32,int8)"


def gpu_track(int8_ms=(900.0, 950.0, 1200.0), ort_int8_ms=(1400.0,), size=(1024, 1536)):
    """float16 own export (XNNPACK 1800 ms), float32 ORT 1300, int8 rows."""
    results = [row("litert-xnnpack", [1800.0], "float16"), row("onnxruntime", [1300.0]), row("pytorch", [2000.0]),
               row("litert-xnnpack", list(int8_ms), "int8", 640.0, extra=True),
               row("onnxruntime", list(ort_int8_ms), "int8", 900.0, extra=True)]
    track = {"size": list(size), "artifact": {"tiny_backbone": False}, "precision": "float16",
             "extra_artifacts": {"int8": {"precision": "int8"}}, "results": results}
    track["ratios"] = ratios(track, (2,))
    track["int8_ratios"] = int8_ratios(track)
    return track


def test_gpu_track_int8_on_the_cpu_is_judged_on_its_median_and_beside_ort_int8():
    rows = targets(cpu_track(), gpu_track())                  # median 950 ms; 950 / 1400
    assert rows["gpu-int8-on-cpu-latency"]["value"] == pytest.approx(950.0)
    assert rows["gpu-int8-on-cpu-latency"]["met"] is True and rows["gpu-int8-on-cpu-latency"]["limit"] == 1000.0
    assert rows["gpu-int8-litert-ort"]["value"] == pytest.approx(950 / 1400) and rows["gpu-int8-litert-ort"]["met"]
    assert rows["gpu-on-cpu-latency"]["value"] == pytest.approx(1800.0)    # the float16 graph's own target stays
    rows = targets(cpu_track(), gpu_track(int8_ms=(1100.0,), ort_int8_ms=(1200.0,)))
    assert rows["gpu-int8-on-cpu-latency"]["met"] is False and rows["gpu-int8-litert-ort"]["met"] is False
    rows = targets(cpu_track(), gpu_track(size=(512, 768)))
    assert rows["gpu-int8-on-cpu-latency"]["met"] is None and "1024x1536" in rows["gpu-int8-on-cpu-latency"]["note"]
    rows = targets(cpu_track())
    assert rows["gpu-int8-litert-ort"]["note"] == "not evaluated: the gpu track was not run"


def test_int8_targets_are_not_evaluated_without_the_int8_row_or_off_full_size():
    rows = targets(cpu_track(int8_ms=None))
    for tid in ("cpu-int8-speedup", "cpu-int8-latency", "cpu-int8-peak-rss", "cpu-int8-litert-ort"):
        assert rows[tid]["met"] is None and rows[tid]["value"] is None
        assert rows[tid]["note"] == "not evaluated: int8 was not timed (--precision float32,int8)"
    for track in (cpu_track(size=(128, 256)), cpu_track(tiny=True)):
        rows = targets(track)
        assert rows["cpu-int8-speedup"]["met"] is None and "1024x1536" in rows["cpu-int8-speedup"]["note"]
        assert rows["cpu-int8-peak-rss"]["met"] is None


def test_cpu_latency_target_is_350_ms():
    rows = targets(cpu_track())                                   # float32 avg 410 ms
    assert rows["cpu-latency"]["limit"] == 350.0 and rows["cpu-latency"]["met"] is False
    track = cpu_track()
    track["results"][0] = row("litert-xnnpack", [340.0])
    assert targets(track)["cpu-latency"]["met"] is True


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize("track, precision", [("cpu", "float16"), ("cpu", "int8"), ("gpu", "float32"),
                                              ("gpu", "int8"), ("render", "float32")])
def test_every_precision_export_tflite_makes_can_be_timed(track, precision):
    """`export-tflite --track cpu --precision float16` writes bokeh_cpu_<size>_float16.tflite:
    bench-runtime must take it, not say there is no such export."""
    from bokehlite.benchmarks.cli import build_parser, settings_from
    argv = ["--track", track, "--precision", precision]
    settings = settings_from(build_parser().parse_args(argv), argv)
    assert settings.extra_precisions(track) == (precision,)


@pytest.mark.parametrize("argv, words", [
    (["--track", "render", "--precision", "int8"], "no such export of the render track (own: render float16; "
                                                    "int8: cpu and gpu tracks only"),
    (["--track", "portrait", "--precision", "int8"], "portrait"),
    (["--device", "gpu", "--track", "cpu", "--precision", "int8"], "--device gpu"),
    (["--precision", "int4"], "expected precisions from"),
    (["--precision", ","], "expected precisions from"),
    (["--track", "cpu", "--calibration", "."], "--calibration goes with --precision ...,int8"),
    (["--track", "cpu", "--precision", "float32,int8", "--calibration", "/nonexistent/photos"],
     "calibration folder not found"),
    (["--track", "cpu", "--precision", "int8", "--calibration", "."], "calibration needs at least 32 photos"),
])
def test_bad_precision_exits_2_with_one_line(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:            # the parser's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench-runtime: error: ") and words in err[0]


def test_default_precision_is_each_tracks_own_and_others_go_where_the_track_has_them():
    from bokehlite.benchmarks.cli import build_parser, settings_from
    settings = settings_from(build_parser().parse_args([]), [])
    assert settings.precisions == () and settings.extra_precisions("cpu") == ()
    settings = settings_from(build_parser().parse_args(["--precision", "float32,int8,int8"]), [])
    assert settings.precisions == ("float32", "int8")
    assert settings.extra_precisions("cpu") == ("int8",) and settings.extra_precisions("gpu") == ("float32", "int8")


# ---------------------------------------------------------------- a real tiny run


@pytest.fixture(scope="module")
def run(tiny_export, tmp_path_factory):
    """float32 copied from the shared tiny export; int8 exported by the run itself."""
    tflite, _ = tiny_export("cpu")
    out = tmp_path_factory.mktemp("bench_int8")
    artifacts = out / "artifacts"
    artifacts.mkdir()
    for path in tflite.parent.glob(f"{tflite.stem}.*"):
        shutil.copy(path, artifacts)
    proc, results = run_bench(out, "--track", "cpu", "--tiny", "--precision", "float32,int8",
                              "--artifacts", str(artifacts), "--size", SIZE, "--runs", "1", "--min-secs", "0",
                              "--warmup-secs", "0", "--threads", "1", "--gemm-size", "256")
    return proc, results, out


def test_int8_is_exported_and_timed_beside_float32(run):
    proc, results, out = run
    assert (out / "artifacts" / "bokeh_cpu_128x256_int8.tflite").is_file()
    assert "cpu track int8: no bokeh_cpu_128x256_int8.tflite" in proc.stderr
    track = results["tracks"]["cpu"]
    art = track["extra_artifacts"]["int8"]
    assert art["precision"] == "int8" and art["tiny_backbone"] is True and art["onnx"].endswith("_int8.onnx")
    assert art["quantization"]["method"] == "dynamic-range" and art["real_photos"]["count"] == 5
    assert art["real_photos"]["weights"] == "untrained"
    assert results["protocol"]["precisions"] == {"cpu": ["float32", "int8"]}
    int8, persistent, ort = [r for r in track["results"] if r.get("extra")]     # ORT's right after LiteRT's
    assert (int8["backend"], int8["precision"], int8["threads"]) == ("litert-xnnpack", "int8", 1)
    assert (persistent["backend"], persistent["precision"]) == ("litert-xnnpack-persistent", "int8")
    assert (ort["backend"], ort["precision"], ort["threads"]) == ("onnxruntime", "int8", 1)
    assert ort["stats"]["count"] == 1 and ort["vs_pytorch"]["psnr"] >= 30
    assert int8["stats"]["count"] == 1 and int8["stats"]["min"] > 0 and int8["init_ms"] > 0
    assert int8["peak_rss_mb"] >= int8["baseline_rss_mb"] > 0
    assert int8["vs_pytorch"]["psnr"] >= 30                   # the export's int8 gate
    others = {(r["backend"], r["precision"]) for r in track["results"] if not r.get("extra")}
    assert others == {("litert-xnnpack", "float32"), ("litert-xnnpack-persistent", "float32"),
                      ("litert-builtin", "float32"), ("onnxruntime", "float32"), ("pytorch", "float32")}
    assert "int8" not in {b["backend"] for b in track["efficiency"]["backends"]}


def test_int8_ratio_comes_from_this_runs_samples(run):
    _, results, _ = run
    track = results["tracks"]["cpu"]
    for backend in ("litert-xnnpack", "litert-xnnpack-persistent"):
        fp32 = next(r for r in track["results"] if r["backend"] == backend and not r.get("extra"))
        int8 = next(r for r in track["results"] if r["backend"] == backend and r.get("extra"))
        [ratio] = [r for r in track["precision_ratios"] if r["backend"] == backend]
        assert ratio["threads"] == 1 and ratio["precision"] == "int8"
        assert ratio["ratio"] == pytest.approx(np.median(int8["samples_ms"]) / np.median(fp32["samples_ms"]))


def test_ort_int8_is_a_static_qdq_copy_of_the_int8_exports_graph_calibrated_on_real_photos(run):
    import onnx
    _, results, _ = run
    track = results["tracks"]["cpu"]
    q = track["ort_int8"]
    assert (q["format"], q["op_types"], q["per_channel"], q["photos"]) == ("QDQ", ["Conv"], True, 32)
    assert q["source"].startswith("built-in")
    float_graph = onnx.load(track["extra_artifacts"]["int8"]["onnx"])
    [lite, ort] = [r for r in track["results"] if r.get("extra") and r["backend"] != "litert-xnnpack-persistent"]
    [ratio] = track["int8_ratios"]
    check_ratio(results, ratio, "litert_ort", np.median(lite["samples_ms"]) / np.median(ort["samples_ms"]))
    convs = sum(n.op_type == "Conv" for n in float_graph.graph.node)
    assert convs > 0 and not any(n.op_type == "QuantizeLinear" for n in float_graph.graph.node)


def test_int8_targets_are_not_evaluated_at_this_size_and_the_report_shows_the_row(run):
    proc, results, out = run
    rows = {t["id"]: t for t in results["targets"]}
    for tid in ("cpu-int8-speedup", "cpu-int8-peak-rss"):
        assert rows[tid]["met"] is None and rows[tid]["note"].startswith("not evaluated")
    assert rows["cpu-latency"]["limit"] == 350.0
    text = proc.stdout
    assert "Precision: extra exports vs the track's own" in text and "dynamic-range quantization" in text
    assert any(line.startswith("cpu 128x256") and "litert-xnnpack" in line and " int8 " in line
               for line in text.splitlines())
    assert "ours, cpu track, LiteRT XNNPACK int8 on CPU" in text
    md = (out / "bench.md").read_text()
    assert "## Precision: extra exports vs the track's own" in md and "| int8 |" in md
    assert "litert-xnnpack int8 1 thread" in proc.stderr        # its own progress step
    assert "int8: LiteRT vs ONNX Runtime" in text and "## int8: LiteRT vs ONNX Runtime" in md
    if not results["load"]["loaded"]:
        assert rows["cpu-int8-litert-ort"]["met"] is not None  # a ratio: judged at any size
    else:
        assert rows["cpu-int8-litert-ort"]["note"].startswith("not stated: machine loaded")
