"""bench-runtime building blocks: statistics, the timing protocol, FLOPs, stages, targets, inputs."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from bokehlite.benchmarks.efficiency import efficiency, over_peak_warning, ratios
from bokehlite.benchmarks.inputs import make_inputs
from bokehlite.benchmarks.peak import combine, gemm_peak
from bokehlite.benchmarks.stats import percentile, summarize
from bokehlite.benchmarks.targets import TARGETS, evaluate_targets
from bokehlite.benchmarks.timing import Protocol, measure
from bokehlite.model.stages import Stage

# ---------------------------------------------------------------- statistics


def test_summary_of_a_known_sample_matches_hand_computed_values():
    # The textbook sample: mean 5, population standard deviation exactly 2.
    s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert s["count"] == 8 and s["min"] == 2 and s["max"] == 9
    assert s["avg"] == pytest.approx(5.0) and s["std"] == pytest.approx(2.0)
    assert s["median"] == pytest.approx(4.5)
    # p95 at index 0.95 * 7 = 6.65 between 7 and 9: 7 + 0.65 * 2.
    assert s["p95"] == pytest.approx(8.3)


def test_summary_of_one_to_four_matches_hand_computed_values():
    s = summarize([4.0, 1.0, 3.0, 2.0])                  # order must not matter
    assert (s["count"], s["min"], s["max"]) == (4, 1.0, 4.0)
    assert s["avg"] == 2.5 and s["median"] == 2.5
    assert s["std"] == pytest.approx(1.25 ** 0.5)        # squared deviations 2.25 + 0.25 + 0.25 + 2.25, over 4
    assert s["p95"] == pytest.approx(3.85)               # index 0.95 * 3 = 2.85: 3 + 0.85 * (4 - 3)


def test_percentiles_match_numpy_linear_method_on_random_samples():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 20, 101):
        x = rng.exponential(10.0, n).tolist()
        for q in (0, 5, 50, 95, 100):
            assert percentile(x, q) == pytest.approx(np.percentile(x, q))
        s = summarize(x)
        assert s["std"] == pytest.approx(np.std(x)) and s["avg"] == pytest.approx(np.mean(x))


def test_single_sample_has_zero_spread_and_empty_sample_is_an_error():
    s = summarize([3.5])
    assert s["std"] == 0 and s["median"] == s["p95"] == s["min"] == s["max"] == 3.5
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# ---------------------------------------------------------------- protocol


class FakeModel:
    """Each call advances a fake clock by `cost` seconds (binary fractions: exact in floats)."""

    def __init__(self, clock, cost=0.125):
        self.clock, self.cost, self.seen = clock, cost, []

    def prepare(self, x):
        return x

    def run(self, x):
        self.seen.append(x)
        self.clock.t += self.cost
        return f"out-{x}"


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def run_protocol(protocol, images=("a",), init_cost=0.25):
    clock = now = FakeClock()
    model = FakeModel(clock)

    def open_model():
        clock.t += init_cost
        return model

    timings, opened, first = measure(open_model, list(images), protocol, clock=now)
    return timings, model, opened, first


def test_protocol_separates_init_first_warmup_and_steady_state():
    timings, model, opened, first = run_protocol(Protocol(runs=3, min_secs=1.0, warmup_runs=1, warmup_secs=0.5))
    assert opened is model and first == "out-a"
    assert timings["init_ms"] == pytest.approx(250.0)
    assert timings["first_ms"] == pytest.approx(125.0)
    assert timings["warmup"]["count"] == 4           # 0.5 s of 0.125 s runs
    assert timings["steady"]["count"] == 8           # min_secs (1 s) outlasts runs (3)
    assert timings["steady"]["avg"] == pytest.approx(125.0) and timings["steady"]["std"] == 0
    assert len(model.seen) == 1 + 4 + 8              # nothing timed twice, nothing skipped


def test_protocol_runs_at_least_n_runs_and_at_least_one_warmup_run():
    timings, model, *_ = run_protocol(Protocol(runs=20, min_secs=0.0, warmup_runs=1, warmup_secs=0.0))
    assert timings["warmup"]["count"] == 1
    assert timings["steady"]["count"] == 20 == len(timings["samples_ms"])


def test_protocol_cycles_through_all_images():
    _, model, *_ = run_protocol(Protocol(runs=6, min_secs=0, warmup_runs=1, warmup_secs=0), images=("a", "b", "c"))
    assert model.seen == ["a", "b", "c", "a", "b", "c", "a", "b"]


def test_protocol_stops_at_max_secs_short_of_runs_and_says_so():
    # 0.125 s per run: 1 s of steady state holds 8 runs, far short of 100.
    timings, model, *_ = run_protocol(Protocol(runs=100, min_secs=0, warmup_runs=1, warmup_secs=0, max_secs=1.0))
    assert timings["capped"] is True and timings["steady"]["count"] == 8 == len(timings["samples_ms"])
    assert timings["steady_secs"] == pytest.approx(1.0) and timings["warmup"]["capped"] is False
    assert len(model.seen) == 1 + 1 + 8
    # max_secs outranks min_secs too, and the warm-up stops at it as benchmark_model's does.
    timings, *_ = run_protocol(Protocol(runs=1, min_secs=10, warmup_runs=1, warmup_secs=10, max_secs=0.5))
    assert timings["capped"] is True and timings["steady"]["count"] == 4
    assert timings["warmup"] == {"count": 4, "secs": 0.5, "capped": True}


def test_protocol_always_times_one_run_even_if_it_outlasts_max_secs():
    clock = FakeClock()
    model = FakeModel(clock, cost=2.0)
    timings, *_ = measure(lambda: model, ["a"], Protocol(runs=5, min_secs=0, warmup_secs=0, max_secs=1.0),
                          clock=clock)
    assert timings["steady"]["count"] == 1 and timings["capped"] is True
    assert timings["warmup"]["count"] == 1 and timings["steady"]["avg"] == 2000.0


def test_protocol_that_reaches_its_runs_within_max_secs_is_not_capped():
    timings, *_ = run_protocol(Protocol(runs=3, min_secs=0, warmup_secs=0, max_secs=150.0))
    assert timings["capped"] is False and timings["steady"]["count"] == 3
    assert Protocol().max_secs == 150.0                  # benchmark_model's default


def test_protocol_rejects_nonsense():
    with pytest.raises(ValueError):
        Protocol(runs=0)
    with pytest.raises(ValueError):
        Protocol(max_secs=0)
    with pytest.raises(ValueError):
        run_protocol(Protocol(), images=())


# ---------------------------------------------------------------- FLOPs and stages


@pytest.fixture(scope="module")
def tiny_cpu_model():
    from bokehlite.export.track_model import build_model
    from bokehlite.export.tracks import get_track
    from bokehlite.model import BackboneConfig
    model, _ = build_model(get_track("cpu"), None, BackboneConfig.tiny())
    return model


def test_flop_count_matches_hand_counts_for_residual_and_depthwise_render(tiny_cpu_model):
    from bokehlite.benchmarks.flops import count_flops
    h, w = 128, 256
    flops = count_flops(tiny_cpu_model, torch.rand(1, 3, h, w))
    # The remainder holds only the residual refiner's convs, the low-res design's (residual.py):
    # per 4x4 block, the photo's 4x4 stride-4 conv 3 -> 32, and three convs at the network
    # grid: 3x3 blur 3 -> 32, 3x3 32 -> 32, 1x1 32 -> 3. 732 MACs per input pixel.
    block = 3 * 16 * 32 + 9 * 3 * 32 + 9 * 32 * 32 + 32 * 3
    assert flops["stages"]["upsample/blend"] == 2 * block * (h // 4) * (w // 4) == 2 * 732 * h * w
    # The renderer's functional depthwise convs: 7 channels per layer on its (pooled) grid.
    nh, nw = h // 4, w // 4
    expected = 0
    for blur in tiny_cpu_model.net.renderer.blurs:
        if blur.size > 1:
            k = blur.kernel.shape[-1]
            expected += 2 * 7 * (nh // blur.factor) * (nw // blur.factor) * k * k
    assert flops["stages"]["render"] == expected > 0
    assert flops["stages"]["defocus net"] > 0


class Sleep(torch.nn.Module):
    """Sleeps `secs`, then runs `inner` (a stage nested in this one), if any."""

    def __init__(self, secs, inner=None):
        super().__init__()
        self.secs, self.inner = secs, inner

    def forward(self, x):
        time.sleep(self.secs)
        return x if self.inner is None else self.inner(x)


class SleepNet(torch.nn.Module):
    """A BokehNet-shaped net of known stage times: defocus net 40 ms, render 20 ms with the
    10 ms radiance called inside it, and 5 ms of remainder outside every stage."""

    def __init__(self):
        super().__init__()
        self.defocus_net, self.radiance = Sleep(0.040), Sleep(0.010)
        self.renderer = Sleep(0.020, inner=self.radiance)

    def forward(self, x):
        x = self.renderer(self.defocus_net(x))
        time.sleep(0.005)
        return x

    def stages(self):
        return [Stage("defocus net", self.defocus_net), Stage("radiance", self.radiance),
                Stage("render", self.renderer), Stage("upsample/blend", None, "sleep", remainder=True)]


class Wrapped(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *x):
        return self.net(*x)


def test_stage_times_match_known_sleeps_and_a_nested_stage_counts_once():
    from bokehlite.benchmarks.stages import time_stages
    STAGES = ("defocus net", "radiance", "render", "upsample/blend")
    result = time_stages(Wrapped(SleepNet()), torch.zeros(1), runs=3)
    ms = {s["name"]: s["ms"] for s in result["stages"]}
    assert list(ms) == list(STAGES)
    # sleep() never returns early; a busy machine may add a few ms, never remove any.
    # Counting radiance inside render as well would make render 30 ms and the remainder -5 ms.
    for name, slept in {"defocus net": 40, "render": 20, "radiance": 10, "upsample/blend": 5}.items():
        assert slept - 0.5 <= ms[name] <= slept + 8, (name, ms)
    assert 75 - 0.5 <= result["total_ms"] <= 75 + 20
    assert ms["defocus net"] / result["total_ms"] * 100 == pytest.approx(result["stages"][0]["percent"])


def test_stage_breakdown_of_the_real_model_has_no_negative_stage_and_removes_its_hooks(tiny_cpu_model):
    from bokehlite.benchmarks.stages import time_stages
    STAGES = ("defocus net", "radiance", "render", "upsample/blend")
    result = time_stages(tiny_cpu_model, torch.rand(1, 3, 128, 256), runs=2)
    assert [s["name"] for s in result["stages"]] == list(STAGES)
    assert all(s["ms"] >= 0 for s in result["stages"]), result["stages"]      # the remainder included
    assert result["stages"][-1]["name"] == result["remainder_stage"] == "upsample/blend"
    assert "residual refiner" in result["remainder"]
    # Hooks are removed afterwards: the model is left as it was.
    assert not tiny_cpu_model.net.defocus_net._forward_hooks


# ---------------------------------------------------------------- targets


def gemm_entry(threads, gflops, library="numpy"):
    """A measured GEMM peak as peak.combine() leaves it (before == after)."""
    libs = {"torch": {"gflops": gflops * 0.9}, library: {"gflops": gflops}}
    one = {"threads": threads, "n": 4096, "reps": 5, "gflops": gflops, "library": library, "libraries": libs}
    return combine([one], [dict(one)])[0]


def fake_track(size=(1024, 1536), lite_ms=400.0, ort_ms=500.0, torch_ms=1000.0, rss=900.0, tiny=False,
               defocus_ms=70.0, peak=100.0):
    """One CPU track at 2 threads. 10 GFLOP in all, 4.2 of them in the defocus net: at a
    100 GFLOP/s peak the defocus net's 70 ms is 60 GFLOP/s, 60% of peak."""
    def entry(backend, ms):
        return {"backend": backend, "threads": 2, "stats": summarize([ms]), "peak_rss_mb": rss,
                "baseline_rss_mb": rss / 2, "init_ms": 1.0, "first_ms": ms, "capped": False}
    stages = {"backend": "pytorch", "threads": 2, "runs": 3, "total_ms": 100.0, "remainder_stage": "upsample/blend",
              "remainder": "bilinear upsampling", "stages": [
                  {"name": "defocus net", "ms": defocus_ms, "percent": defocus_ms},
                  {"name": "radiance", "ms": 5.0, "percent": 5.0},
                  {"name": "render", "ms": 20.0, "percent": 20.0},
                  {"name": "upsample/blend", "ms": 5.0, "percent": 5.0}]}
    track = {"size": list(size), "artifact": {"tiny_backbone": tiny, "weights": "untrained"}, "inputs": {},
             "results": [entry("litert-xnnpack", lite_ms), entry("onnxruntime", ort_ms), entry("pytorch", torch_ms)],
             "stages": stages, "flops": {"total": 10e9, "stages": {"defocus net": 4.2e9, "radiance": 1e9,
                                                                   "render": 3e9, "upsample/blend": 1.8e9}}}
    gemm = [gemm_entry(2, peak)]
    track["ratios"] = ratios(track, (2,))
    track["efficiency"] = efficiency(track, gemm)
    return track, gemm


