"""The runtime's error types. Every one carries a single line meant for a user.

`bokeh-render` turns them into one stderr line and exit code 2; anything else that
escapes is a bug and keeps its traceback.
"""
from __future__ import annotations


class RuntimeInputError(ValueError):
    """Base class: something the user gave us (a photo, a model, a flag, a folder) is unusable."""


class BadImageError(RuntimeInputError):
    """A photo that cannot be read, is degenerate, or is over the pixel limit."""


class ModelError(RuntimeInputError):
    """A .tflite (or its sidecar JSON) that is missing, corrupt, or breaks the export contract."""


class BackendError(RuntimeInputError):
    """No usable TFLite interpreter (not installed, or broken in this environment)."""


class DepthError(RuntimeInputError):
    """A depth map that cannot be read or used, a focus point outside the photo, or a depth
    map given to a model that takes none (and the reverse)."""


class OutputError(RuntimeInputError):
    """An output that cannot be written, or would overwrite an input."""


class ModelOutputError(RuntimeInputError):
    """The model computed NaN or infinite values (an overflow on the device): nothing is written."""
