"""The fingerprint of the code a bench report times: one sha256 over its source files.

A report's commit names where its figures came from, but not whether the code has changed
since: `tests/test_bench_report_fresh.py` recomputes this fingerprint and fails when
docs/benchmarks.md timed other code. It reads the files from the working tree (so local
changes count, and a copy without git history computes the same value); git, where present,
only lists them: tracked and untracked files alike, less what .gitignore ignores.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

# The code whose speed and memory the report measures: the bench itself, the model and its
# export, the runtimes it times (Python, bokeh-native with --native, the web page's modules and
# its wasm host's C source), and what they share.
FOLDERS = ("benchmarks", "bokehlite", "export", "model", "runtime",
           "android/native/cli", "android/native/include", "android/native/src", "web")
SUFFIXES = (".py", ".c", ".h", ".mjs")
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def describe() -> str:
    """'*.py, *.c and *.h files under benchmarks/, ...' for the report."""
    kinds = ", ".join(f"*{s}" for s in SUFFIXES[:-1]) + f" and *{SUFFIXES[-1]}"
    return f"{kinds} files under " + ", ".join(f"{f}/" for f in FOLDERS)


def source_files(root: Path) -> list[str]:
    """The fingerprinted files, as sorted paths relative to `root`."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                              "--", *FOLDERS], capture_output=True, timeout=30)
        listed = out.stdout.decode().split("\0") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        listed = None
    if listed is None:          # no git, or not a checkout: every file but caches, packages and builds
        listed = [p.relative_to(root).as_posix() for f in FOLDERS for p in (root / f).rglob("*")
                  if not any(part.startswith((".", "__pycache__", "build", "node_modules"))
                             for part in p.relative_to(root).parts)]
    return sorted({p for p in listed if p.endswith(SUFFIXES) and (root / p).is_file()})


def code_fingerprint(root: Path = SOURCE_ROOT) -> dict | None:
    """{'sha256', 'files', 'covers'}, or None outside a source tree (an installed wheel)."""
    if not (root / "pyproject.toml").is_file() or not all((root / f).is_dir() for f in FOLDERS[:5]):
        return None
    digest = hashlib.sha256()
    files = source_files(root)
    for rel in files:
        # Line endings normalised: a checkout with CRLF files times the same code.
        content = (root / rel).read_bytes().replace(b"\r\n", b"\n")
        digest.update(f"{rel}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return {"sha256": digest.hexdigest(), "files": len(files), "covers": describe()}
