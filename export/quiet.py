"""Keep native (C++) logging from LiteRT/TensorFlow off the user's terminal.

Python-level progress goes through `sys.stderr`, which we re-point at a duplicate
of the real stream, while file descriptor 2 (where native code writes) goes to
/dev/null for the duration.
"""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_to_devnull():
    sys.stderr.flush()
    saved_fd = os.dup(2)
    python_stderr = sys.stderr
    try:
        sys.stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        replaced, sys.stderr = sys.stderr, python_stderr
        replaced.close()
