"""bench-runtime --large-photo: bokeh-render's peak RSS on one large generated JPEG."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bokehlite.benchmarks.large_photo import measure_large_photo, write_large_photo
from bokehlite.benchmarks.report import large_photo_section
from bokehlite.benchmarks.targets import evaluate_targets
from fixtures.bench import run_bench

from test_bench_units import by_id, fake_track


def test_large_photo_is_a_deterministic_jpeg_of_the_asked_size_with_detail(tmp_path):
    a = cv2.imread(str(write_large_photo(tmp_path / "a.jpg", (300, 500))))
    b = cv2.imread(str(write_large_photo(tmp_path / "b.jpg", (300, 500))))
    assert a.shape == (300, 500, 3) and np.array_equal(a, b)
    assert a.std() > 20                      # a scene, not a flat frame the renderer cannot blur


def test_large_photo_runs_bokeh_render_in_a_fresh_process_and_reports_its_peak(tmp_path, tiny_export):
    model, _ = tiny_export("gpu")
    out = measure_large_photo(model, tmp_path, threads=1, size=(600, 900))
    assert out["size"] == [600, 900] and out["megapixels"] == pytest.approx(0.54)
    assert out["backend"] == "litert" and out["threads"] == 1
    assert 30 < out["peak_rss_mb"] < 4000 and out["seconds"] > 0
    rendered = cv2.imread(str(tmp_path / "large_out" / "large_photo.jpg"))
    assert rendered.shape == (600, 900, 3)


def test_large_photo_errors_say_what_bokeh_render_said(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="exited 2: bokeh-render: error: .*bad"):
        measure_large_photo(bad, tmp_path, threads=1, size=(64, 96))


def results_with_photo(peak_mb, megapixels=48.0):
    track, gemm = fake_track()
    if peak_mb is not None:
        track["large_photo"] = {"size": [6000, 8000], "megapixels": megapixels, "backend": "litert",
                                "threads": 2, "seconds": 4.0, "peak_rss_mb": peak_mb, "method": "test"}
    return {"device": "cpu", "machine": {"cores": 2}, "tracks": {"gpu": track}, "gemm_peak": gemm}


def test_large_photo_target_is_judged_on_48_megapixels_only():
    target = "gpu-large-photo-peak-rss"
    assert by_id(evaluate_targets(results_with_photo(955.0)))[target]["met"] is True
    missed = by_id(evaluate_targets(results_with_photo(1506.0)))[target]
    assert missed["met"] is False and missed["value"] == 1506.0
    for results in (results_with_photo(None), results_with_photo(500.0, megapixels=12.0)):
        row = by_id(evaluate_targets(results))[target]
        assert row["met"] is None and "--large-photo" in row["note"]


def test_large_photo_section_shows_the_photo_and_its_peak():
    section = large_photo_section(results_with_photo(955.0))
    assert section.rows == [["gpu", "6000x8000", "48", "litert", "2", "4.00", "955"]]      # HxW, as everywhere


def test_bench_runtime_large_photo_reports_the_row_and_leaves_the_48_mp_target_unjudged(tiny_export, tmp_path):
    tflite, _ = tiny_export("gpu")
    proc, results = run_bench(tmp_path, "--track", "gpu", "--tiny", "--artifacts", str(tflite.parent),
                              "--size", "128x192", "--runs", "2", "--min-secs", "0", "--warmup-secs", "0",
                              "--threads", "1", "--gemm-size", "256", "--large-photo", "300x400")
    photo = results["tracks"]["gpu"]["large_photo"]
    assert photo["size"] == [300, 400] and photo["threads"] == 1 and photo["peak_rss_mb"] > 30
    assert "Large photo (bokeh-render)" in proc.stdout and "300x400" in proc.stdout      # HxW, as given
    row = by_id(results["targets"])["gpu-large-photo-peak-rss"]
    assert row["met"] is None and "not evaluated" in row["note"]     # a tiny model, a small photo
    assert "large photo 300x400" in proc.stderr and "generated 300x400 (HxW) JPEG" in proc.stderr
