"""The contract's golden vectors: the Python reference computes them, libbokeh's host steps match them.

tests/golden_vectors.py writes tests/fixtures/golden/host_steps.json from runtime/fit.py,
blend.py and depth.py; android/native/tests/host_golden.c (ctest, one test per host
function) checks each `bk_*` function against it with the tolerance the file states. A drift
is caught at the function that drifted, in seconds, instead of end to end at 50 dB.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

import golden_vectors
from bokehlite import contract
from native_support import ROOT

FUNCTIONS = list(golden_vectors.TOLERANCE)


def test_the_committed_vectors_are_what_the_python_reference_computes_today():
    """A rule change, or a bump of the pinned OpenCV that moves a rule, fails here: regenerate
    on purpose (python tests/golden_vectors.py), and the C test then says whether libbokeh agrees."""
    committed = json.loads(golden_vectors.GOLDEN.read_text())
    today = json.loads(golden_vectors.text(golden_vectors.document()))
    assert committed["opencv"] == today["opencv"], "OpenCV changed: regenerate and check the C test"
    for name in FUNCTIONS:
        assert committed["cases"][name] == today["cases"][name], f"the Python reference's {name} moved"
    assert committed == today


@pytest.mark.parametrize("function", FUNCTIONS)
def test_libbokeh_host_step_matches_the_golden_vectors(build, function):
    proc = subprocess.run(["ctest", "--test-dir", str(build), "-R", f"^host\\.{function}$", "--output-on-failure"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 tests passed" in proc.stdout or "100% tests passed" in proc.stdout, proc.stdout


def test_the_c_test_fails_when_one_value_drifts(build, tmp_path):
    doc = json.loads(golden_vectors.GOLDEN.read_text())
    doc["cases"]["resize_u8"][2]["output"][5] ^= 1            # one 8-bit value off by one
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    proc = subprocess.run([str(build / "bokeh-host-golden"), str(tampered), "resize_u8"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "resize_u8 case 2:" in proc.stdout and "FAIL" in proc.stdout, proc.stdout
    proc = subprocess.run([str(build / "bokeh-host-golden"), str(tampered), "no_such_step"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "no cases" in proc.stderr


def test_every_function_has_cases_and_names_a_rule_that_the_contract_page_defines():
    doc = json.loads(golden_vectors.GOLDEN.read_text())
    page = (ROOT / "docs" / "contract.md").read_text()
    defined = set(re.findall(r"^\*\*(R\d+)\b", page, re.M))
    for name in FUNCTIONS:
        assert doc["cases"][name], name
        assert doc["rules"][name] in defined, (name, doc["rules"][name])
    every = {r for rules in contract.RULES.values() for r in rules}
    assert every <= defined, sorted(every - defined)
    assert doc["host"] == contract.host_parameters()
