"""Checkpoints: our format round trip, the authors' BokehNet2 state dict, bad files."""
import dataclasses
import os
import random
import re

import pytest
import torch

from bokehlite.model import (BackboneConfig, BokehNet, CheckpointError, RadianceConfig,
                             load_checkpoint, load_radiance, save_checkpoint, stage_config)
from bokehlite.model.checkpoint import load_checkpoint_report

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

@pytest.mark.parametrize("preset,overrides", [("cpu-track", {}), ("cpu-track", {"residual_design": "full-res"}),
                                              ("inference", {})], ids=["cpu-track", "cpu-track-full-res", "inference"])
def test_checkpoint_round_trip_is_bit_exact(tmp_path, image, preset, overrides):
    model = randomised(BokehNet(stage_config(preset, backbone=TINY, **overrides)))
    path = tmp_path / "model.pt"
    save_checkpoint(model, path)
    loaded = load_checkpoint(path).eval()
    assert loaded.config == model.config
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].dtype == theirs[k].dtype for k in ours)
    assert_same_outputs(model, loaded, image)


OLD_RESIDUAL_KEYS = {f"residual.conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}


def test_a_cpu_track_checkpoint_from_before_residual_designs_loads_with_its_full_res_module(tmp_path, image):
    """A file written before `residual_design` existed: its config has no such field and its
    residual keys are the three full-resolution convs 6 -> 8 -> 8 -> 3."""
    model = randomised(BokehNet(stage_config("cpu-track", backbone=TINY, residual_design="full-res")))
    payload = {"format": "bokehlite", "version": 1, "config": model.config.to_dict(),
               "state_dict": model.state_dict()}
    del payload["config"]["residual_design"]
    assert payload["config"]["residual_features"] == 8
    assert {k for k in payload["state_dict"] if k.startswith("residual.")} == OLD_RESIDUAL_KEYS
    assert tuple(payload["state_dict"]["residual.conv1.weight"].shape) == (8, 6, 3, 3)
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt").eval()
    assert loaded.config.residual_design == "full-res" and loaded.config == model.config
    assert_same_outputs(model, loaded, image)


def test_a_full_res_checkpoint_forced_into_the_low_res_design_lists_the_residual_keys(tmp_path):
    _, path = saved(tmp_path, "cpu-track", residual_design="full-res")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, stage_config("cpu-track", backbone=TINY))
    message = str(err.value)
    assert "missing keys: residual.photo.weight" in message and "unexpected keys: residual.conv3.weight" in message


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


# --- a new defocus head (stage 3 from a stage-1/2 checkpoint) --------------------------------

HEAD = ("defocus_net.head.4.bias", "defocus_net.head.4.weight")


def saved(tmp_path, preset: str, seed: int = 0, name: str = "m.pt", **overrides):
    model = randomised(BokehNet(stage_config(preset, backbone=TINY, **overrides)), seed=seed)
    save_checkpoint(model, tmp_path / name)
    return model, tmp_path / name


@pytest.mark.parametrize("source,target", [("stage1", "stage3"), ("stage3", "stage2")],
                         ids=["6-to-1", "1-to-6"])
def test_replace_head_loads_everything_else_and_starts_the_head_like_a_fresh_model(
        tmp_path, source, target):
    model, path = saved(tmp_path, source)
    config = stage_config(target, backbone=TINY)
    torch.manual_seed(7)
    fresh = BokehNet(config).state_dict()
    torch.manual_seed(7)
    loaded, replaced = load_checkpoint_report(path, config, replace_head=True)
    assert replaced == list(HEAD)
    assert loaded.config == config
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for k in ours:
        if k in HEAD:
            assert theirs[k].shape[0] == config.defocus_channels and torch.equal(theirs[k], fresh[k]), k
        else:
            assert torch.equal(ours[k], theirs[k]), k
    if config.defocus_channels == 1:
        assert float(theirs["defocus_net.head.4.bias"]) == 0.5


def test_head_mismatch_without_the_flag_lists_the_head_keys_and_names_the_flag(tmp_path):
    _, path = saved(tmp_path, "stage1")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, stage_config("stage3", backbone=TINY))
    message = str(info.value)
    assert re.search(r"mis-shaped keys: .*defocus_net\.head\.4\.weight \(6, 8, 1, 1\) != \(1, 8, 1, 1\)", message)
    assert "defocus_net.head.4.bias (6,) != (1,)" in message
    assert "replace_head=True" in message and "\n" not in message
    assert "train-bokeh --stage 3 --init FILE" in message and "export-tflite --track cpu" in message   # the CLI's way


def test_replace_head_with_a_fitting_head_replaces_nothing(tmp_path, image):
    model, path = saved(tmp_path, "stage1")
    loaded, replaced = load_checkpoint_report(path, replace_head=True)
    assert replaced == []
    assert_same_outputs(model, loaded.eval(), image)


