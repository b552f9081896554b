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
# Ours too, but not installed with the package: bokeh-native is built by CMake (the session
# fixture `build`, only for the pages that name it), and the arm64 scripts live beside it.
NATIVE_CLI = "bokeh-native"
SCRIPTS = {"run-arm64": ROOT / "android" / "native" / "run-arm64",
           "fetch-litert-arm64": ROOT / "android" / "native" / "fetch-litert-arm64"}
# Wrappers of ours that run the program after their options (each of which takes a value).
WRAPPERS = {"run-arm64": ("--cpu", "--litert")}
ALL_COMMANDS = (*COMMANDS, NATIVE_CLI, *SCRIPTS)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "android" / "README.md"]
# The command each page is the manual of: a flag on a line that names no command is its.
PAGE_COMMAND = {"docs/training.md": "train-bokeh", "docs/export.md": "export-tflite", "docs/runtime.md": "bokeh-render",
                "docs/portrait.md": "bokeh-render", "docs/gpu.md": "bokeh-render",
                "docs/bench-runtime.md": "bench-runtime", "docs/web.md": "bokeh-web",
                "android/README.md": NATIVE_CLI}
# Flags of other tools that the docs quote (pip, apt, dpkg, torchrun, benchmark_model, cmake,
# ctest, python, pytest-xdist).
EXTERNAL = {"--no-deps", "--no-install-recommends", "--nproc_per_node", "--use_gpu", "--build", "--help",
            "--count", "--size", "--seed", "--prefix", "--enable-unsafe-webgpu", "--add-architecture",
            "--test-dir", "--dist", "--no-loadscope-reorder"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
GENERATED = ROOT / "docs" / "benchmarks.md"


def executable(command: str, request) -> Path:
    if command in SCRIPTS:
        return SCRIPTS[command]
    if command == NATIVE_CLI:
        return request.getfixturevalue("build") / NATIVE_CLI
    return BIN / command


@cache
def help_flags(program: Path) -> frozenset[str]:
    out = subprocess.run([str(program), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return frozenset(FLAG.findall(out.stdout))


def known_flags(command: str, request) -> frozenset[str]:
    return help_flags(executable(command, request))


def pages() -> list[Path]:
    return [p for p in DOCS if p.is_file() and p != GENERATED]


def page_key(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def unknown_flags(text: str, own: str | None, flags_of) -> list[str]:
    """'LINE: --flag' for each flag that no command of its line knows: the commands the line
    names, and the page's own; a line that names none is checked against the Python commands
    (flags_of(command) gives a command's flags)."""
    unknown = []
    for number, line in enumerate(text.splitlines(), 1):
        flags = FLAG.findall(line)
        if not flags:
            continue
        named = [c for c in ALL_COMMANDS if c in line]
        allowed = set(EXTERNAL)
        for command in (named + [own] if own else named) or list(COMMANDS):
            allowed |= flags_of(command)
        unknown += [f"{number}: {flag}" for flag in flags if flag.split("=")[0] not in allowed]
    return unknown


@pytest.mark.parametrize("page", pages(), ids=page_key)
def test_every_flag_the_docs_mention_is_known_to_its_command(page, request):
    unknown = unknown_flags(page.read_text(), PAGE_COMMAND.get(page_key(page)),
                            lambda command: known_flags(command, request))
    assert not unknown, [f"{page_key(page)}:{u}" for u in unknown]


def shell_commands(line: str) -> list[list[str]]:
    """The commands of ours that a shell line runs, each as [name, args...]: its simple
    commands (split at &&, ||, ; and |) past their variable assignments and our wrappers
    (run-arm64 and its options), and the command line that `adb shell "..."` runs."""
    words = shlex.split(line, comments=True)
    simple, found = [[]], []
    for word in words:
        if word in ("&&", "||", ";", "|"):
            simple.append([])
        else:
            simple[-1].append(word)
    for command in simple:
        while command and re.fullmatch(r"[A-Za-z_]\w*=.*", command[0]):
            command = command[1:]
        if command and Path(command[0]).name in WRAPPERS:
            options, command = WRAPPERS[Path(command[0]).name], command[1:]
            while len(command) > 1 and command[0] in options:
                command = command[2:]
        if command[:2] == ["adb", "shell"]:
            found += [c for inner in command[2:] for c in shell_commands(inner)]
        elif command and Path(command[0]).name in (*COMMANDS, NATIVE_CLI):
            found.append([Path(command[0]).name, *command[1:]])
    return found


def shell_examples(text: str) -> list[list[str]]:
    """Each command of ours that the page's ```bash and ```sh blocks run."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            commands += shell_commands(line)
    return commands


EXAMPLES = [(page, words) for page in pages() for words in shell_examples(page.read_text())]


def parse_example(words: list[str], request, cwd: Path) -> subprocess.CompletedProcess:
    """Run with --help appended: the command's parser checks every option and value before
    it, and the work is never started."""
    return subprocess.run([str(executable(words[0], request)), *words[1:], "--help"], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("page, words", EXAMPLES, ids=[f"{page_key(p)}: {' '.join(w)[:60]}" for p, w in EXAMPLES])
def test_every_example_command_parses(page, words, request, tmp_path):
    out = parse_example(words, request, tmp_path)
    assert out.returncode == 0, f"{page_key(page)}: {' '.join(words)}: {out.stderr.strip()}"
    assert not list(tmp_path.iterdir())


def test_the_android_page_documents_every_flag_of_bokeh_native(request):
    page = ROOT / "android" / "README.md"
    missing = known_flags(NATIVE_CLI, request) - set(FLAG.findall(page.read_text())) - EXTERNAL
    assert not missing, f"bokeh-native --help has flags that {page_key(page)} does not mention: {sorted(missing)}"


def test_the_checks_of_the_android_page_catch_a_made_up_flag(request, tmp_path):
    """The checks above can fail: a flag bokeh-native does not have, in the Android page's
    prose and in one of its examples."""
    text = (ROOT / "android" / "README.md").read_text()
    prose = text.replace("`--runs N`", "`--runs-twice N`", 1)
    assert prose != text
    unknown = unknown_flags(prose, PAGE_COMMAND["android/README.md"], lambda command: known_flags(command, request))
    assert [u.split(": ")[1] for u in unknown] == ["--runs-twice"], unknown
    example = text.replace("--threads 4 --json in.png", "--threads 4 --jsn in.png", 1)
    assert example != text
    bad = [words for words in shell_examples(example) if words not in shell_examples(text)]
    assert bad and bad[0][0] == NATIVE_CLI, bad
    out = parse_example(bad[0], request, tmp_path)
    assert out.returncode == 2 and "unrecognized argument: --jsn" in out.stderr, out.stderr


def test_the_docs_show_examples_of_every_command():
    shown = {words[0] for _, words in EXAMPLES}
    assert shown == {*COMMANDS, NATIVE_CLI}


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
