"""The web page beside bokeh-render: one model, one photo at the model's size, one thread count.

    bench-runtime --web ...                                   # rows after the suite's report
    python -m bokehlite.benchmarks.web MODEL.tflite --threads 2 --runs 5

The page renders in Debian's headless Chromium, driven by web/test/driver.mjs as the tests
drive it, through web/bench.html: LiteRT.js on threaded wasm (the server is bokeh-web's, so
the page is cross-origin isolated), then on WebGPU where the browser has it. bokeh-render's
renderer (BokehRenderer, or PortraitRenderer for a portrait model) renders the same photo in
this process with the same threads. Every row is the median of `runs` renders after a first
one (on WebGPU, WEBGPU_RUNS): the page's own split (fit, segmenter, model, blend), and page /
bokeh-render. WebGPU here is SwiftShader, which computes on the CPU: its times say nothing of a
phone's GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

WASM_TARGET = 2.0          # page on wasm / bokeh-render, at 1024x1536 (issue 33)
TARGET_SIZE = (1024, 1536)
PAGE_ACCELERATORS = ("wasm", "webgpu")
# Timed renders on WebGPU after the first: one. This machine's WebGPU is SwiftShader, a CPU
# (about two minutes a render at 1024x1536), whose times say nothing of a phone's GPU anyway.
WEBGPU_RUNS = 1


class WebBenchError(RuntimeError):
    """The page could not be timed: no browser, or the page failed (one line)."""


def adapter_name(adapter: dict | str) -> str:
    """The page's WebGPU adapter (its GPUAdapterInfo, which the JSON keeps whole) as one phrase,
    as the export's WebGPU check names it: "google swiftshader"."""
    if not isinstance(adapter, dict):
        return str(adapter)
    fields = (adapter.get(key) for key in ("vendor", "architecture", "device", "description"))
    return " ".join(str(value) for value in fields if value) or "unnamed"


def ramp(height: int, width: int) -> np.ndarray:
    """web/bench.mjs's ramp: disparity x / (width - 1), the same on every row."""
    row = np.arange(width, dtype=np.float32) / np.float32(max(width - 1, 1))
    return np.ascontiguousarray(np.broadcast_to(row, (height, width)))


def time_page(model: Path, photo: Path, accelerator: str, threads: int, runs: int, work: Path) -> dict:
    """The page's renders of `photo` on `accelerator`: medians of its timings after the first."""
    from ..export.webgpu_check import CHROMIUM, drive_page
    from ..runtime.web import make_server, url_of
    server = make_server(model.parent, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = (f"{url_of(server)}bench.html?model=models/{model.name}&accelerator={accelerator}"
               f"&threads={threads}&runs={runs}")
        result = drive_page({"browser": CHROMIUM, "timeout": 1800 * 1000, "steps": [
            {"goto": url}, {"waitState": ["ready"]}, {"setFiles": ["#photo", [str(photo)]]},
            {"waitState": ["done", "error"]}, {"eval": "window.bokehBench", "as": "bench"}]}, work)
    finally:
        server.shutdown()
        server.server_close()
    if not result["ok"]:
        raise WebBenchError(f"the page failed: {result['error'].splitlines()[0]}")
    bench = result["values"]["bench"]
    if bench.get("error"):
        raise WebBenchError(f"the page failed on {accelerator}: {bench['error'].splitlines()[0]}")
    info, renders = bench["info"], bench["renders"]
    med = lambda key: statistics.median(r[key] for r in renders)        # noqa: E731
    return {"runtime": f"page ({accelerator})", "ran_on": info["accelerator"],
            "segmenter_ran_on": info.get("segmenterAccelerator"), "fallback": info.get("fallback") or "",
            "threads": info["threads"], "first_ms": bench["first"]["totalMs"], "total_ms": med("totalMs"),
            "fit_ms": med("fitMs"), "segmenter_ms": med("segmenterMs"), "model_ms": med("modelMs"),
            "blend_ms": med("blendMs"), "compile_ms": info.get("compileMs"), "adapter": info.get("adapter")}


def time_python(model: Path, photo: Path, threads: int, runs: int) -> dict:
    """bokeh-render's renderer on the same photo in this process: the median whole render."""
    from ..runtime.photo import read_photo
    from ..runtime.portrait import PortraitRenderer
    from ..runtime.renderer import BokehRenderer
    from ..runtime.sidecar import read_sidecar
    pixels = read_photo(photo).pixels
    if read_sidecar(model).get("track") == "portrait":
        renderer, kwargs = PortraitRenderer(model, threads=threads, backend="litert"), {}
    else:
        renderer = BokehRenderer(model, threads=threads, backend="litert")
        kwargs = {"disparity": ramp(*pixels.shape[:2])} if renderer.contract.depth_guided else {}
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        renderer.render(pixels, **kwargs)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"runtime": "bokeh-render", "ran_on": "cpu", "segmenter_ran_on": None, "fallback": "",
            "threads": threads, "first_ms": times[0], "total_ms": statistics.median(times[1:]),
            "fit_ms": None, "segmenter_ms": None, "model_ms": None, "blend_ms": None, "compile_ms": None}


