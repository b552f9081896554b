"""Checkpoints: ours (config + weights) and the authors' released BokehNet2 state dict.

Our format: {"format": "bokehlite", "version": 1, "config": {...}, "state_dict": {...}}.
The authors' (xianrui-luo/defocustofocus) is a bare state dict, or {"net": ...},
with keys under `midas.` (MidasNet_v1, ResNeXt50, 1-channel regression head) and
`radiance.`; it imports as the `inference` preset.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch

from .bokehnet import BokehNet
from .config import BokehConfig, stage_config

FORMAT = "bokehlite"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def save_checkpoint(model: BokehNet, path: str | os.PathLike) -> None:
    """Write config + state dict atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    load_state_strict(model, mapped, unexpected, optional_prefix="residual.", source_names=source)
    return model


def load_state_strict(model: BokehNet, state: dict, unexpected: list[str] = (),
                 optional_prefix: str | None = None,
                 source_names: dict[str, str] | None = None) -> None:
    """load_state_dict(strict) with one error that lists every problem key.

    `source_names` maps a key of `state` to its name in the file (the authors' keys), so
    the error names the key the user can find there.
    """
    own = model.state_dict()
    source_names = source_names or {}

    def shown_name(k: str) -> str:
        return f"{source_names[k]} (as {k})" if k in source_names else k

    missing = [k for k in own if k not in state and not (optional_prefix and k.startswith(optional_prefix))]
    unexpected = list(unexpected) + [shown_name(k) for k in state if k not in own]
    wrong = [f"{shown_name(k)} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
             for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            problems.append(f"{label} keys: {shown}")
    if problems:
        raise CheckpointError(f"checkpoint does not fit the {model.config.name} model: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)


def load_checkpoint(path: str | os.PathLike, config: BokehConfig | None = None) -> BokehNet:
    """Load ours or the authors' checkpoint into a BokehNet, strictly.

    `config` overrides the stored one (e.g. to switch render_mode); its weights must fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read checkpoint {path}: {first_line}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is not a checkpoint (a {type(payload).__name__}, not a dict)")
    if payload.get("format") == FORMAT:
        model = BokehNet(config or BokehConfig.from_dict(payload["config"]))
        load_state_strict(model, payload["state_dict"])
        return model
    state = payload.get("net", payload)
    if isinstance(state, dict) and is_author_state_dict(state):
        return import_author_state_dict(state, config)
    raise CheckpointError(f"{path} is neither a bokehlite checkpoint nor an authors' "
                          f"BokehNet2 state dict (no 'midas.' keys)")


def load_encoder_weights(model: BokehNet, path: str | os.PathLike) -> None:
    """Load a torchvision-format ImageNet ResNeXt state dict into the encoder (fc ignored)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    encoder = model.defocus_net.encoder
    result = encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"encoder weights do not fit: missing {result.missing_keys[:8]}, "
                              f"unexpected {result.unexpected_keys[:8]}")
