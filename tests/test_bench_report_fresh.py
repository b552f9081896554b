"""docs/benchmarks.md times the code as it is, and it is the one source of its figures.

A generated report that is out of date is worse than none. bench-runtime records a
fingerprint of the code it times (benchmarks/fingerprint.py: one sha256 over the source files
of the folders the report names) in the report's header; this file recomputes it from the
working tree and fails, naming the command that regenerates the report, when they differ.

One source per measurement: a paragraph of another page that cites the bench (names
bench-runtime, links benchmarks.md or speaks of peak RSS) quotes no measured time, memory or
ratio; it links the report instead, so no two pages can give two figures for one measurement.
Limits (`<= 500 ms`) are targets, not measurements, and may be quoted.

Each check is also run on a case made to fail: a copy of the code with one file edited, a
report without a fingerprint, and the paragraph that once quoted a portrait run by hand.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bokehlite.benchmarks.fingerprint import FOLDERS, SUFFIXES, code_fingerprint, source_files

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "android" / "README.md"]
# What a paragraph says when it speaks of the bench's measurements.
CITES_THE_BENCH = ("bench-runtime", "benchmarks.md", "peak RSS")
# A measured figure: a time, a memory size or a ratio ("0.25x"), unless a comparison names it
# as a limit ("<= 0.5 s", "under 1 GB").
FIGURE = re.compile(r"(?<![\w.])(?<!<= )(?<!>= )(?<!< )(?<!> )(?<!under )(?<!over )(?<!at most )(?<!at least )"
                    r"(?:\d+(?:\.\d+)? ?(?:ms|s|MB|GB|GFLOP/s)(?![\w/])|\d+\.\d+x(?!\w))")


def header(report: str) -> dict[str, str]:
    """The rows of the report's first section, "Machine and protocol": name -> value."""
    first = report.split("\n## ", 2)[1] if "\n## " in report else ""
    return {m[1]: m[2] for m in re.finditer(r"^\| ([^|]+?) \| (.*) \|$", first, re.M)}


