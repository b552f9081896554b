"""The docs match the code: flags exist, example commands parse, links resolve, and the
measured figures carry the header that says where they come from."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMMANDS = ("export-tflite", "bokeh-render", "bench-runtime", "train-bokeh", "bokeh-web")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "android" / "README.md"]
# The command each page is the manual of: a flag on a line that names no command is its.
PAGE_COMMAND = {"training.md": "train-bokeh", "export.md": "export-tflite", "runtime.md": "bokeh-render",
                "portrait.md": "bokeh-render", "gpu.md": "bokeh-render", "bench-runtime.md": "bench-runtime",
                "web.md": "bokeh-web"}
# Flags of other tools that the docs quote (pip, apt, torchrun, benchmark_model, cmake, python).
EXTERNAL = {"--no-deps", "--no-install-recommends", "--nproc_per_node", "--use_gpu", "--build", "--help",
            "--count", "--size", "--seed", "--prefix", "--enable-unsafe-webgpu"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
GENERATED = ROOT / "docs" / "benchmarks.md"


@cache
def known_flags(command: str) -> frozenset[str]:
    out = subprocess.run([str(BIN / command), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return frozenset(FLAG.findall(out.stdout))


def pages() -> list[Path]:
    return [p for p in DOCS if p.is_file() and p != GENERATED]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_flag_the_docs_mention_is_known_to_its_command(page):
    unknown = []
    own = PAGE_COMMAND.get(page.name)
    for number, line in enumerate(page.read_text().splitlines(), 1):
        named = [c for c in COMMANDS if c in line]
        allowed = set(EXTERNAL)
        for command in (named + [own] if own else named) or list(COMMANDS):
            allowed |= known_flags(command)
        if "bokeh-native" in line or page.parent.name == "android":
            continue                      # the native CLI's flags are checked by its own tests
        unknown += [f"{page.name}:{number}: {flag}" for flag in FLAG.findall(line)
                    if flag.split("=")[0] not in allowed]
    assert not unknown, unknown


def bash_examples(page: Path) -> list[list[str]]:
    """Each command line of the page's ```bash blocks whose first word is one of ours."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and Path(words[0]).name in COMMANDS:
                commands.append([Path(words[0]).name, *words[1:]])
    return commands


EXAMPLES = [(page, words) for page in pages() for words in bash_examples(page)]


@pytest.mark.parametrize("page, words", EXAMPLES, ids=[f"{p.name}: {' '.join(w)[:60]}" for p, w in EXAMPLES])
def test_every_example_command_parses(page, words, tmp_path):
    """Run with --help appended: argparse checks every option and value before it, and the
    work is never started."""
    out = subprocess.run([str(BIN / words[0]), *words[1:], "--help"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, f"{page.name}: {' '.join(words)}: {out.stderr.strip()}"
    assert not list(tmp_path.iterdir())


def test_the_docs_show_examples_of_every_command():
    shown = {words[0] for _, words in EXAMPLES}
    assert shown == set(COMMANDS)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page):
    if not page.is_file():
        pytest.fail(f"{page.relative_to(ROOT)} is linked from the README but missing")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, broken


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_measured_figures_come_with_when_where_and_how():
    """docs/benchmarks.md is bench-runtime's own Markdown report, whole: one report, opening
    with its date, commit, machine and command."""
    text = GENERATED.read_text()
    assert text.count("\n# ") + text.startswith("# ") == 1, "one report, not several pasted together"
    first = text.split("\n## ")[1]
    assert first.startswith("Machine and protocol")
    for row in ("| Measured |", "| Commit |", "| Command | bench-runtime ", "| CPU |"):
        assert row in first, row
    commit = re.search(r"\| Commit \| (\S+) \|", first)[1]
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?", commit), commit