def compare(model: Path, threads: int, runs: int = 5, progress=None) -> list[dict]:
    """Rows for `model`: bokeh-render, the page on wasm, the page on WebGPU (or why not), on a
    photo of the model's own size. WebBenchError without a browser."""
    from ..export.webgpu_check import missing_browser
    from ..runtime.sidecar import read_sidecar
    from .native import make_photo
    if (why := missing_browser()):
        raise WebBenchError(f"--web needs the browser: {why}")
    size = tuple(read_sidecar(model)["inputs"][0]["shape"][1:3])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        photo = make_photo(size, work)
        timers = [("bokeh-render", runs, lambda n: time_python(model, photo, threads, n))]
        timers += [(f"page ({a})", WEBGPU_RUNS if a == "webgpu" else runs,
                    lambda n, a=a: time_page(model, photo, a, threads, n, work)) for a in PAGE_ACCELERATORS]
        for name, n, timer in timers:
            if progress:
                progress(f"timing {name} on {model.name}, {size[0]}x{size[1]} photo, {threads} thread(s), "
                         f"{n} render(s) after the first")
            try:
                row = timer(n)
            except WebBenchError as exc:
                row = {"runtime": name, "error": str(exc)}
            rows.append({"model": str(model), "photo": f"{size[0]}x{size[1]}", "runs": n, **row})
    python = rows[0]["total_ms"]
    for row in rows[1:]:
        if "total_ms" in row:
            row["vs_bokeh_render"] = row["total_ms"] / python
    return rows


def target(rows: list[dict]) -> dict | None:
    """The page on wasm within WASM_TARGET of bokeh-render at 1024x1536, where a row measures it."""
    for row in rows:
        if row["runtime"] == "page (wasm)" and row["photo"] == "x".join(map(str, TARGET_SIZE)) and "total_ms" in row:
            ratio = row["vs_bokeh_render"]
            return {"ratio": ratio, "target": WASM_TARGET, "threads": row["threads"], "met": ratio <= WASM_TARGET}
    return None


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def to_text(rows: list[dict]) -> str:
    header = ["model", "photo", "runtime", "ran on", "threads", "median ms", "first ms", "model ms", "x bokeh-render"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([Path(r["model"]).name, r["photo"], r["runtime"], r["error"], "", "", "", "", ""])
            continue
        ran = r["ran_on"] + (f" (segmenter {r['segmenter_ran_on']})" if r.get("segmenter_ran_on") not in
                             (None, r["ran_on"]) else "")
        ratio = f"{r['vs_bokeh_render']:.2f}" if "vs_bokeh_render" in r else "1"
        body.append([Path(r["model"]).name, r["photo"], r["runtime"], ran, str(r["threads"]), _ms(r["total_ms"]),
                     _ms(r["first_ms"]), _ms(r["model_ms"]), ratio])
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()      # noqa: E731
    title = "the web page beside bokeh-render (median of the renders after the first)"
    lines = [title, "=" * len(title), fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)]
    lines += [f"* {r['runtime']} fell back: {r['fallback']}" for r in rows if r.get("fallback")]
    lines += [f"* WebGPU adapter: {adapter_name(r['adapter'])}" for r in rows
              if r.get("ran_on") == "webgpu" and r.get("adapter")]
    t = target(rows)
    if t is not None:
        lines.append(f"* target: the page on wasm within {t['target']:g}x of bokeh-render at "
                     f"{TARGET_SIZE[0]}x{TARGET_SIZE[1]}: {t['ratio']:.2f}x ({'met' if t['met'] else 'missed'})")
    return "\n".join(lines) + "\n"


def add_web(results: dict, settings, progress=None) -> str:
    """bench-runtime --web: rows for the gpu track's model (else the first track's) at the
    suite's size and each of its thread counts; kept in results["web"]; the text table."""
    from ..contract import artifact_stem, portrait_stem
    from .suite import BenchError
    track = "gpu" if "gpu" in settings.tracks else settings.tracks[0]
    stem = portrait_stem(settings.size) if track == "portrait" else artifact_stem(track, settings.size)
    model = Path(settings.artifacts) / f"{stem}.tflite"
    if not model.is_file():
        raise BenchError(f"--web: no model to time in the page ({model})")
    rows = []
    try:
        for threads in settings.thread_counts():
            rows += compare(model, threads, runs=min(settings.protocol.runs, 3), progress=progress)
    except (WebBenchError, OSError) as exc:
        raise BenchError(f"--web: {exc}") from None
    results["web"] = {"rows": rows, "target": target(rows)}
    return to_text(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bokehlite.benchmarks.web",
                                description="Time the web page beside bokeh-render on one model.")
    p.add_argument("model", type=Path, help="an exported .tflite (its folder is served)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="write the rows to FILE")
    args = p.parse_args(argv)
    if not args.model.is_file():
        print(f"{p.prog}: error: {args.model}: no such model", file=sys.stderr)
        return 2
    try:
        rows = compare(args.model, args.threads, args.runs, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except WebBenchError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(to_text(rows))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "target": target(rows)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
