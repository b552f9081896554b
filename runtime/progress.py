"""A one-line progress bar on stderr for batches; no dependency, silent when not a terminal."""
from __future__ import annotations

import shutil
import sys
from typing import TextIO


class Progress:
    """`update(done, label)` redraws the bar; `message(text)` prints a line above it."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._drawn = False

    def update(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        width = 24
        filled = width * done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {label}"
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r" + line[:columns - 1].ljust(columns - 1))
        self.stream.flush()
        self._drawn = True

    def note(self, text: str) -> None:
        """A line about a long step before the bar starts, on a terminal only: a script's
        stderr keeps its one line per problem."""
        if self.enabled:
            self.message(text)

    def message(self, text: str) -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def clear(self) -> None:
        if self._drawn:
            columns = shutil.get_terminal_size((80, 24)).columns
            self.stream.write("\r" + " " * (columns - 1) + "\r")
            self.stream.flush()
            self._drawn = False