def fake_results(**kwargs):
    track, gemm = fake_track(**kwargs)
    return {"device": "cpu", "tracks": {"cpu": track}, "gemm_peak": gemm}


def full_results(**kwargs):
    """fake_results with everything the report reads, warnings and targets as the suite derives them."""
    results = fake_results(**kwargs)
    warning = over_peak_warning(results["tracks"])
    results.update(
        command=["bench-runtime"], created="2025-01-01T00:00:00+00:00", sweep=[], paper={},
        machine={"cpu_model": "Test CPU", "cores": 2, "platform": "Linux", "python": "3.11", "versions": {},
                 "load_avg_before": 0.1, "load_avg_after": 0.2},
        protocol={**Protocol().to_dict(), "statistic": "avg", "size": [1024, 1536], "threads": [2],
                  "input": "generated", "images": ["scene"], "backends": {}, "isolation": "one process each"},
        warnings=[warning] if warning else [])
    results["targets"] = evaluate_targets(results)
    return results


def by_id(rows):
    return {r["id"]: r for r in rows}


def test_targets_met_and_missed_are_judged_against_their_limits():
    rows = by_id(evaluate_targets(fake_results(lite_ms=600.0, ort_ms=500.0)))
    assert len(rows) == len(TARGETS)
    assert rows["cpu-latency"]["met"] is False and rows["cpu-latency"]["value"] == 600.0
    assert rows["cpu-peak-rss"]["met"] is True
    assert rows["cpu-tflite-ort"]["met"] is False and rows["cpu-tflite-ort"]["value"] == pytest.approx(1.2)
    assert rows["cpu-tflite-pytorch"]["met"] is False            # 0.6 > 0.5
    assert rows["cpu-defocus-efficiency"]["met"] is True         # 60% >= 50%
    # A missed target names the costliest stage; a met one does not.
    assert rows["cpu-latency"]["costliest_stage"]["name"] == "defocus net"
    assert rows["cpu-peak-rss"]["costliest_stage"] is None
    # The GPU track was not run: its targets are not evaluated, not "met".
    assert rows["gpu-on-cpu-latency"]["met"] is None and "not run" in rows["gpu-on-cpu-latency"]["note"]


