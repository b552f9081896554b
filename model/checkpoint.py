"""Checkpoints: ours (config + weights) and the authors' released BokehNet2 state dict.

Our format: {"format": "bokehlite", "version": 1, "config": {...}, "state_dict": {...}}.
The authors' (xianrui-luo/defocustofocus) is a bare state dict, or {"net": ...},
with keys under `midas.` (MidasNet_v1, ResNeXt50, 1-channel regression head) and
`radiance.`; it imports as the `inference` preset.

Loading is strict: every missing, unexpected or mis-shaped key is an error that lists
them all. The one opt-in exception is `replace_head`: stage 3 (1-channel D_s) starts
from a stage-1/2 checkpoint (6 softmax layers), or the reverse, by re-initialising only
the defocus head's last conv, and the caller is told which keys that was.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from ..files import atomic_open
from .bokehnet import BokehNet
from .config import BokehConfig, RadianceConfig, stage_config
from .radiance import Radiance

FORMAT = "bokehlite"
VERSION = 1


# The defocus head's last conv: its out channels are the defocus channels (6 or 1).
HEAD_PREFIX = "defocus_net.head.4."
RADIANCE_PREFIX = "radiance."


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def save_checkpoint(model: BokehNet, path: str | os.PathLike, **extra) -> None:
    """Write config + state dict atomically (a crash leaves the old file or the whole new one).

    `extra` entries (a trainer's optimizer state, step, epoch) are stored beside them;
    loading ignores them.
    """
    payload = {**extra, "format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)


# Authors' key -> ours. Applied in order; the first match wins.
_AUTHOR_KEY_RULES = [
    (r"^midas\.pretrained\.layer1\.0\.", "defocus_net.encoder.conv1."),
    (r"^midas\.pretrained\.layer1\.1\.", "defocus_net.encoder.bn1."),
    (r"^midas\.pretrained\.layer1\.4\.", "defocus_net.encoder.layer1."),
    (r"^midas\.pretrained\.layer([234])\.", r"defocus_net.encoder.layer\1."),
    (r"^midas\.scratch\.layer([1-4])_rn\.", lambda m: f"defocus_net.adapters.{int(m[1]) - 1}."),
    (r"^midas\.scratch\.refinenet([1-4])\.resConfUnit1\.",
     lambda m: f"defocus_net.fusions.{int(m[1]) - 1}.rcu_skip."),
    (r"^midas\.scratch\.refinenet([1-4])\.resConfUnit2\.",
     lambda m: f"defocus_net.fusions.{int(m[1]) - 1}.rcu_out."),
    (r"^midas\.scratch\.output_conv\.", "defocus_net.head."),
    (r"^radiance\.", "radiance."),
]
# MidasNet builds refinenet4.resConfUnit1 but never calls it; its weights carry no meaning.
_AUTHOR_UNUSED = re.compile(r"^midas\.scratch\.refinenet4\.resConfUnit1\.")


def _map_author_key(key: str) -> str | None:
    for pattern, repl in _AUTHOR_KEY_RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return None


def is_author_state_dict(state: dict) -> bool:
    return any(k.startswith("midas.") for k in state)


def import_author_state_dict(state: dict, config: BokehConfig | None = None) -> BokehNet:
    """Build a model (default: the `inference` preset) from the authors' BokehNet2 weights."""
    return _import_author(state, config)[0]


def _import_author(state: dict, config: BokehConfig | None,
                   replace: tuple[str, ...] = ()) -> tuple[BokehNet, list[str]]:
    config = config or stage_config("inference")
    model = BokehNet(config)
    mapped, unexpected, source = {}, [], {}
    for key, value in state.items():
        if _AUTHOR_UNUSED.match(key):
            continue
        new = _map_author_key(key)
        if new is None:
            unexpected.append(key)
        else:
            mapped[new], source[new] = value, key
    replaced = load_state_strict(model, mapped, unexpected, optional_prefix="residual.",
                                 source_names=source, replace=replace)
    return model, replaced


def load_state_strict(model: nn.Module, state: dict, unexpected: list[str] = (),
                      optional_prefix: str | None = None,
                      source_names: dict[str, str] | None = None,
                      replace: tuple[str, ...] = (), what: str | None = None) -> list[str]:
    """load_state_dict(strict) with one error that lists every problem key.

    `source_names` maps a key of `state` to its name in the file (the authors' keys), so
    the error names the key the user can find there. A key under a `replace` prefix whose
    shape differs from the model's in the first (out-channel) dimension only is not
    loaded: the model keeps its fresh initialisation there. Returns those keys (model
    names), sorted. `what` names the model in the error (default: its config's name).
    """
    own = model.state_dict()
    source_names = source_names or {}

    def shown_name(k: str) -> str:
        return f"{source_names[k]} (as {k})" if k in source_names else k

    mis_shaped = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    # Differs in out channels only: anything else would not fit a re-initialised layer either.
    channels_only = [k for k in mis_shaped if tuple(state[k].shape[1:]) == tuple(own[k].shape[1:])]
    replaced = sorted(k for k in channels_only if k.startswith(tuple(replace)))
    missing = [k for k in own if k not in state and not (optional_prefix and k.startswith(optional_prefix))]
    unexpected = list(unexpected) + [shown_name(k) for k in state if k not in own]
    wrong = [f"{shown_name(k)} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
             for k in mis_shaped if k not in replaced]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            problems.append(f"{label} keys: {shown}")
    if problems:
        what = what or f"the {model.config.name} model"
        hint = ""
        if not replace and any(k.startswith(HEAD_PREFIX) for k in channels_only):
            hint = ("; the defocus head's channel count differs: a stage-1 or stage-2 checkpoint "
                    "(6 channels) exports as the cpu track (export-tflite --track cpu), or goes into "
                    "stage 3 through train-bokeh --stage 3 --init FILE, which re-initialises that conv "
                    "(in Python: load_checkpoint_report(..., replace_head=True))")
        raise CheckpointError(f"checkpoint does not fit {what}: " + "; ".join(problems) + hint)
    model.load_state_dict({k: v for k, v in state.items() if k not in replaced}, strict=False)
    return replaced


def read_weights_file(path: str | os.PathLike, what: str) -> dict:
    """torch.load a weights file (tensors only) as a dict; CheckpointError naming `what` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        # A text file or other foreign bytes makes the unpickler fail with a bare number or
        # a byte: say what the file is not, and keep torch's words only when they say something.
        # PyTorch's advice to reload with weights_only=False is wrong for a file that is no
        # checkpoint at all, and unsafe for one from elsewhere: it is never passed on.
        said = (f" ({first_line})" if len(first_line) > 24 and not first_line.isdigit()
                and "weights_only" not in first_line else "")
        kind = _foreign_kind(path)
        if kind:
            said = f" (it is {kind})"
        raise CheckpointError(f"cannot read {what} {path}: not a PyTorch weights file (torch.save), "
                              f"or a damaged one{said}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is not a {what} (a {type(payload).__name__}, not a dict)")
    return payload


_MAGIC = {b"\xff\xd8\xff": "a JPEG photo", b"\x89PNG": "a PNG image", b"TFL3": "a TFLite model",
          b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image", b"RIFF": "a RIFF file (WebP?)"}


def _foreign_kind(path: Path) -> str | None:
    """What a file that is no checkpoint is, by its first bytes (a .tflite has TFL3 at 4)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic) or head[4:8] == magic), None)


