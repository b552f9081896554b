"""bench-runtime end to end on a tiny CPU-track export: one real run, its outputs checked."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fixtures.bench import check_ratio, checked_averages

from bokehlite.benchmarks.cli import main
from bokehlite.benchmarks.fingerprint import FOLDERS
from bokehlite.benchmarks.paper import TABLE2_CPU, TABLE3_GPU
from bokehlite.benchmarks.stats import FIELDS

SIZE = "128x256"     # the cpu track needs multiples of 128; conftest's tiny_export uses this size
SWEEP_EXTRA = "128x128"   # a sweep size other than SIZE: exported and measured by the run itself
RUNS = 2
BACKENDS = {"litert-xnnpack", "litert-xnnpack-persistent", "litert-builtin", "onnxruntime", "pytorch"}
# One thread only: fast, and immune to a busy machine's oversubscribed thread pools.
# The default (1 and all cores) is a unit test below.
CORES = len(os.sched_getaffinity(0))


def bench(*args):
    return subprocess.run([sys.executable, "-m", "bokehlite.benchmarks.cli", *args],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def run(tiny_export, tmp_path_factory):
    """One tiny run with every output requested, timed on two real image files; its sweep
    reuses the SIZE measurement and exports and measures SWEEP_EXTRA."""
    tflite, _ = tiny_export("cpu")
    out = tmp_path_factory.mktemp("bench")
    artifacts = out / "artifacts"       # a copy: the SWEEP_EXTRA export must not land in the shared folder
    artifacts.mkdir()
    for path in tflite.parent.glob(f"{tflite.stem}.*"):
        shutil.copy(path, artifacts)
    images = out / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"photo{i}.png"), np.full((100, 150, 3), 60 * (i + 1), np.uint8))
    proc = bench("--device", "cpu", "--track", "cpu", "--tiny", "--artifacts", str(artifacts),
                 "--size", SIZE, "--runs", str(RUNS), "--min-secs", "0", "--warmup-secs", "0",
                 "--threads", "1", "--gemm-size", "512", "--profile",
                 "--images", str(images), "--sweep", "--sweep-sizes", f"{SWEEP_EXTRA},{SIZE}",
                 "--json", str(out / "bench.json"), "--markdown", str(out / "bench.md"),
                 "--plot", str(out / "bench.png"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads((out / "bench.json").read_text()), out


def test_json_schema_is_complete(run):
    _, results, _ = run
    assert results["format"] == "bokehlite-bench" and results["version"] == 1
    for key in ("created", "command", "device", "machine", "protocol", "gemm_peak", "tracks", "sweep",
                "paper", "targets", "warnings"):
        assert key in results, key
    for key in ("cpu_model", "cores", "platform", "versions", "load_avg_before", "load_avg_after"):
        assert key in results["machine"], key
    for key in ("runs", "min_secs", "warmup_runs", "warmup_secs", "max_secs", "statistic", "size", "threads",
                "input", "images", "backends", "isolation"):
        assert key in results["protocol"], key
    assert results["protocol"]["images"] == ["photo0.png", "photo1.png"] and results["protocol"]["max_secs"] == 150
    threads = [1]
    assert results["machine"]["cores"] == CORES and results["protocol"]["threads"] == threads
    assert [g["threads"] for g in results["gemm_peak"]] == threads
    for g in results["gemm_peak"]:
        # Measured before the first row and after the last, in torch and numpy; the best one counts.
        assert g["n"] == 512 and g["reps"] >= 5 and g["when"] in ("before", "after")
        assert g["gflops"] == max(g["before"]["gflops"], g["after"]["gflops"]) > 0
        winner = g[g["when"]]
        assert set(winner["libraries"]) == {"torch", "numpy"} and g["library"] == winner["library"]
        assert winner["libraries"][g["library"]]["gflops"] == g["gflops"]
        assert all(v["gflops"] <= g["gflops"] for m in (g["before"], g["after"]) for v in m["libraries"].values())

    track = results["tracks"]["cpu"]
    assert track["size"] == [128, 256] and track["artifact"]["tiny_backbone"] is True
    measured = {(r["backend"], r["threads"]) for r in track["results"]}
    assert measured == {(b, t) for b in BACKENDS for t in threads}
    for r in track["results"]:
        for key in ("init_ms", "first_ms", "warmup", "stats", "samples_ms", "peak_rss_mb", "baseline_rss_mb",
                    "vs_pytorch"):
            assert key in r, key
        assert set(FIELDS) <= set(r["stats"]) and r["stats"]["count"] >= RUNS and r["capped"] is False
        assert r["warmup"]["count"] >= 1 and r["peak_rss_mb"] >= r["baseline_rss_mb"] > 0
    assert [s["name"] for s in track["stages"]["stages"]] == ["defocus net", "radiance", "render", "upsample/blend"]
    assert track["stages"]["backend"] == "pytorch" and track["stages"]["threads"] == 1
    eff = track["efficiency"]
    for key in ("flops", "stage_flops", "peak", "backends", "defocus_net"):
        assert key in eff, key
    for key in ("gemm_gflops", "lower_bound_ms", "faster_than_bound"):
        assert key in eff["peak"][0]
    for key in ("gflops", "percent_of_peak", "exceeds_peak"):
        assert key in eff["backends"][0] and key in eff["defocus_net"]
    assert results["sweep"] and {"track", "size", "avg", "peak_rss_mb"} <= set(results["sweep"][0])
    assert len(results["paper"]["table2_cpu"]) == 8 and len(results["paper"]["table3_gpu"]) == 3
    assert {t["id"] for t in results["targets"]} >= {"cpu-latency", "cpu-peak-rss", "gpu-on-cpu-latency",
                                                     "cpu-tflite-ort", "cpu-tflite-pytorch",
                                                     "cpu-defocus-efficiency"}


def test_statistics_and_ratios_come_from_this_runs_samples(run):
    _, results, _ = run
    track = results["tracks"]["cpu"]
    avg = checked_averages(track)
    assert len(track["ratios"]) == len(results["protocol"]["threads"])
    for ratio in track["ratios"]:
        t = ratio["threads"]
        check_ratio(results, ratio, "tflite_ort", avg["litert-xnnpack", t] / avg["onnxruntime", t])
        check_ratio(results, ratio, "tflite_pytorch", avg["litert-xnnpack", t] / avg["pytorch", t])
    peaks = {g["threads"]: g["gflops"] for g in results["gemm_peak"]}
    eff = track["efficiency"]
    for b in eff["backends"]:
        gflops = eff["flops"] / (avg[b["backend"], b["threads"]] / 1e3) / 1e9
        assert b["gflops"] == pytest.approx(gflops)
        assert b["percent_of_peak"] == pytest.approx(100 * gflops / peaks[b["threads"]])
    for p in eff["peak"]:
        assert p["lower_bound_ms"] == pytest.approx(eff["flops"] / peaks[p["threads"]] / 1e6)
    sweep = next(r for r in results["sweep"] if r["size"] == [128, 256])   # the run's size: reused
    assert sweep["avg"] == avg["litert-xnnpack", max(peaks)]


def test_sweep_exports_and_measures_a_size_other_than_the_run_size(run):
    proc, results, out = run
    rows = {tuple(r["size"]): r for r in results["sweep"]}
    assert list(rows) == [(128, 128), (128, 256)]
    extra = rows[128, 128]
    assert (out / "artifacts" / "bokeh_cpu_128x128.tflite").is_file()        # exported by this run
    assert "sweep cpu 128x128: avg" in proc.stderr                           # measured, not reused
    assert extra["backend"] == "litert-xnnpack" and extra["threads"] == 1 and extra["capped"] is False
    assert extra["count"] >= RUNS and extra["min"] <= extra["median"] <= extra["max"]
    assert extra["min"] <= extra["avg"] <= extra["max"] and extra["peak_rss_mb"] > 0
    assert extra["megapixels"] == pytest.approx(128 * 128 / 1e6)
    assert "Scaling with input size" in proc.stdout


def test_every_backend_ran_the_same_model(run):
    _, results, _ = run
    assert not [w for w in results["warnings"] if "not the exported one" in w]
    for r in results["tracks"]["cpu"]["results"]:
        psnr = r["vs_pytorch"]["psnr"]
        assert psnr is None or psnr > 60, (r["backend"], psnr)   # float32 export


def test_peak_rss_is_each_process_own(run):
    """A LiteRT process never imports torch, so its peak must be below PyTorch's; inheriting
    the parent's ru_maxrss across exec would make them all equal."""
    _, results, _ = run
    rss = {(r["backend"], r["threads"]): r["peak_rss_mb"] for r in results["tracks"]["cpu"]["results"]}
    assert max(v for (b, _), v in rss.items() if b.startswith("litert")) < \
        min(v for (b, _), v in rss.items() if b == "pytorch")


