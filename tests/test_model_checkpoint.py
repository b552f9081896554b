"""Checkpoints: our format round trip, the authors' BokehNet2 state dict, bad files."""
import os
import random
import re

import pytest
import torch

from bokehlite.model import (BackboneConfig, BokehNet, CheckpointError, load_checkpoint,
                             save_checkpoint, stage_config)

TINY = BackboneConfig.tiny()


def randomised(model: BokehNet, seed: int = 0) -> BokehNet:
    """Every tensor of the state dict set to random values (BN statistics included), so a
    load that skips or swaps anything changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(int(torch.randint(1, 100, (1,), generator=g)))
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


def outputs(model: BokehNet, image: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(image)


def assert_same_outputs(a: BokehNet, b: BokehNet, image: torch.Tensor):
    out_a, out_b = outputs(a, image), outputs(b, image)
    assert out_a.keys() == out_b.keys()
    for k in out_a:
        assert torch.equal(out_a[k], out_b[k]), k


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


# --- our format -------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["cpu-track", "inference"])
def test_checkpoint_round_trip_is_bit_exact(tmp_path, image, preset):
    model = randomised(BokehNet(stage_config(preset, backbone=TINY)))
    path = tmp_path / "model.pt"
    save_checkpoint(model, path)
    loaded = load_checkpoint(path).eval()
    assert loaded.config == model.config
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].dtype == theirs[k].dtype for k in ours)
    assert_same_outputs(model, loaded, image)


def test_checkpoint_save_leaves_no_temporary_files(tmp_path):
    model = BokehNet(stage_config("stage1", backbone=TINY))
    save_checkpoint(model, tmp_path / "a.pt")
    save_checkpoint(model, tmp_path / "a.pt")       # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["a.pt"]


def test_checkpoint_config_override_must_fit_the_weights(tmp_path):
    model = randomised(BokehNet(stage_config("stage1", backbone=TINY)))
    save_checkpoint(model, tmp_path / "m.pt")
    exact = load_checkpoint(tmp_path / "m.pt", config=stage_config("stage1", backbone=TINY,
                                                                  render_mode="exact"))
    assert exact.config.render_mode == "exact"
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        load_checkpoint(tmp_path / "m.pt", config=stage_config("stage1"))   # paper-size backbone


def test_checkpoint_with_wrong_keys_fails_listing_the_keys(tmp_path):
    model = BokehNet(stage_config("stage1", backbone=TINY))
    save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    sd = payload["state_dict"]
    sd["radiance.conv9.weight"] = sd.pop("radiance.conv1.weight")
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.pt")
    message = str(info.value)
    assert re.search(r"missing keys: .*radiance\.conv1\.weight", message)
    assert re.search(r"unexpected keys: .*radiance\.conv9\.weight", message)


# --- the authors' BokehNet2 state dict --------------------------------------------------------

def to_author_key(key: str) -> str:
    """Our key -> the authors' (MidasNet_v1 inside BokehNet2), written independently of
    checkpoint.py from the structure of their model."""
    enc, dn = "defocus_net.encoder.", "defocus_net."
    if key.startswith(enc):
        rest = key[len(enc):]
        head, _, tail = rest.partition(".")
        if head == "conv1":
            return "midas.pretrained.layer1.0." + tail
        if head == "bn1":
            return "midas.pretrained.layer1.1." + tail
        if head == "layer1":
            return "midas.pretrained.layer1.4." + tail
        return "midas.pretrained." + rest                          # layer2..layer4
    if key.startswith(dn + "adapters."):
        i, tail = key[len(dn + "adapters."):].split(".", 1)
        return f"midas.scratch.layer{int(i) + 1}_rn.{tail}"
    if key.startswith(dn + "fusions."):
        i, unit, tail = key[len(dn + "fusions."):].split(".", 2)
        rcu = {"rcu_skip": "resConfUnit1", "rcu_out": "resConfUnit2"}[unit]
        return f"midas.scratch.refinenet{int(i) + 1}.{rcu}.{tail}"
    if key.startswith(dn + "head."):
        return "midas.scratch.output_conv." + key[len(dn + "head."):]
    assert key.startswith("radiance."), key
    return key


def author_state_dict(model: BokehNet) -> dict[str, torch.Tensor]:
    sd = {to_author_key(k): v.clone() for k, v in model.state_dict().items()}
    f = model.config.backbone.features
    # MidasNet builds refinenet4.resConfUnit1 but never calls it; the file still has it.
    for conv in ("conv1", "conv2"):
        sd[f"midas.scratch.refinenet4.resConfUnit1.{conv}.weight"] = torch.randn(f, f, 3, 3)
        sd[f"midas.scratch.refinenet4.resConfUnit1.{conv}.bias"] = torch.randn(f)
    return sd


@pytest.fixture
def tiny_inference() -> BokehNet:
    return randomised(BokehNet(stage_config("inference", backbone=TINY)), seed=5)


def test_author_key_names_cover_midas_and_radiance(tiny_inference):
    keys = set(author_state_dict(tiny_inference))
    for expected in ("midas.pretrained.layer1.0.weight", "midas.pretrained.layer1.1.running_var",
                     "midas.pretrained.layer1.4.0.conv2.weight", "midas.pretrained.layer4.0.downsample.0.weight",
                     "midas.scratch.layer4_rn.weight", "midas.scratch.refinenet1.resConfUnit1.conv2.bias",
                     "midas.scratch.refinenet4.resConfUnit2.conv1.weight",
                     "midas.scratch.output_conv.4.bias", "radiance.conv3.weight"):
        assert expected in keys
    assert not any(k.startswith("defocus_net.") for k in keys)


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "net-wrapped"])
def test_author_state_dict_loads_and_gives_identical_outputs(tmp_path, image, tiny_inference, wrapped):
    sd = author_state_dict(tiny_inference)
    torch.save({"net": sd, "optimizer": {}} if wrapped else sd, tmp_path / "authors.pth")
    loaded = load_checkpoint(tmp_path / "authors.pth", config=tiny_inference.config).eval()
    assert loaded.config == tiny_inference.config
    assert_same_outputs(tiny_inference, loaded, image)


def test_author_state_dict_defaults_to_the_paper_inference_preset(tmp_path):
    torch.save({"midas.scratch.layer1_rn.weight": torch.zeros(1)}, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="inference model"):
        load_checkpoint(tmp_path / "a.pth")


def _expect_author_error(tmp_path, sd, config, *fragments):
    torch.save(sd, tmp_path / "authors.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "authors.pth", config=config)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_author_state_dict_with_a_missing_key_names_it(tmp_path, tiny_inference):
    sd = author_state_dict(tiny_inference)
    del sd["midas.scratch.output_conv.4.bias"]
    # Named as the model's parameter (it is absent from the file, so it has no key there).
    _expect_author_error(tmp_path, sd, tiny_inference.config, "missing keys", "defocus_net.head.4.bias")


def test_author_state_dict_with_an_unexpected_key_names_it(tmp_path, tiny_inference):
    sd = author_state_dict(tiny_inference)
    sd["midas.scratch.extra_conv.weight"] = torch.zeros(3)
    sd["midas.scratch.layer1_rn.bias"] = torch.zeros(TINY.features)     # maps, but no such param
    _expect_author_error(tmp_path, sd, tiny_inference.config, "unexpected keys",
                         "midas.scratch.extra_conv.weight", "midas.scratch.layer1_rn.bias")


def test_author_state_dict_with_a_mis_shaped_key_names_it(tmp_path, tiny_inference):
    sd = author_state_dict(tiny_inference)
    sd["midas.scratch.layer2_rn.weight"] = torch.zeros(TINY.features, 7, 3, 3)
    _expect_author_error(tmp_path, sd, tiny_inference.config, "mis-shaped keys",
                         "midas.scratch.layer2_rn.weight")


# --- files that are not checkpoints -----------------------------------------------------------

def test_random_bytes_give_checkpoint_error(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_non_dict_and_foreign_dict_payloads_give_checkpoint_error(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="neither a bokehlite checkpoint nor"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_missing_file_gives_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