def test_full_size_targets_are_not_evaluated_on_small_or_tiny_models():
    for results in (fake_results(size=(128, 256)), fake_results(tiny=True)):
        rows = by_id(evaluate_targets(results))
        assert rows["cpu-latency"]["met"] is None and rows["cpu-peak-rss"]["met"] is None
        assert rows["cpu-tflite-ort"]["met"] is True           # ratios hold at any size


# ---------------------------------------------------------------- efficiency and the GEMM peak


def test_efficiency_arithmetic_matches_hand_computed_values():
    track, _ = fake_track(lite_ms=400.0, ort_ms=500.0, torch_ms=1000.0, defocus_ms=70.0)
    eff = efficiency(track, [gemm_entry(2, 100.0), gemm_entry(1, 50.0)])
    rows = {b["backend"]: b for b in eff["backends"]}
    # 10 GFLOP in 0.4 s = 25 GFLOP/s = 25% of 100; in 0.5 s 20; in 1 s 10.
    assert rows["litert-xnnpack"]["gflops"] == pytest.approx(25.0)
    assert rows["litert-xnnpack"]["percent_of_peak"] == pytest.approx(25.0)
    assert rows["onnxruntime"]["gflops"] == pytest.approx(20.0) and rows["pytorch"]["gflops"] == pytest.approx(10.0)
    assert not any(b["exceeds_peak"] for b in eff["backends"])
    # Lower bound = 10 GFLOP / peak: 100 ms at 100 GFLOP/s (2 threads), 200 ms at 50 (1 thread).
    bounds = {p["threads"]: p["lower_bound_ms"] for p in eff["peak"]}
    assert bounds == {1: pytest.approx(200.0), 2: pytest.approx(100.0)}
    # Defocus net: 4.2 GFLOP in 70 ms = 60 GFLOP/s = 60% of the 2-thread peak.
    assert eff["defocus_net"]["gflops"] == pytest.approx(60.0)
    assert eff["defocus_net"]["percent_of_peak"] == pytest.approx(60.0)
    assert over_peak_warning({"cpu": track}) is None


