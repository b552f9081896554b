"""The paper-size checks (marked slow) leave the README's test command, not CI: the command
says at its end how many it left out and how to run them, and .ci/run runs them after it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collect(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_model_net.py", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_the_test_command_names_the_paper_size_checks_it_left_out():
    out = collect()
    assert re.search(r"\d+/\d+ tests collected \(1 deselected\)", out), out[-1000:]
    assert ("1 paper-size check(s) (marked slow) did not run: `.venv/bin/python -m pytest -m slow` runs them"
            in out), out[-1000:]


def test_asked_for_the_paper_size_checks_it_runs_them_and_says_nothing():
    out = collect("-m", "slow")
    assert re.search(r"\b1/\d+ tests collected", out), out[-1000:]
    assert "did not run" not in out


def test_ci_runs_the_paper_size_checks_after_the_readme_test_command():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip().startswith(".venv/bin/python -m pytest")]
    assert commands == [".venv/bin/python -m pytest", ".venv/bin/python -m pytest -m slow"]
