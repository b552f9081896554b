"""The stages a network reports, so the benchmark can time and count each one without
knowing the network's insides (paper Fig. 2: defocus net, radiance, render, upsample)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Stage:
    """One stage of a forward pass.

    module: the sub-module that runs it; None for the remainder (everything outside the
    other stages' modules, whose time is the total minus theirs) and for an absent stage.
    about: what the remainder contains, or why an absent stage is absent.
    """

    name: str
    module: nn.Module | None
    about: str = ""
    absent: bool = False
    remainder: bool = False
