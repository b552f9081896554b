"""bokehlite.runtime: run an exported bokeh model on photos, with no PyTorch or TensorFlow.

    from bokehlite.runtime import BokehRenderer
    renderer = BokehRenderer("artifacts/bokeh_gpu_1024x1536.tflite")
    result = renderer.render(rgb)     # same shape and dtype as rgb

A render-track (depth-guided) model also takes the photo's disparity map, a focus and an
aperture: see BokehRenderer.render and depth.py.

Only numpy and OpenCV are imported here; the TFLite interpreter is imported when a
model is opened (LiteRT first, see backends.py).
"""
from .backends import BACKENDS
from .depth import centre_focus, focus_at, load_disparity, read_disparity
from .errors import BackendError, BadImageError, DepthError, ModelError, OutputError, RuntimeInputError
from .photo import DEFAULT_MAX_PIXELS, Photo, read_photo, write_photo
from ..contract import DEFAULT_APERTURE
from .renderer import BokehRenderer

__all__ = ["BokehRenderer", "BACKENDS", "Photo", "read_photo", "write_photo", "DEFAULT_MAX_PIXELS",
           "load_disparity", "read_disparity", "focus_at", "centre_focus", "DEFAULT_APERTURE",
           "RuntimeInputError", "BadImageError", "ModelError", "BackendError", "DepthError", "OutputError"]