def test_replace_head_keeps_every_other_key_strict(tmp_path):
    _, path = saved(tmp_path, "stage1")
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    sd["defocus_net.extra.weight"] = torch.zeros(3)
    sd["radiance.conv3.weight"] = torch.zeros(2, 16, 1, 1)            # out channels, but not the head
    del sd["defocus_net.adapters.0.weight"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_report(tmp_path / "bad.pt", stage_config("stage3", backbone=TINY), replace_head=True)
    message = str(info.value)
    assert re.search(r"missing keys: defocus_net\.adapters\.0\.weight", message)
    assert re.search(r"unexpected keys: defocus_net\.extra\.weight", message)
    assert re.search(r"mis-shaped keys: radiance\.conv3\.weight", message)
    assert "head.4" not in message                     # the head itself was replaceable


def test_replace_head_does_not_cover_a_head_of_another_width(tmp_path):
    _, path = saved(tmp_path, "stage1")
    wider = dataclasses.replace(TINY, head_features=12)
    with pytest.raises(CheckpointError, match=r"mis-shaped keys: .*defocus_net\.head\.4\.weight"):
        load_checkpoint_report(path, stage_config("stage3", backbone=wider), replace_head=True)


def test_replace_head_turns_the_authors_one_channel_head_into_six_layers(tmp_path, tiny_inference):
    torch.save({"net": author_state_dict(tiny_inference)}, tmp_path / "authors.pth")
    config = stage_config("stage1", backbone=TINY)
    with pytest.raises(CheckpointError, match=r"midas\.scratch\.output_conv\.4\.weight .*replace_head"):
        load_checkpoint(tmp_path / "authors.pth", config)
    loaded, replaced = load_checkpoint_report(tmp_path / "authors.pth", config, replace_head=True)
    assert replaced == list(HEAD)
    ours, theirs = tiny_inference.state_dict(), loaded.state_dict()
    assert theirs["defocus_net.head.4.weight"].shape[0] == 6
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k not in HEAD)


# --- just the radiance module ---------------------------------------------------------------

def assert_same_radiance(expected, actual):
    ours, theirs = expected.state_dict(), actual.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x[..., 0, 0] = 1.0                                                 # a bright pixel
    with torch.no_grad():
        assert torch.equal(expected(x), actual(x))


def test_load_radiance_reads_our_config_and_weights_without_building_bokehnet(tmp_path, monkeypatch):
    cfg = RadianceConfig(hidden=8, alpha=2.0, threshold=0.9)
    model, path = saved(tmp_path, "stage1", radiance=cfg)

    def refuse(*args, **kwargs):
        raise AssertionError("load_radiance must not build a BokehNet")
    monkeypatch.setattr(BokehNet, "__init__", refuse)
    radiance = load_radiance(path)
    assert radiance.cfg == cfg and radiance.conv1.weight.shape[0] == 8
    assert_same_radiance(model.radiance, radiance)


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "net-wrapped"])
def test_load_radiance_reads_the_authors_weights_with_the_width_from_conv1(tmp_path, monkeypatch, wrapped):
    model = randomised(BokehNet(stage_config("inference", backbone=TINY,
                                             radiance=RadianceConfig(hidden=12))), seed=2)
    sd = author_state_dict(model)
    torch.save({"net": sd} if wrapped else sd, tmp_path / "authors.pth")
    monkeypatch.setattr(BokehNet, "__init__", lambda *a, **k: pytest.fail("built a BokehNet"))
    radiance = load_radiance(tmp_path / "authors.pth")
    assert radiance.cfg == RadianceConfig(hidden=12)              # the paper's threshold, alpha, beta
    assert_same_radiance(model.radiance, radiance)


def test_load_radiance_lists_missing_unexpected_and_mis_shaped_radiance_keys(tmp_path):
    _, path = saved(tmp_path, "stage1")
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    del sd["radiance.conv2.bias"]
    sd["radiance.conv4.weight"] = torch.zeros(1)
    sd["radiance.conv3.weight"] = torch.zeros(1, 5, 1, 1)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load_radiance(tmp_path / "bad.pt")
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("missing keys: radiance.conv2.bias", "unexpected keys: radiance.conv4.weight",
                     "mis-shaped keys: radiance.conv3.weight (1, 5, 1, 1) != (1, 16, 1, 1)"):
        assert fragment in message, (fragment, message)


def test_load_radiance_of_a_bad_file_gives_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_radiance(tmp_path / "nope.pt")
    (tmp_path / "noise.pt").write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_radiance(tmp_path / "noise.pt")
    torch.save({"midas.scratch.layer1_rn.weight": torch.zeros(1)}, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="missing keys: radiance.conv1.weight"):
        load_radiance(tmp_path / "a.pth")


# --- files that are not checkpoints -----------------------------------------------------------

def test_random_bytes_give_checkpoint_error(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_a_text_file_is_called_not_a_weights_file_not_a_bare_number(tmp_path):
    path = tmp_path / "fake.pth"
    path.write_text("these are not the weights you are looking for\n" * 3)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"cannot read checkpoint {path}: not a PyTorch weights file")
    assert not any(word.isdigit() and len(word) > 4 for word in message.replace(":", " ").split())


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