def test_a_row_faster_than_the_gemm_peak_is_flagged_everywhere_and_the_target_not_met():
    from bokehlite.benchmarks.report import sections, to_text
    # Issue 12's shape: ORT at 10 GFLOP / 62.5 ms = 160 GFLOP/s against a 100 GFLOP/s peak,
    # which puts the lower bound (100 ms) above ORT's measured 62.5 ms.
    results = full_results(ort_ms=62.5, defocus_ms=70.0)
    eff = results["tracks"]["cpu"]["efficiency"]
    ort = next(b for b in eff["backends"] if b["backend"] == "onnxruntime")
    assert ort["gflops"] == pytest.approx(160.0) and ort["exceeds_peak"] is True
    assert eff["peak"][0]["faster_than_bound"] == ["onnxruntime"]
    assert eff["defocus_net"]["exceeds_peak"] is False       # 60%: but the peak it is measured against is wrong
    [warning] = results["warnings"]
    assert "onnxruntime" in warning and "160.0 > 100.0" in warning and "\n" not in warning
    target = by_id(results["targets"])["cpu-defocus-efficiency"]
    assert target["met"] is None and target["value"] is None
    assert "not evaluated" in target["note"] and "onnxruntime" in target["note"]

    text = to_text(sections(results))
    row = next(line for line in text.splitlines() if line.startswith("cpu 1024x1536") and "onnxruntime" in line
               and "160.0" in line)
    assert "> peak" in row and "> measured" in row and "160.0 %" not in row
    assert warning in text
    targets = next(line for line in text.splitlines() if line.startswith("CPU track, defocus net"))
    assert "not evaluated" in targets and " met " not in f" {targets} "


