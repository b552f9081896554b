"""Typed configuration for every stage of the network (paper Table 1, section 4.1).

All knobs live here so that a preset is data, not code: `stage_config("stage3")`
returns the paper's setting, and tests shrink only the backbone.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..contract import EQ9_ETA, EQ9_TAU, MAX_BLUR_RADIUS

# 0.99 is not representable in float16 (it becomes 0.990234375), which flipped
# pixels between the fp32 and fp16 exports of a prototype. We use the fp16 value
# itself, so both precisions draw the line in the same place. For 8-bit input it
# separates 252/255 from 253/255 exactly as 0.99 does.
BRIGHT_THRESHOLD = 0.990234375
# CPU-track residual modules (residual.py) and their default widths; the first is what new
# configs build.
RESIDUAL_DESIGNS = {"low-res": 32, "full-res": 8}
# Pyramid render: kernels of this size and up run on a 2x or 4x pooled grid (render.py).
PYRAMID_MIN_SIZE = 19


def pyramid_factor(size: int, min_size: int = PYRAMID_MIN_SIZE) -> int:
    """Downsampling factor the pyramid mode uses for a kernel of `size` pixels."""
    if size < min_size:
        return 1
    return 2 if size < 39 else 4


@dataclass(frozen=True)
class BackboneConfig:
    """ResNeXt encoder + MiDaS-style decoder widths. Defaults: ResNeXt50-32x4d."""

    planes: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    groups: int = 32
    width_per_group: int = 4
    features: int = 256
    head_features: int = 32

    @classmethod
    def tiny(cls) -> "BackboneConfig":
        """A few-thousand-parameter backbone with the same topology, for tests."""
        return cls(planes=(8, 16, 32, 64), blocks=(1, 1, 1, 1), groups=2,
                   width_per_group=16, features=16, head_features=8)


@dataclass(frozen=True)
class RadianceConfig:
    """Eq. 4: W = M_b * alpha * I^beta + (1 - M_b) * g(I)."""

    hidden: int = 16
    threshold: float = BRIGHT_THRESHOLD
    alpha: float = 3.0
    beta: int = 5


@dataclass(frozen=True)
class BokehConfig:
    """One network preset: where it runs, how it renders and what it outputs."""

    name: str
    scale: float                      # network/render resolution relative to the input
    kernel_sizes: tuple[int, ...]     # Table 1; size 1 means "in focus"
    defocus_channels: int             # 6: softmax layers (stages 1-2); 1: D_s in [0, 1] (stage 3)
    blend: bool = False               # Eq. 9 upsampling blend at the input resolution
    residual: bool = False            # CPU track: residual module (residual.py) instead of plain upsampling
    render_mode: str = "pyramid"      # "exact" (reference) or "pyramid" (export)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    radiance: RadianceConfig = field(default_factory=RadianceConfig)
    eta: float = EQ9_ETA              # Eq. 9 mask softness
    tau: float = EQ9_TAU              # Eq. 9 in-focus threshold on D_s
    residual_design: str = "low-res"   # residual.py: "low-res", or "full-res" (older checkpoints)
    residual_features: int | None = None   # None: the design's default width (RESIDUAL_DESIGNS)

    def __post_init__(self):
        if self.residual_design not in RESIDUAL_DESIGNS:
            raise ValueError(f"residual_design must be one of {', '.join(RESIDUAL_DESIGNS)}, "
                             f"got {self.residual_design!r}")
        if self.blend and self.residual:
            raise ValueError("blend and residual are alternatives: the residual module does the upsampling")
        if self.residual_features is None:
            object.__setattr__(self, "residual_features", RESIDUAL_DESIGNS[self.residual_design])
        if self.render_mode not in ("exact", "pyramid"):
            raise ValueError(f"render_mode must be 'exact' or 'pyramid', got {self.render_mode!r}")
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {self.kernel_sizes}")
        if self.defocus_channels not in (1, len(self.kernel_sizes)):
            raise ValueError("defocus_channels must be 1 or one per kernel size")

    @property
    def net_multiple(self) -> int:
        """Input sizes must be a multiple of this for an exact (export) forward pass."""
        return int(round(32 / self.scale))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BokehConfig":
        """The config `to_dict` wrote, also one written before `residual_design` existed: a
        residual module in it is the full-res design (with its stored width); without one,
        the module a cpu track would add later is today's default."""
        data = dict(data)
        if "residual_design" not in data:
            if data.get("residual"):
                data["residual_design"] = "full-res"
            else:
                data.pop("residual_features", None)
        data["backbone"] = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v
                                             for k, v in data["backbone"].items()})
        data["radiance"] = RadianceConfig(**data["radiance"])
        data["kernel_sizes"] = tuple(data["kernel_sizes"])
        return cls(**data)


STAGE1_KERNELS = (1, 5, 11, 19, 27, 35)
STAGE2_KERNELS = (1, 9, 21, 37, 53, 69)
STAGE3_KERNELS = (1, 3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69)
if STAGE3_KERNELS[-1] != 2 * MAX_BLUR_RADIUS + 1:
    raise ImportError("contract.MAX_BLUR_RADIUS must be the radius of the largest stage-3 kernel")

_PRESETS = {
    "stage1": dict(scale=0.25, kernel_sizes=STAGE1_KERNELS, defocus_channels=6),
    "stage2": dict(scale=0.5, kernel_sizes=STAGE2_KERNELS, defocus_channels=6),
    "stage3": dict(scale=0.5, kernel_sizes=STAGE3_KERNELS, defocus_channels=1),
    "inference": dict(scale=0.5, kernel_sizes=STAGE3_KERNELS, defocus_channels=1, blend=True),
    "cpu-track": dict(scale=0.25, kernel_sizes=STAGE1_KERNELS, defocus_channels=6, residual=True),
}
PRESET_NAMES = tuple(_PRESETS)


def stage_config(name: str, **overrides) -> BokehConfig:
    """The paper's preset `name` (one of PRESET_NAMES), with optional field overrides."""
    if name not in _PRESETS:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    return BokehConfig(name=name, **{**_PRESETS[name], **overrides})
