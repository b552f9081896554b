"""Ctrl-C and SIGTERM in every command line: clean up, say one line, exit 130 or 143.

SIGTERM (what `kill`, systemd and CI runners send) is turned into an exception, like
Ctrl-C's KeyboardInterrupt, so that every `with` block unwinds: temporary folders are
removed and `subprocess.run` kills its child (the converter, a benchmark worker).
Without this, SIGTERM ends Python at once and leaves hundreds of MB behind.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so `except Exception` lets it pass."""


def _terminate(signum, frame):
    raise Terminated()


def run_cli(prog: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """main(argv) with SIGTERM handled; an interruption is one stderr line and exit 130/143."""
    if threading.current_thread() is not threading.main_thread():
        return main(argv)           # signal handlers can only be set from the main thread
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print(f"{prog}: interrupted (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