def test_terminal_output_prints_the_paper_tables_beside_our_rows(run):
    proc, results, _ = run
    out = proc.stdout
    for row in (*TABLE2_CPU, *TABLE3_GPU):
        assert row.team in out
    assert "23.56" in out and "0.8829" in out and "1.71" in out      # AIA-Smart, Table 2
    assert "23.94" in out and "0.8842" in out and "15.20" in out     # AIA-Smart, Table 3
    assert "0.055 s" in out                                           # Table 9
    assert "AIA-Smart (the paper)" in out and "hardware, which differs from this machine" in out
    cpu = results["machine"]["cpu_model"]
    ours = [line for line in out.splitlines() if line.startswith("ours, cpu track")]
    assert any(cpu in line and "1 thread" in line for line in ours)
    assert "TFLite/ORT" in out and "TFLite/PyTorch" in out


def test_progress_goes_to_stderr_and_files_are_complete(run):
    proc, _, out = run
    # 4 backends x 1 thread, 1 extra sweep size, the GEMM peak before and after: 7 steps.
    assert "[1/7]" in proc.stderr and "[7/7]" in proc.stderr and "[1/7]" not in proc.stdout
    assert "fp32 GEMM peak before the rows" in proc.stderr and "fp32 GEMM peak after the rows" in proc.stderr
    md = (out / "bench.md").read_text()
    assert md.startswith("# ") and "| Track |" in md and "TFLite/ORT" in md and "Table 2" in md
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]     # no temp files left
    json.loads((out / "bench.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))


def test_the_report_header_records_the_code_it_timed(run):
    """When, where, how, and a fingerprint of the code (tests/test_bench_report_fresh.py
    recomputes it for docs/benchmarks.md)."""
    _, results, out = run
    code = results["code"]
    assert re.fullmatch(r"[0-9a-f]{64}", code["sha256"]) and code["files"] > 0
    assert all(f"{folder}/" in code["covers"] for folder in FOLDERS)
    md = (out / "bench.md").read_text()
    header = md.split("\n## ")[1]
    assert header.startswith("Machine and protocol")
    for row in ("| Measured |", "| Commit |", f"| Code fingerprint | {code['sha256']} (sha256 of the ",
                "| Command | bench-runtime --device cpu --track cpu --tiny "):
        assert row in header, row


def test_device_gpu_without_a_vulkan_adapter_exits_2_with_one_clear_line(tmp_path):
    env = {**os.environ, "VK_ICD_FILENAMES": str(tmp_path / "no_such_icd.json")}   # the only one tried
    proc = subprocess.run([sys.executable, "-m", "bokehlite.benchmarks.cli", "--device", "gpu"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no Vulkan adapter" in lines[0] and "no_such_icd.json, which does not exist" in lines[0]
    assert "benchmark_model --use_gpu=true" in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("track", ["cpu", "all"])
def test_device_gpu_refuses_the_cpu_track_as_every_front_end_does(track, capsys):
    """F9 (docs/contract.md): the cpu track is not for LiteRT's GPU accelerator; the bench does
    not time it there either, and says which model is."""
    assert main(["--device", "gpu", "--track", track]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the cpu track is not for LiteRT's GPU accelerator" in err[0] and "--track gpu" in err[0]


def test_device_gpu_times_the_gpu_track_on_the_accelerator_and_names_the_adapter(tiny_export, gpu_adapter,
                                                                                 tmp_path):
    tflite, _ = tiny_export("gpu")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for path in tflite.parent.glob(f"{tflite.stem}.*"):
        shutil.copy(path, artifacts)
    proc = bench("--device", "gpu", "--track", "gpu", "--tiny", "--artifacts", str(artifacts),
                 "--size", "128x192", "--runs", "2", "--min-secs", "0", "--warmup-secs", "0",
                 "--gemm-size", "512", "--json", str(tmp_path / "bench.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["device"] == "gpu" and results["gpu_adapter"]["name"] == gpu_adapter.name
    [row] = results["tracks"]["gpu"]["results"]
    assert row["backend"] == "litert-gpu" and row["stats"]["count"] >= 2
    assert f"GPU: LiteRT's GPU accelerator on {gpu_adapter.name}" in proc.stderr
    assert any(l.startswith("GPU adapter") and gpu_adapter.name in l for l in proc.stdout.splitlines())
    software = [w for w in results["warnings"] if "not a phone GPU's" in w]
    assert bool(software) == gpu_adapter.software


@pytest.mark.parametrize("argv", [
    ["--runs", "0"], ["--size", "12x"], ["--track", "npu"], ["--track", "cpu,npu"], ["--track", ","],
    ["--tiny"], ["--plot", "chart.jpg"],
    ["--images", "/nonexistent/folder"], ["--size", "100x200", "--track", "cpu"], ["--threads", "0"],
    ["--json", "/nonexistent/folder/out.json"], ["--sweep-sizes", "256x384"], ["--max-secs", "0"],
    ["--large-photo", "--track", "cpu"], ["--large-photo", "--device", "gpu", "--track", "gpu"],
    ["--large-photo", "6000"],
])
def test_bad_usage_exits_2_with_one_line(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:            # the parser's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench-runtime: error: ")


def test_default_thread_counts_are_one_and_all_cores():
    from bokehlite.benchmarks.cli import build_parser, settings_from
    settings = settings_from(build_parser().parse_args([]), [])
    assert settings.thread_counts() == tuple(sorted({1, CORES}))
    assert settings.tracks == ("cpu", "gpu") and settings.size == (1024, 1536)
    assert settings.protocol.runs == 20 and settings.protocol.warmup_runs == 1
    assert settings.protocol.warmup_secs == 0.5 and settings.protocol.max_secs == 150.0
    settings = settings_from(build_parser().parse_args(["--max-secs", "7.5"]), [])
    assert settings.protocol.max_secs == 7.5


def test_track_takes_a_list_and_all_stands_for_the_papers_two():
    from bokehlite.benchmarks.cli import build_parser, settings_from
    argv = ["--track", "all,portrait,cpu"]
    assert settings_from(build_parser().parse_args(argv), argv).tracks == ("cpu", "gpu", "portrait")


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "bench-runtime --device cpu" in out and "--min-secs" in out


def test_profile_lists_the_export_op_types_costliest_first(run):
    """--profile: LiteRT's op profile of the export. The cpu track has exactly one softmax (the
    6-way defocus head), which XNNPACK runs as one Softmax operator."""
    proc, results, _ = run
    prof = results["tracks"]["cpu"]["profiles"]["float32"]
    counts = {t["type"]: t["count"] for t in prof["by_type"]}
    assert counts.get("Softmax (NC, F32)") == 1, counts
    times = [t["ms"] for t in prof["by_type"]]
    assert times == sorted(times, reverse=True) and times[-1] >= 0 and times[0] > 0
    assert prof["threads"] == 1 and prof["xnnpack"] is True
    assert "Op profile (LiteRT, costliest op types)" in proc.stdout
    assert prof["by_type"][0]["type"] in proc.stdout