def test_a_defocus_net_faster_than_the_peak_is_flagged_and_not_met():
    results = full_results(defocus_ms=30.0)                  # 4.2 GFLOP in 30 ms = 140 GFLOP/s, "140%"
    assert results["tracks"]["cpu"]["efficiency"]["defocus_net"]["exceeds_peak"] is True
    assert "defocus net (pytorch) 2t 140.0 > 100.0" in results["warnings"][0]
    assert by_id(results["targets"])["cpu-defocus-efficiency"]["met"] is None


def test_gemm_peak_is_the_faster_library_and_the_better_of_before_and_after():
    before = {"threads": 2, "n": 4096, "reps": 5, "gflops": 150.0, "library": "torch",
              "libraries": {"torch": {"gflops": 150.0}, "numpy": {"gflops": 140.0}}}
    after = {**before, "gflops": 161.0, "library": "numpy",
             "libraries": {"torch": {"gflops": 149.0}, "numpy": {"gflops": 161.0}}}
    [g] = combine([before], [after])
    assert (g["threads"], g["gflops"], g["library"], g["when"]) == (2, 161.0, "numpy", "after")
    assert g["before"] is before and g["after"] is after
    [g] = combine([after], [before])
    assert (g["gflops"], g["when"]) == (161.0, "before")


def test_gemm_peak_measures_every_library_present_and_picks_the_fastest():
    g = gemm_peak(1, n=128, reps=5)          # a small n for speed: it says nothing about the real peak
    assert g["threads"] == 1 and g["n"] == 128 and g["reps"] == 5
    assert set(g["libraries"]) == {"torch", "numpy"}
    assert all(len(v["secs"]) == 5 and v["gflops"] >= v["median_gflops"] > 0 for v in g["libraries"].values())
    assert g["gflops"] == max(v["gflops"] for v in g["libraries"].values())
    assert g["libraries"][g["library"]]["gflops"] == g["gflops"]


