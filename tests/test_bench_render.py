"""bench-runtime --track render end to end on a tiny render export: one real run, checked.

The render track (the depth-guided renderer) takes four inputs, has no defocus net,
no row in the paper's tables and no target; the report must say all three plainly.
"""
from __future__ import annotations

import pytest
from fixtures.bench import check_ratio, checked_averages, run_bench


SIZE = "128x192"     # conftest's tiny render export
RUNS = 2
BACKENDS = {"litert-xnnpack", "litert-xnnpack-persistent", "litert-builtin", "onnxruntime", "pytorch"}
STAGES = ["defocus net", "radiance", "render", "radius/masks"]


@pytest.fixture(scope="module")
def run(tiny_export, tmp_path_factory):
    """One tiny run on the generated scene, one thread, every file output requested."""
    tflite, _ = tiny_export("render")
    out = tmp_path_factory.mktemp("bench_render")
    proc, results = run_bench(out, "--track", "render", "--artifacts", str(tflite.parent), "--size", SIZE,
                              "--runs", str(RUNS), "--min-secs", "0", "--warmup-secs", "0", "--threads", "1",
                              "--gemm-size", "512", "--plot", str(out / "bench.png"))
    return proc, results, out


def test_render_track_times_every_backend_on_all_four_inputs(run):
    _, results, _ = run
    assert list(results["tracks"]) == ["render"]
    track = results["tracks"]["render"]
    assert track["size"] == [128, 192] and track["artifact"]["tiny_backbone"] is False
    assert {(r["backend"], r["threads"]) for r in track["results"]} == {(b, 1) for b in BACKENDS}
    # image (3 channels) + disparity (1) at 128x192, focus and aperture (1 value each), float32
    four_inputs_mb = ((3 + 1) * 128 * 192 + 1 + 1) * 4 / 1e6
    for r in track["results"]:
        assert r["input_mb"] == pytest.approx(four_inputs_mb)
        assert r["stats"]["count"] >= RUNS and r["peak_rss_mb"] >= r["baseline_rss_mb"] > 0
    about = track["inputs"]
    assert about["focus"] == pytest.approx(0.3) and about["aperture"] == 24.0       # example_inputs, seed 0
    assert about["disparity"].startswith("ramp") and "example_inputs" in about["source"]


def test_render_ratios_and_statistics_come_from_this_runs_samples(run):
    _, results, _ = run
    track = results["tracks"]["render"]
    avg = {backend: ms for (backend, _), ms in checked_averages(track).items()}   # one thread count
    [ratio] = track["ratios"]
    assert ratio["threads"] == 1
    check_ratio(results, ratio, "tflite_ort", avg["litert-xnnpack"] / avg["onnxruntime"])
    check_ratio(results, ratio, "tflite_pytorch", avg["litert-xnnpack"] / avg["pytorch"])
    assert ratio["xnnpack_speedup"] == pytest.approx(avg["litert-builtin"] / avg["litert-xnnpack"])
    check_ratio(results, ratio, "persistent_ort", avg["litert-xnnpack-persistent"] / avg["onnxruntime"])
    eff = track["efficiency"]
    assert eff["flops"] > 0 and {b["backend"] for b in eff["backends"]} == BACKENDS
    assert "defocus_net" not in eff     # no defocus net, so no defocus-net efficiency


def test_every_backend_rendered_the_same_picture(run):
    _, results, _ = run
    assert not [w for w in results["warnings"] if "not the exported one" in w]
    psnr = {r["backend"]: r["vs_pytorch"]["psnr"] for r in results["tracks"]["render"]["results"]}
    assert psnr["pytorch"] is None
    assert psnr["onnxruntime"] is None or psnr["onnxruntime"] > 60                  # float32 ONNX
    assert all(psnr[b] >= 45 for b in ("litert-xnnpack", "litert-builtin"))        # float16 gate


def test_render_stages_list_the_missing_defocus_net_as_absent_not_zero(run):
    proc, results, _ = run
    track = results["tracks"]["render"]
    stages = {s["name"]: s for s in track["stages"]["stages"]}
    assert list(stages) == STAGES
    assert stages["defocus net"]["absent"] is True and stages["defocus net"]["ms"] is None
    assert "disparity map is an input" in stages["defocus net"]["why"]
    present = [s for s in stages.values() if not s["absent"]]
    assert sum(s["ms"] for s in present) == pytest.approx(track["stages"]["total_ms"])
    assert track["flops"]["stages"]["defocus net"] is None
    # Untrained, the radiance's g(I) is a constant: its convolutions are not run (model/radiance.py).
    assert track["flops"]["stages"]["render"] > 0 and track["flops"]["stages"]["radiance"] == 0
    row = next(line for line in proc.stdout.splitlines() if "defocus net" in line and "render 128x192" in line)
    assert "absent" in row and " 0.0" not in row


def test_report_says_render_has_no_paper_row_and_no_target(run):
    proc, results, out = run
    track = results["tracks"]["render"]
    assert track["paper_table"] is None and "no row in the paper's tables" in track["paper_note"]
    assert "render" in results["paper"]["no_paper_row"]
    assert not [line for line in proc.stdout.splitlines() if line.startswith("ours,")]
    assert "No paper row: the render track" in proc.stdout
    assert "No targets apply to the render track" in proc.stdout
    assert all(t["met"] is None for t in results["targets"])
    assert "focus 0.3, aperture 24" in proc.stdout                 # the inputs beside the image
    md = (out / "bench.md").read_text()
    assert "| render 128x192 | defocus net | absent |" in md and "No paper row" in md
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_track_all_stays_cpu_and_gpu_and_render_is_opt_in():
    from bokehlite.benchmarks.cli import build_parser, settings_from
    assert settings_from(build_parser().parse_args([]), []).tracks == ("cpu", "gpu")
    assert settings_from(build_parser().parse_args(["--track", "render"]), []).tracks == ("render",)


def test_render_size_not_a_multiple_of_4_exits_2_with_one_line(capsys):
    from bokehlite.benchmarks.cli import main
    assert main(["--track", "render", "--size", "130x192"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "multiples of 4" in err[0]
