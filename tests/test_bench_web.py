"""bench-runtime --web (benchmarks/web.py): the page's render time in headless Chromium beside
bokeh-render's, on the same model, photo and threads. Times are never asserted: the rows,
what ran where, and the arithmetic of the target are."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from web_support import require_browser


@pytest.fixture(scope="module")
def timed(tiny_export):
    """(model, its report, compare's rows): one run of the three timers, shared by this file."""
    require_browser()
    from bokehlite.benchmarks.web import compare

    model, report = tiny_export("gpu")
    return model, report, compare(model, threads=2, runs=1)


def test_the_page_and_bokeh_render_are_timed_on_one_model_with_what_ran_where(timed):
    from bokehlite.benchmarks.web import to_text

    model, report, rows = timed
    assert [r["runtime"] for r in rows] == ["bokeh-render", "page (wasm)", "page (webgpu)"]
    assert all("error" not in r for r in rows), rows
    python, wasm, webgpu = rows
    h, w = report["inputs"][0]["shape"][1:3]
    assert {r["photo"] for r in rows} == {f"{h}x{w}"}
    assert wasm["ran_on"] == "wasm" and wasm["threads"] == 2 and wasm["fallback"] == ""
    assert webgpu["ran_on"] == "webgpu", webgpu
    for row in (wasm, webgpu):
        assert 0 < row["model_ms"] <= row["total_ms"] and row["fit_ms"] >= 0 and row["blend_ms"] >= 0
        assert row["vs_bokeh_render"] == pytest.approx(row["total_ms"] / python["total_ms"])
    text = to_text(rows)
    assert "page (wasm)" in text and "page (webgpu)" in text and model.name in text
    # The adapter by name, as the export's WebGPU check names it ("google swiftshader"), not
    # as the page's GPUAdapterInfo that the JSON keeps.
    named = [line for line in text.splitlines() if line.startswith("* WebGPU adapter: ")]
    assert len(named) == 1 and "{" not in named[0] and webgpu["adapter"]["vendor"] in named[0], named
    assert "target" not in text            # 128x192: the 1024x1536 target is not measured here


def test_the_report_shows_the_rows_and_a_loaded_machine_states_no_ratio(timed):
    import copy

    from bokehlite.benchmarks.report import web_section
    from bokehlite.benchmarks.targets import withhold_ratios

    model, _, rows = timed
    results = {"tracks": {}, "web": {"rows": copy.deepcopy(rows), "target": None}}
    section = web_section(results)
    assert [r[2] for r in section.rows] == ["bokeh-render", "page (wasm)", "page (webgpu)"]
    adapter = [note for note in section.notes if note.startswith("WebGPU adapter: ")]
    assert len(adapter) == 1 and "{" not in adapter[0] and rows[2]["adapter"]["vendor"] in adapter[0], adapter
    assert section.rows[1][-1] == f"{rows[1]['vs_bokeh_render']:.2f}"
    # One core's worth of other work on 2 cores is over the load rule (0.5 a core): no ratio.
    results["machine"] = {"load_avg_before": 2.0, "load_avg_after": 2.0, "cores": 2}
    results["protocol"] = {"threads": [2]}
    withhold_ratios(results)
    assert results["load"]["loaded"]
    section = web_section(results)
    assert all(r[-1].startswith("machine loaded") for r in section.rows[1:]), section.rows
    assert section.rows[1][6] == f"{rows[1]['total_ms']:.0f}"           # the latencies stay


def test_the_render_track_gets_the_same_disparity_ramp_in_the_page_and_in_bokeh_render():
    from bokehlite.benchmarks.web import ramp

    d = ramp(3, 5)
    assert d.dtype == np.float32 and d.shape == (3, 5)
    assert d[0].tolist() == d[2].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]        # web/bench.mjs: x / (width - 1)


def test_the_wasm_target_is_judged_at_1024x1536_only():
    from bokehlite.benchmarks.web import target

    def rows(photo, ratio):
        return [{"runtime": "bokeh-render", "photo": photo, "total_ms": 100.0},
                {"runtime": "page (wasm)", "photo": photo, "total_ms": 100.0 * ratio, "vs_bokeh_render": ratio,
                 "threads": 2}]
    assert target(rows("128x192", 1.5)) is None
    assert target(rows("1024x1536", 2.5)) == {"ratio": 2.5, "target": 2.0, "threads": 2, "met": False}
    assert target(rows("1024x1536", 1.9))["met"] is True


def test_without_the_browser_or_the_model_it_says_so_in_one_line_and_exits_2(tiny_export, tmp_path):
    model, _ = tiny_export("gpu")
    no_browser = {"BOKEHLITE_CHROMIUM": str(tmp_path / "no-chromium")}
    for command, env, says in (
            (["-m", "bokehlite.benchmarks.web", str(tmp_path / "none.tflite")], {}, "no such model"),
            (["-m", "bokehlite.benchmarks.web", str(model)], no_browser, "no Chromium at"),
            (["-m", "bokehlite.benchmarks.cli", "--web", "--track", "gpu"], no_browser, "--web needs the browser")):
        proc = subprocess.run([sys.executable, *command, "--runs", "1"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr, proc.stderr
