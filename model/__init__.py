"""PyTorch reference model of "Bokeh Rendering from Defocus Estimation" (Luo et al., 2020).

Names are imported on first use (PEP 562), so `bokehlite.model.config` and
`bokehlite.model.synthetic`, which need no torch, can be imported without loading it.
"""
from __future__ import annotations

import importlib

from ..onednn import cap_isa_for_float16

cap_isa_for_float16()      # before torch runs its first convolution (see bokehlite/onednn.py)

_NAMES = {
    "BokehNet": "bokehnet", "net_size": "bokehnet",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "load_encoder_weights": "checkpoint", "load_radiance": "checkpoint", "save_checkpoint": "checkpoint",
    "PRESET_NAMES": "config", "BackboneConfig": "config", "BokehConfig": "config",
    "RadianceConfig": "config", "stage_config": "config",
    "hard_disk_kernel": "kernels", "soft_disk_kernel": "kernels",
    "Radiance": "radiance",
    "LayeredRenderer": "render", "composite": "render", "layer_masks": "render", "layered_blur": "render",
    "focus_mask": "upsample", "upsample_blend": "upsample",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
