"""A folder made once per test run, also when pytest-xdist spreads the files over processes.

Under xdist each worker runs its own session fixtures, so an export that files on two workers
share would be made twice. `made_once` makes it in the first process that asks, under a file
lock in the run's shared temporary folder; the others wait for it and reuse it (the pattern
xdist's documentation gives). Without xdist it is an ordinary session cache.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock

DONE = ".made"


def run_folder(tmp_path_factory) -> Path:
    """The temporary folder all of this run's processes share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(tmp_path_factory, key: str, make: Callable[[Path], object]) -> tuple[Path, dict | None]:
    """(folder, the dict make returned, else None) for `key`: `make(folder)` fills the folder and
    may return a JSON-able dict (an export's report). A make that raised leaves no marker, so the next
    process to ask tries again and fails with its own message."""
    folder = run_folder(tmp_path_factory) / f"once-{key}"
    with FileLock(f"{folder}.lock"):
        marker = folder / DONE
        if not marker.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            result = make(folder)
            marker.write_text(json.dumps(result if isinstance(result, dict) else None))
        return folder, json.loads(marker.read_text())
