"""PyTorch reference model of "Bokeh Rendering from Defocus Estimation" (Luo et al., 2020)."""
from .bokehnet import BokehNet, net_size
from .checkpoint import CheckpointError, load_checkpoint, load_encoder_weights, save_checkpoint
from .config import PRESET_NAMES, BackboneConfig, BokehConfig, RadianceConfig, stage_config
from .kernels import hard_disk_kernel, soft_disk_kernel
from .radiance import Radiance
from .render import LayeredRenderer, layer_masks, layered_blur
from .upsample import focus_mask, upsample_blend

__all__ = [
    "BackboneConfig", "BokehConfig", "BokehNet", "CheckpointError", "LayeredRenderer",
    "PRESET_NAMES", "Radiance", "RadianceConfig", "focus_mask", "hard_disk_kernel",
    "layer_masks", "layered_blur", "load_checkpoint", "load_encoder_weights", "net_size",
    "save_checkpoint", "soft_disk_kernel", "stage_config", "upsample_blend",
]