# ---------------------------------------------------------------- inputs


def test_images_are_read_as_rgb_in_unit_range_at_the_model_size(tmp_path):
    bgr8 = np.zeros((60, 90, 3), np.uint8)
    bgr8[..., 2] = 255                        # pure red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "a.png"), bgr8)
    gray16 = np.full((30, 40), 65535 // 5, np.uint16)
    cv2.imwrite(str(tmp_path / "b.png"), gray16)
    (tmp_path / "notes.txt").write_text("not an image")
    stack, names = make_inputs((64, 128), tmp_path)
    assert names == ["a.png", "b.png"]
    assert stack.shape == (2, 64, 128, 3) and stack.dtype == np.float32
    np.testing.assert_allclose(stack[0].reshape(-1, 3).mean(0), [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(stack[1], 0.2, atol=1e-4)


def test_generated_input_is_one_scene_at_the_model_size():
    stack, names = make_inputs((64, 128))
    assert stack.shape == (1, 64, 128, 3) and 0.0 <= stack.min() and stack.max() <= 1.0


# ---------------------------------------------------------------- same model across backends


def test_a_pytorch_model_that_is_not_the_export_is_flagged(tmp_path):
    from bokehlite.benchmarks.suite import Settings, Suite
    rng = np.random.default_rng(0)
    reference = rng.random((1, 8, 8, 3), dtype=np.float32)
    outputs = {}
    for backend, out in (("pytorch", reference), ("onnxruntime", reference + 1e-6),
                         ("litert-xnnpack", reference + 0.01)):
        outputs[backend, 1, None] = str(tmp_path / f"{backend}.npy")     # None: the track's own export
        np.save(outputs[backend, 1, None], out)
    track = {"results": [{"backend": b, "threads": 1} for b, *_ in outputs]}
    suite = Suite(Settings(), progress=lambda _: None)
    suite.check_parity("cpu", track, outputs)
    assert not suite.warnings
    psnr = {r["backend"]: r["vs_pytorch"]["psnr"] for r in track["results"]}
    assert psnr["pytorch"] is None and psnr["litert-xnnpack"] == pytest.approx(40.0, abs=0.01)

    np.save(outputs["onnxruntime", 1, None], reference + 0.01)     # a different model behind PyTorch
    suite.check_parity("cpu", track, outputs)
    assert len(suite.warnings) == 1 and "not the exported one" in suite.warnings[0]


# ---------------------------------------------------------------- the render track


def test_render_inputs_on_photos_are_a_disparity_ramp_focus_half_aperture_24(tmp_path):
    from bokehlite.benchmarks.inputs import describe, track_inputs
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), np.full((30, 50, 3), 100, np.uint8))
    arrays, names, about = track_inputs("render", (64, 128), tmp_path)
    assert list(arrays) == ["image", "disparity", "focus", "aperture"] and names == ["p0.png", "p1.png"]
    assert arrays["image"].shape == (2, 64, 128, 3) and arrays["disparity"].shape == (2, 64, 128, 1)
    assert arrays["focus"].shape == arrays["aperture"].shape == (2, 1)
    assert all(a.dtype == np.float32 for a in arrays.values())
    np.testing.assert_allclose(arrays["disparity"][1, 7, :, 0], np.linspace(0, 1, 128), atol=1e-6)
    assert (arrays["focus"] == 0.5).all() and (arrays["aperture"] == 24.0).all()
    assert "photos have no depth" in describe(about) and "focus 0.5, aperture 24" in describe(about)


def test_generated_render_inputs_are_the_exporters_parity_inputs():
    from bokehlite.benchmarks.inputs import describe, track_inputs
    from bokehlite.export.tracks import example_inputs, get_track
    arrays, _, about = track_inputs("render", (64, 128))
    for name, value in example_inputs(get_track("render"), (64, 128), seed=0).items():
        np.testing.assert_array_equal(arrays[name], value.transpose(0, 2, 3, 1) if value.ndim == 4 else value)
    assert about["focus"] == pytest.approx(0.3) and about["disparity"].startswith("ramp")
    arrays, _, about = track_inputs("cpu", (64, 128))            # image-only tracks are unchanged
    assert list(arrays) == ["image"] and describe(about) == ""
    np.testing.assert_array_equal(arrays["image"], make_inputs((64, 128))[0])


@pytest.fixture(scope="module")
def render_model_and_inputs():
    from bokehlite.export.track_model import build_model
    from bokehlite.export.tracks import example_inputs, get_track
    model, _ = build_model(get_track("render"))
    inputs = tuple(torch.from_numpy(v) for v in example_inputs(get_track("render"), (64, 96), seed=0).values())
    return model, inputs


def test_depth_renderer_stages_are_not_negative_and_its_defocus_net_is_absent(render_model_and_inputs):
    from bokehlite.benchmarks.stages import time_stages
    DEPTH_STAGES = ("defocus net", "radiance", "render", "radius/masks")
    model, inputs = render_model_and_inputs
    result = time_stages(model, inputs, runs=2)
    stages = {s["name"]: s for s in result["stages"]}
    assert list(stages) == list(DEPTH_STAGES) and result["remainder_stage"] == "radius/masks"
    assert stages["defocus net"]["absent"] and stages["defocus net"]["ms"] is None
    present = [s for s in result["stages"] if not s["absent"]]
    assert [s["name"] for s in present] == ["radiance", "render", "radius/masks"]
    assert all(s["ms"] >= 0 for s in present), present
    assert "Eq. 1-2" in result["remainder"]
    assert not model.net.radiance._forward_hooks


def test_depth_renderer_flops_count_radiance_and_render_only(render_model_and_inputs):
    import copy
    from bokehlite.benchmarks.flops import count_flops
    model, inputs = render_model_and_inputs
    flops = count_flops(model, inputs)
    assert flops["stages"]["defocus net"] is None
    # Untrained, g(I) is a constant (model/radiance.py): no convolution runs.
    assert flops["stages"]["radiance"] == 0
    assert flops["stages"]["render"] > 0
    assert flops["stages"]["radius/masks"] == 0        # element-wise only: not counted
    # Trained: 1x1 convs 3 -> h -> h -> 1 on every pixel of the 64x96 image.
    trained = copy.deepcopy(model)
    torch.nn.init.constant_(trained.net.radiance.conv3.weight, 0.01)
    h = trained.net.radiance.cfg.hidden
    assert count_flops(trained, inputs)["stages"]["radiance"] == 2 * (3 * h + h * h + h) * 64 * 96


def test_targets_ignore_the_render_track_and_never_name_an_absent_stage():
    from bokehlite.benchmarks.targets import costliest_stage
    results = fake_results()
    render = {"stages": {"backend": "pytorch", "threads": 2, "total_ms": 10.0, "stages": [
        {"name": "defocus net", "absent": True, "ms": None, "percent": None},
        {"name": "radiance", "absent": False, "ms": 2.0, "percent": 20.0},
        {"name": "render", "absent": False, "ms": 7.0, "percent": 70.0},
        {"name": "radius/masks", "absent": False, "ms": 1.0, "percent": 10.0}]}}
    assert costliest_stage(render)["name"] == "render"
    results["tracks"]["render"] = render
    assert evaluate_targets(results) == evaluate_targets(fake_results())
    assert not any(t.track == "render" for t in TARGETS)


def test_bench_photos_are_letterboxed_like_the_runtime_not_stretched(tmp_path):
    """A disc in a portrait photo stays a disc in the landscape model input."""
    from bokehlite.benchmarks.inputs import read_image
    photo = np.zeros((160, 80, 3), np.uint8)
    cv2.circle(photo, (40, 80), 20, (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "tall.png"), photo)
    x = read_image(tmp_path / "tall.png", (64, 96))
    assert x.shape == (64, 96, 3) and x.dtype == np.float32
    rows, cols = np.nonzero(x[:, 32:64, 0] > 0.5)        # the photo's own columns (box 32 wide)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(height - width) <= 1 and 14 <= height <= 18     # radius 20 * 0.4, round
