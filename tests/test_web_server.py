"""bokeh-web (runtime/web.py): what it serves, what it refuses, and its command line.

No browser here: plain HTTP against the server, on a copy of web/'s layout (so these run
without `npm ci`), and once on the real web/ when LiteRT.js is installed there."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time

import pytest

from web_support import WEB

ISOLATION = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp"}
TFL3 = b"\x18\x00\x00\x00TFL3" + b"\x00" * 64


def get(base: str, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request with the path sent exactly as given (no client-side normalising of `..`)."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


@pytest.fixture
def site(tmp_path):
    """A web/ with the real layout (fake LiteRT.js and Playwright files) and a models folder
    with two models, a sidecar, an ONNX file, a hidden file and links in and out."""
    web = tmp_path / "web"
    files = {"index.html": "<!doctype html>page", "app.mjs": "//", "style.css": "/**/", "package.json": "{}",
             "package-lock.json": "{}", "test/driver.mjs": "//", "host/bokeh_host.mjs": "//",
             "host/bokeh_host.wasm": "\0asm", "host/build.sh": "#!", "host/bokeh_host_web.c": "int x;",
             "node_modules/@litertjs/core/dist/index.js": "//", "node_modules/@litertjs/core/package.json": "{}",
             "node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm": "\0asm",
             "node_modules/@litertjs/core/wasm/litert_wasm_internal.js": "//",
             "node_modules/@litertjs/wasm-utils/dist/index.js": "//",
             "node_modules/playwright-core/package.json": "{}", "node_modules/playwright-core/index.js": "//",
             ".secret.mjs": "//"}
    for name, text in files.items():
        (web / name).parent.mkdir(parents=True, exist_ok=True)
        (web / name).write_text(text)
    models = tmp_path / "models"
    models.mkdir()
    (models / "bokeh_gpu_128x192.tflite").write_bytes(TFL3)
    (models / "bokeh_gpu_128x192.json").write_text(json.dumps({"track": "gpu", "input_size": [128, 192]}))
    (models / "bokeh_render_64x96.tflite").write_bytes(TFL3)
    (models / "bokeh_portrait_segmenter.tflite").write_bytes(TFL3)
    (models / "bokeh_gpu_128x192.onnx").write_bytes(b"onnx")
    (models / ".hidden.tflite").write_bytes(TFL3)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.tflite").write_bytes(b"secret")
    (outside / "secret.json").write_text("{}")
    (models / "link_out.tflite").symlink_to(outside / "secret.tflite")
    (models / "folder_out").symlink_to(outside, target_is_directory=True)
    (models / "link_in.tflite").symlink_to(models / "bokeh_render_64x96.tflite")
    (web / "escape.mjs").symlink_to(outside / "secret.json")
    return web, models, outside


@pytest.fixture
def base(site):
    from bokehlite.runtime.web import make_server, url_of
    import threading

    web, models, _ = site
    server = make_server(models, "127.0.0.1", 0, web=web)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url_of(server)
    server.shutdown()
    server.server_close()


def test_serves_the_page_litert_and_the_models_with_isolation_headers(base):
    for path, ctype in [("/", "text/html"), ("/app.mjs", "text/javascript"), ("/style.css", "text/css"),
                        ("/host/bokeh_host.wasm", "application/wasm"), ("/host/bokeh_host.mjs", "text/javascript"),
                        ("/node_modules/@litertjs/core/dist/index.js", "text/javascript"),
                        ("/node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm", "application/wasm"),
                        ("/node_modules/@litertjs/wasm-utils/dist/index.js", "text/javascript"),
                        ("/models/bokeh_gpu_128x192.tflite", "application/octet-stream"),
                        ("/models/bokeh_gpu_128x192.json", "application/json"),
                        ("/models/bokeh_portrait_segmenter.tflite", "application/octet-stream"),
                        ("/models/link_in.tflite", "application/octet-stream")]:
        status, headers, _ = get(base, path)
        assert status == 200, path
        assert headers["content-type"].startswith(ctype), path
        for key, value in ISOLATION.items():
            assert headers[key] == value, (path, key)
    status, headers, body = get(base, "/", "HEAD")
    assert status == 200 and body == b"" and headers["cross-origin-embedder-policy"] == "require-corp"


def test_model_list_names_the_bokeh_models_only(base):
    status, _, body = get(base, "/models/index.json")
    assert status == 200
    listed = {m["file"]: m for m in json.loads(body)["models"]}
    # Not the segmenter (its portrait model names it), not hidden files, not links that lead out.
    assert set(listed) == {"bokeh_gpu_128x192.tflite", "bokeh_render_64x96.tflite", "link_in.tflite"}
    assert listed["bokeh_gpu_128x192.tflite"]["track"] == "gpu"
    assert listed["bokeh_gpu_128x192.tflite"]["sidecar"] == "bokeh_gpu_128x192.json"
    assert listed["bokeh_render_64x96.tflite"] == {"file": "bokeh_render_64x96.tflite", "track": "render",
                                                   "input_size": [64, 96], "sidecar": None, "size_bytes": len(TFL3)}


@pytest.mark.parametrize("path", [
    "/../models/bokeh_gpu_128x192.tflite", "/models/../index.html", "/models/../../outside/secret.tflite",
    "/models/%2e%2e/%2e%2e/outside/secret.tflite", "/models/..%2f..%2foutside%2fsecret.tflite",
    "/models/%2E%2E%2Fmodels%2Fbokeh_gpu_128x192.tflite", "/%2e%2e/web/index.html", "/./index.html",
    "//etc/passwd", "/models//bokeh_gpu_128x192.tflite", "/models/link_out.tflite", "/models/folder_out/secret.tflite",
    "/models/folder_out", "/escape.mjs", "/models/bokeh_gpu_128x192.onnx", "/models/.hidden.tflite", "/models/",
    "/models", "/package.json", "/package-lock.json", "/test/driver.mjs", "/host/build.sh", "/host/bokeh_host_web.c",
    "/node_modules/playwright-core/index.js", "/node_modules/playwright-core/package.json",
    "/node_modules/@litertjs/core/package.json", "/node_modules/", "/.secret.mjs", "/host/", "/web/index.html",
    "/models/bokeh_gpu_128x192.tflite%00.json", "/models\\..\\index.html", "/%ff%fe.mjs",
])
def test_nothing_outside_the_served_folders(base, path):
    status, headers, body = get(base, path)
    assert status == 404, f"{path} answered {status}"
    assert b"secret" not in body
    assert headers["cross-origin-opener-policy"] == "same-origin"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_read_only(base, method):
    status, headers, _ = get(base, "/models/bokeh_gpu_128x192.tflite", method)
    assert status == 405 and headers["allow"] == "GET, HEAD"


def run_cli(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bokehlite.runtime.web", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {proc.stderr!r}"
    return lines[0]


def test_bad_models_folder_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.tflite").write_bytes(TFL3)
    for args, words in [(["--models", tmp_path / "nope"], "no such folder"),
                        (["--models", tmp_path / "file.tflite"], "not a folder"),
                        (["--models", tmp_path / "empty"], "holds no bokeh model"),
                        ([], "--models"),
                        (["--models", tmp_path / "empty", "--port", "70000"], "--port")]:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert words in one_line(proc)
        assert proc.stdout == ""


def test_missing_litert_says_npm_ci(site, tmp_path):
    from bokehlite.runtime.web import SetupError, make_server

    web, models, _ = site
    import shutil
    shutil.rmtree(web / "node_modules" / "@litertjs")
    with pytest.raises(SetupError, match="npm ci --prefix"):
        make_server(models, "127.0.0.1", 0, web=web)


def test_port_in_use_is_one_line(site):
    web, models, _ = site
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        from bokehlite.runtime.web import SetupError, make_server
        with pytest.raises(SetupError, match=f"port {port} on 127.0.0.1 is in use"):
            make_server(models, "127.0.0.1", port, web=web)


def start_cli(*args):
    proc = subprocess.Popen([sys.executable, "-m", "bokehlite.runtime.web", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.strip())
        if "serving" in line:
            break
    return proc, lines


@pytest.mark.skipif(not (WEB / "node_modules" / "@litertjs").is_dir(), reason="needs `npm ci --prefix web`")
def test_cli_binds_localhost_and_says_where(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "bokeh_gpu_128x192.tflite").write_bytes(TFL3)
    proc, lines = start_cli("--models", folder, "--port", "0")
    try:
        assert len(lines) == 1 and lines[0].startswith("bokeh-web: serving 1 model from"), lines
        url = lines[0].split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = get(url, "/")
        assert status == 200 and b"bokehlite" in body and headers["cross-origin-opener-policy"] == "same-origin"
        # The real web/: its test driver and Playwright are not served.
        assert get(url, "/test/driver.mjs")[0] == 404
        assert get(url, "/node_modules/playwright-core/package.json")[0] == 404
        assert get(url, "/node_modules/@litertjs/core/wasm/litert_wasm_threaded_internal.wasm")[0] == 200
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.skipif(not (WEB / "node_modules" / "@litertjs").is_dir(), reason="needs `npm ci --prefix web`")
def test_cli_on_every_interface_warns(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "bokeh_gpu_128x192.tflite").write_bytes(TFL3)
    proc, lines = start_cli("--models", folder, "--port", "0", "--host", "0.0.0.0")
    try:
        assert len(lines) == 2, lines
        assert lines[0].startswith("bokeh-web: warning: listening on 0.0.0.0: anyone who can reach this machine")
        assert "secure context" in lines[0]
    finally:
        proc.terminate()
        proc.wait(30)


def test_bokeh_web_loads_no_heavy_package():
    code = ("import sys\nfrom bokehlite.runtime.web import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'onnx', 'ai_edge_litert'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr
