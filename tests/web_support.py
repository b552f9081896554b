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
