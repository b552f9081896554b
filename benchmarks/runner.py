"""What the timing loop holds of any backend it times: a prepared call and its output.

Its own module, below the openers (backends.py, portrait.py), so that they need not
import each other for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class Runner:
    prepare: Callable[[dict], Any]            # {input name: NHWC float32 (1, ...)} -> native inputs
    run: Callable[[Any], Any]                 # native input -> raw outputs (the timed call)
    bokeh: Callable[[Any], np.ndarray]        # raw outputs -> 'bokeh' as NHWC float32
    model: Any = None                         # the PyTorch module, for stage analysis
    parts: list | None = None                 # per-call split of a pipeline (portrait.py)
