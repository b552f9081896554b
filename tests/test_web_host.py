"""The page's host steps are libbokeh's host.c compiled to WebAssembly (web/host/build.sh), held
to the contract's golden vectors per function, with the tolerances the vectors state
(docs/contract.md), as android/native/tests/host_golden.c holds the native build.

The build is committed (web/host/bokeh_host.{mjs,wasm}) so that bokeh-web needs no compiler;
the staleness test rebuilds it with Debian's emscripten and fails when host.c has changed
since (run web/host/build.sh)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from web_support import ROOT, WEB

GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "host_steps.json"
FUNCTIONS = list(json.loads(GOLDEN.read_text())["tolerance"])


def need(tool: str, package: str):
    if shutil.which(tool) is None:
        if os.environ.get("BOKEHLITE_REQUIRE_BROWSER"):
            pytest.fail(f"BOKEHLITE_REQUIRE_BROWSER is set, but {tool} is missing (apt-get install {package})")
        pytest.skip(f"{tool} is missing (apt-get install {package})")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_wasm_host_steps_match_the_golden_vectors(function):
    need("node", "nodejs")
    proc = subprocess.run(["node", str(WEB / "test" / "host_golden.mjs"), str(GOLDEN), function],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{function}: ") and " 0 failed" in summary, summary


def test_every_golden_function_has_a_wasm_check():
    text = (WEB / "test" / "host_golden.mjs").read_text()
    assert all(f"case '{f}'" in text for f in FUNCTIONS)


def test_committed_wasm_is_what_host_c_compiles_to(tmp_path):
    need("emcc", "emscripten")
    proc = subprocess.run([str(WEB / "host" / "build.sh"), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("bokeh_host.wasm", "bokeh_host.mjs"):
        assert (tmp_path / name).read_bytes() == (WEB / "host" / name).read_bytes(), (
            f"web/host/{name} is stale: android/native/src/host.c (or web/host/bokeh_host_web.c) changed since it "
            "was built; run web/host/build.sh")
