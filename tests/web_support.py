"""What the web tests share: serving a models folder with bokeh-web, driving the page in a real
Chromium (web/test/driver.mjs: npm's playwright-core on Debian's /usr/bin/chromium), and the
folders of tiny exports the page renders.

Without Chromium, Node or `npm ci --prefix web`, the browser tests skip, unless
BOKEHLITE_REQUIRE_BROWSER is set (CI sets it: there a missing browser is a broken install)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from native_support import OFF_GATE, PSNR_GATE, agreement, read

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
DRIVER = WEB / "test" / "driver.mjs"
CHROMIUM = os.environ.get("BOKEHLITE_CHROMIUM", "/usr/bin/chromium")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "no node (apt-get install nodejs)"
    if not (WEB / "node_modules" / "playwright-core").is_dir() or not (WEB / "node_modules" / "@litertjs").is_dir():
        return "web/node_modules is missing: run `npm ci --prefix web`"
    return None


def require_browser() -> None:
    why = missing_browser()
    if why:
        if os.environ.get("BOKEHLITE_REQUIRE_BROWSER"):
            pytest.fail(f"BOKEHLITE_REQUIRE_BROWSER is set, but: {why}")
        pytest.skip(why)


@contextlib.contextmanager
def serve(models: Path):
    """bokeh-web on 127.0.0.1 and a free port, in this process: yields its base URL."""
    from bokehlite.runtime.web import make_server, url_of

    server = make_server(models, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def drive(steps: list[dict], work: Path, *, timeout: float = 600, **plan) -> dict:
    """Run a plan of page steps in headless Chromium; the driver's result (see driver.mjs)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"plan_{len(list(work.glob('plan_*.json')))}.json"
    path.write_text(json.dumps({"browser": CHROMIUM, "timeout": 240000, **plan, "steps": steps}))
    proc = subprocess.run(["node", str(DRIVER), str(path)], capture_output=True, text=True, timeout=timeout,
                          cwd=WEB)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"the driver gave no result (rc {proc.returncode}): {proc.stderr[-2000:]}") from None
    result["returncode"] = proc.returncode
    return result


def assert_ran(result: dict) -> dict:
    """The plan ran to its end, and the page raised nothing uncaught; its values."""
    assert result["ok"], f"the page did not get through the plan: {result['error']}\n" + "\n".join(result["console"][-15:])
    assert result["pageErrors"] == [], result["pageErrors"]
    return result["values"]


def local_only(result: dict, base: str) -> list[str]:
    """Requests the page made anywhere but the bokeh-web it was opened from."""
    return [u for u in result["requests"] if not (u.startswith(base) or u.startswith(("blob:", "data:")))]


def copy_models(folder: Path, *files: Path) -> Path:
    """A models folder holding these .tflite files, each with its sidecar .json when it has one."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, folder / f.name)
        sidecar = f.with_suffix(".json")
        if sidecar.is_file():
            shutil.copy2(sidecar, folder / sidecar.name)
    return folder


def without_shader_breaks(model: Path, folder: Path) -> Path:
    """A copy of an exported float16 model in `folder` with its shader breaks taken out of the
    graph (export/gpu_rewrite.py: the 1x1 identity convolutions in the compositing chain):
    the graph as exported before that rewrite, which exceeds WebGPU's default limit on sampled
    textures. Its sidecar comes along with the new file's sha256 and size, and a portrait
    model's segmenter with it. Returns the new model's path."""
    import hashlib

    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    from bokehlite.export.tflite_inspect import TfliteModel

    lite = TfliteModel(model)
    tree, graph = lite.model, lite.graph

    def values(t: int) -> np.ndarray | None:
        producer = lite.producers.get(t)
        if producer is not None and producer.name == "DEQUANTIZE":
            t = producer.inputs[0]
        data = tree.buffers[lite.tensor(t).buffer].data
        if data is None or not len(data):
            return None
        dtype = np.float16 if lite.dtype(t) == "float16" else np.float32
        return np.frombuffer(bytes(bytearray(data)), dtype).reshape(lite.shape(t))

    dropped, rename = set(), {}
    for op in lite.ops:
        if op.name != "CONV_2D":
            continue
        weights = values(op.inputs[1])
        if weights is None or weights.shape[1:3] != (1, 1) or weights.shape[0] != weights.shape[3]:
            continue
        if np.array_equal(weights[:, 0, 0, :], np.eye(weights.shape[0])):
            dropped.add(op.index)
            rename[op.outputs[0]] = op.inputs[0]
    assert dropped, f"{model.name} has no shader break"
    graph.operators = [o for i, o in enumerate(graph.operators) if i not in dropped]
    for o in graph.operators:
        o.inputs = np.array([rename.get(int(t), int(t)) for t in o.inputs], np.int32)
    graph.outputs = np.array([rename.get(int(t), int(t)) for t in graph.outputs], np.int32)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    data = bytes(builder.Output())
    assert schema.ModelT.InitFromPackedBuf(data, 0).subgraphs[0].operators is not None
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / model.name
    out.write_bytes(data)
    sidecar = json.loads(model.with_suffix(".json").read_text())
    sidecar.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    if "segmenter" in sidecar:
        shutil.copy2(model.parent / sidecar["segmenter"]["file"], folder / sidecar["segmenter"]["file"])
    return out


def page_url(base: str, model: str, accelerator: str) -> str:
    """The page on `model` (a file of the served folder), on `accelerator`."""
    return f"{base}?model={model}&accelerator={accelerator}"


def finish(result: dict, base: str) -> dict:
    """The plan's values, once it ran through and no request left the server."""
    values = assert_ran(result)
    assert local_only(result, base) == [], "requests left bokeh-web"
    return values


def check_parity(web_png: Path, py_png: Path, what: str) -> float:
    """The page's saved PNG against bokeh-render's output, at the native gate."""
    web, py = read(web_png), read(py_png)
    assert web.ndim == 3 and web.shape[2] == 4 and (web[..., 3] == 255).all(), f"{what}: {web.shape}"
    web = web[..., :3] if py.ndim == 3 else web[..., 0]
    if py.ndim == 2:
        assert (read(web_png)[..., 0] == read(web_png)[..., 1]).all(), f"{what}: a grey photo came back in colour"
    psnr, off = agreement(py, web)
    print(f"parity: {what}: {psnr:.1f} dB, {off:.4%} of values off by more than 1")
    assert psnr >= PSNR_GATE and off <= OFF_GATE, f"{what}: {psnr:.2f} dB, {off:.4%} off"
    return psnr