def _read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """(state dict, our stored config or None for the authors' format) of the file at `path`."""
    payload = read_weights_file(path, "checkpoint")
    if payload.get("format") == FORMAT:
        return payload["state_dict"], payload["config"]
    state = payload.get("net", payload)
    if isinstance(state, dict) and is_author_state_dict(state):
        return state, None
    raise CheckpointError(f"{path} is neither a bokehlite checkpoint nor an authors' "
                          f"BokehNet2 state dict (no 'midas.' keys)")


def load_checkpoint_report(path: str | os.PathLike, config: BokehConfig | None = None,
                           replace_head: bool = False) -> tuple[BokehNet, list[str]]:
    """`load_checkpoint`, plus the keys it re-initialised instead of loading.

    replace_head: a defocus head whose last conv has another channel count than
    `config`'s (6 softmax layers vs 1-channel D_s) keeps the fresh model's init there
    (a 1-channel head starts at bias 0.5); everything else still loads strictly. This is
    how stage 3 starts from a stage-1/2 checkpoint. Without it the mismatch is an error.
    """
    state, stored = _read_checkpoint(path)
    replace = (HEAD_PREFIX,) if replace_head else ()
    if stored is None:
        return _import_author(state, config, replace)
    model = BokehNet(config or BokehConfig.from_dict(stored))
    return model, load_state_strict(model, state, replace=replace)


def load_checkpoint(path: str | os.PathLike, config: BokehConfig | None = None) -> BokehNet:
    """Load ours or the authors' checkpoint into a BokehNet, strictly.

    `config` overrides the stored one (e.g. to switch render_mode); its weights must fit.
    """
    return load_checkpoint_report(path, config)[0]


def load_radiance(path: str | os.PathLike) -> Radiance:
    """Just the radiance module (Eq. 4) of ours or the authors' checkpoint, strictly.

    No BokehNet is built. Its config comes from the file: ours stores it; the authors'
    has the paper's threshold/alpha/beta and a width read off `radiance.conv1.weight`.
    """
    state, stored = _read_checkpoint(path)
    state = {k: v for k, v in state.items() if k.startswith(RADIANCE_PREFIX)}
    if stored is not None:
        cfg = RadianceConfig(**stored["radiance"])
    else:
        conv1 = state.get(RADIANCE_PREFIX + "conv1.weight")
        cfg = RadianceConfig() if conv1 is None else RadianceConfig(hidden=int(conv1.shape[0]))
    radiance = Radiance(cfg)
    # Held under its checkpoint name so the error lists keys as the file spells them.
    load_state_strict(nn.ModuleDict({RADIANCE_PREFIX[:-1]: radiance}), state,
                      what=f"a radiance module of width {cfg.hidden}")
    return radiance


def load_encoder_weights(model: BokehNet, path: str | os.PathLike) -> None:
    """Load a torchvision-format ImageNet ResNeXt state dict into the encoder (fc ignored)."""
    state = read_weights_file(path, "encoder weights file")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    encoder = model.defocus_net.encoder
    result = encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"encoder weights do not fit: missing {result.missing_keys[:8]}, "
                              f"unexpected {result.unexpected_keys[:8]}")