def changed_since(commit: str, root: Path) -> list[str]:
    """The fingerprinted files git says changed since the report's commit ([] without git)."""
    sha = commit.removesuffix("-dirty")
    try:
        out = subprocess.run(["git", "-C", str(root), "diff", "--name-only", sha, "--", *FOLDERS],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def staleness(report: str, root: Path) -> str | None:
    """Why `report` does not time the code under `root`, with the command that regenerates
    it (the one the report records), or None when its fingerprint is the code's."""
    rows = header(report)
    now = code_fingerprint(root)
    assert now is not None, f"{root} is not a source tree"
    recorded = re.match(r"[0-9a-f]{64}\b", rows.get("Code fingerprint", ""))
    if recorded and recorded[0] == now["sha256"]:
        return None
    if recorded:
        why = (f"it timed code of fingerprint {recorded[0][:16]}..., but the {now['covers']} now give "
               f"{now['sha256'][:16]}...")
    else:
        why = ("its header records no code fingerprint (it was made before bench-runtime recorded one), so "
               "nothing shows that it times the code as it is")
    commit = rows.get("Commit", "unknown")
    changed = changed_since(commit, root) if commit != "unknown" else []
    since = (f" Changed since its commit {commit}: {', '.join(changed[:8])}"
             + (f" and {len(changed) - 8} more" if len(changed) > 8 else "") + "." if changed else "")
    command = rows.get("Command", "bench-runtime ... --markdown docs/benchmarks.md (see docs/bench-runtime.md)")
    native = (" (--native needs its binary built first: android/README.md)" if "--native" in command else "")
    return (f"docs/benchmarks.md is stale: {why}.{since} Regenerate it on an idle machine, from the repository "
            f"root, with the command it records (about 22 minutes on 2 cores; docs/bench-runtime.md){native}:\n"
            f"    {command}")


def test_the_report_times_the_code_as_it_is_now():
    why = staleness(REPORT.read_text(), ROOT)
    if why:
        pytest.fail(why, pytrace=False)


def copy_of_the_code(dest: Path) -> Path:
    for rel in ["pyproject.toml", *source_files(ROOT)]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    return dest


def report_with(fingerprint: str | None) -> str:
    row = f"| Code fingerprint | {fingerprint} (sha256 of ...) |\n" if fingerprint else ""
    return ("# bench-runtime report\n\n## Machine and protocol\n\n|   |   |\n|---|---|\n"
            "| Measured | 2026-12-07T12:00:00+00:00 (UTC) |\n| Commit | 0123456789ab |\n" + row +
            "| Command | bench-runtime --track cpu --markdown docs/benchmarks.md |\n\n## Latency per backend\n")


def test_the_freshness_check_fails_when_one_timed_file_changes(tmp_path):
    copy = copy_of_the_code(tmp_path / "copy")          # no git here: the files are found by walking
    before = code_fingerprint(copy)
    assert before == code_fingerprint(ROOT), "a copy without git history computes another fingerprint"
    report = report_with(before["sha256"])
    assert staleness(report, copy) is None
    fit = copy / "runtime" / "fit.py"
    fit.write_text(fit.read_text() + "\n# one edited line\n")
    why = staleness(report, copy)
    assert why is not None and why.startswith("docs/benchmarks.md is stale: it timed code of fingerprint")
    assert why.endswith("\n    bench-runtime --track cpu --markdown docs/benchmarks.md"), why
    why = staleness(report_with(None), copy)
    assert why is not None and "records no code fingerprint" in why


def test_every_timed_folder_is_in_the_fingerprint_and_named():
    files = source_files(ROOT)
    for folder in FOLDERS:
        assert any(f.startswith(folder + "/") for f in files), f"{folder}/ has no fingerprinted file"
    assert "runtime/fit.py" in files and "benchmarks/fingerprint.py" in files
    assert "web/bokeh.mjs" in files and "android/native/src/host.c" in files
    assert not [f for f in files if "__pycache__" in f or "node_modules" in f or not f.endswith(SUFFIXES)]
    assert all(f"{folder}/" in code_fingerprint(ROOT)["covers"] for folder in FOLDERS)


def paragraphs(text: str) -> list[str]:
    """The page's paragraphs, each list item as one (a table is one), code blocks left out."""
    text = re.sub(r"```.*?```", "\n\n", text, flags=re.S)
    return [p for p in re.split(r"\n\s*\n|\n(?=[-*] |\d+\. )", text) if p.strip()]


def quoted_figures(text: str) -> list[tuple[str, str]]:
    """(paragraph opening, figure) for each measured figure in a paragraph that cites the bench."""
    found = []
    for para in paragraphs(text):
        if any(cue in para for cue in CITES_THE_BENCH):
            flat = " ".join(para.split())
            found += [(flat[:60], m[0]) for m in FIGURE.finditer(flat)]
    return found


@pytest.mark.parametrize("page", [p for p in PAGES if p.is_file() and p != REPORT],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_other_page_quotes_a_bench_figure(page):
    quoted = quoted_figures(page.read_text())
    assert not quoted, (f"{page.relative_to(ROOT)} quotes bench figures {[f for _, f in quoted]} (in "
                        f"{sorted({p for p, _ in quoted})}): link docs/benchmarks.md instead, the one source "
                        "of the bench's figures")


def test_the_quote_check_catches_a_hand_quoted_run_and_spares_limits():
    old = ("Measured with `bench-runtime --track portrait --threads 2 --runs 5 --min-secs 0` at commit "
           "56228cb: the whole portrait step 409 ms median (segmenter 17, model 356, blend 32) and 561 MB\n"
           "peak RSS, against 1662 ms and 1574 MB for the full-resolution pipeline (0.25x the time).")
    assert [f for _, f in quoted_figures(old)] == ["409 ms", "561 MB", "1662 ms", "1574 MB", "0.25x"]
    limits = ("`bench-runtime --track portrait` times the whole step; targets: <= 0.5 s median and <= 0.6 GB "
              "peak RSS at 1024x1536 on 2 cores, under 1 GB. See [benchmarks.md](benchmarks.md).")
    assert quoted_figures(limits) == []
    elsewhere = "The web page renders in 69 ms (model 42).\n\nSee [benchmarks.md](benchmarks.md)."
    assert quoted_figures(elsewhere) == []
