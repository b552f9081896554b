"""train-bokeh end to end on the synthetic EBB! set: learning, outputs, resume, torchrun,
the stage chains into export-tflite and bokeh-render, and bad inputs.

Runs are tiny (tiny backbone, 32-64 px crops at network resolution) and call the command's
main() in this process, except where a separate process is the point (torchrun, Ctrl-C).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bokehlite.host import default_threads
from bokehlite.model import BackboneConfig, BokehNet, load_checkpoint, save_checkpoint, stage_config
from bokehlite.model.distributed import Dist
from bokehlite.model.ebb import ValPairs, scan_ebb, split_val
from bokehlite.model.synthetic_ebb import write_synthetic_ebb
from bokehlite.model.train import validate
from bokehlite.model.train_cli import main
from test_model_losses import vgg19_state_dict

BIN = Path(sys.executable).parent
# One thread: on a shared 2-core machine, two threads meeting another busy process can
# make a step 100 times slower (each parallel region waits for a descheduled thread).
TINY = ["--backbone", "tiny", "--workers", "0", "--threads", "1"]
S1 = [*TINY, "--no-vgg", "--crop", "64", "--batch-size", "4", "--val-count", "4"]


def train(capsys, *args) -> tuple[int, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:            # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


@pytest.fixture(scope="module")
def ebb(tmp_path_factory) -> Path:
    """16 synthetic pairs at 256x384: 12 to train on, 4 held out."""
    return write_synthetic_ebb(tmp_path_factory.mktemp("ebb"), 16, (256, 384), seed=0)


@pytest.fixture(scope="module")
def stage1(ebb, tmp_path_factory):
    """A tiny stage-1 run: 60 steps of 4 crops of 64x64 (network resolution), 3 steps an
    epoch, the learning rate from 2e-3 down by 0.3 every 10 epochs.

    The other in-process runs keep these crop and batch sizes where they can: the first
    step at a new shape costs seconds of oneDNN set-up."""
    run = tmp_path_factory.mktemp("runs") / "stage1"
    code = main([str(ebb), "--stage", "1", "--out", str(run), *S1, "--max-steps", "60", "--val-every", "20",
                 "--log-every", "5", "--lr", "2e-3", "--lr-step-size", "10", "--lr-gamma", "0.3"])
    assert code == 0
    return run


def test_stage1_loss_falls_and_held_out_psnr_beats_identity_and_the_untrained_net(ebb, stage1):
    losses = [r["loss"] for r in records(stage1, "train")]
    assert len(losses) == 12
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:4])
    best = max(records(stage1, "val"), key=lambda r: r["val_psnr"])
    torch.manual_seed(0)                                   # the run's --seed: its step-0 weights
    untrained = BokehNet(stage_config("stage1", backbone=BackboneConfig.tiny()))
    loader = torch.utils.data.DataLoader(ValPairs(split_val(scan_ebb(ebb).pairs, 4)[1]), batch_size=1)
    before = validate(untrained, loader, Dist(), None)
    assert before["identity_psnr"] == pytest.approx(best["identity_psnr"])
    assert best["val_psnr"] > best["identity_psnr"] + 0.5
    assert best["val_psnr"] > before["val_psnr"] + 0.5
    assert best["val_ssim"] > best["identity_ssim"]


def test_run_folder_holds_loadable_checkpoints_metrics_and_run_json(stage1):
    assert sorted(p.name for p in stage1.iterdir()) == ["best.pth", "last.pth", "metrics.jsonl", "run.json"]
    model = load_checkpoint(stage1 / "best.pth")
    assert model.config.name == "stage1" and model.config.backbone == BackboneConfig.tiny()
    payload = torch.load(stage1 / "last.pth", weights_only=True)
    assert (payload["step"], payload["epoch"]) == (60, 20)
    assert {"optimizer", "lr_scheduler", "state_dict", "config"} <= set(payload)
    assert payload["losses"]["perceptual"] == "off (--no-vgg)" and payload["losses"]["weights"]["vgg"] == 0
    train_records = records(stage1, "train")
    assert [r["step"] for r in train_records] == list(range(5, 61, 5))
    assert {"step", "loss", "l1", "ssim", "grad", "images_per_s", "lr"} <= set(train_records[0])
    val = records(stage1, "val")
    assert [r["step"] for r in val] == [20, 40, 60]
    assert {"val_psnr", "val_ssim"} <= set(val[0])
    best = max(val, key=lambda r: r["val_psnr"])["step"]
    assert torch.load(stage1 / "best.pth", weights_only=True)["step"] == best
    info = json.loads((stage1 / "run.json").read_text())
    assert info["command"][0] == "train-bokeh" and "--no-vgg" in info["command"]
    assert info["versions"]["torch"].startswith("2.13") and info["status"] == "finished"
    assert "highest-numbered" in info["data"]["validation"]


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(ebb, tmp_path, capsys):
    common = [ebb, "--stage", "1", *S1, "--log-every", "1"]       # 3 steps an epoch
    assert train(capsys, *common, "--out", tmp_path / "straight", "--max-steps", 6)[0] == 0
    assert train(capsys, *common, "--out", tmp_path / "split", "--max-steps", 4)[0] == 0   # mid-epoch
    code, err = train(capsys, "--resume", "--out", tmp_path / "split", "--max-steps", 6)
    assert code == 0 and "resuming" in err and "at step 4 (epoch 1)" in err
    a = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    assert b["step"] == 6
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert [r["step"] for r in records(tmp_path / "split", "train")] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in records(tmp_path / "split", "train")] == \
        pytest.approx([r["loss"] for r in records(tmp_path / "straight", "train")])
    info = json.loads((tmp_path / "split" / "run.json").read_text())
    assert [r["from_step"] for r in info["resumes"]] == [4]
    code, err = train(capsys, "--resume", "--out", tmp_path / "split", "--crop", "32")
    assert code == 2 and "--crop cannot change on --resume" in err


def test_ctrl_c_saves_last_pth_and_resume_carries_on_without_repeating_a_step(ebb, tmp_path):
    run = tmp_path / "run"
    cmd = [str(BIN / "train-bokeh"), str(ebb), "--stage", "1", *TINY, "--no-vgg", "--crop", "32",
           "--batch-size", "2", "--val-count", "2", "--log-every", "1", "--max-steps", "1000", "--out", str(run)]
    # As from a terminal: pytest-xdist's workers ignore SIGINT, and a child would inherit that.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and len(records(run, "train") if (run / "metrics.jsonl").exists() else []) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "train-bokeh: interrupted" in err and "continue with train-bokeh --resume" in err
    stopped = torch.load(run / "last.pth", weights_only=True)["step"]
    assert stopped >= 3
    out = subprocess.run([str(BIN / "train-bokeh"), "--resume", "--out", str(run), "--max-steps", str(stopped + 2)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    steps = [r["step"] for r in records(run, "train")]
    assert steps == list(range(1, stopped + 3))
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_torchrun_with_two_processes_trains_in_sync_and_only_rank_0_writes(ebb, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "train-bokeh"),
                          str(ebb), "--stage", "1", *TINY[:4], "--no-vgg", "--crop", "32", "--batch-size", "2",
                          "--val-count", "3", "--log-every", "1", "--max-steps", "4", "--out", str(run)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in run.iterdir()) == ["best.pth", "last.pth", "metrics.jsonl", "run.json"]
    assert [r["step"] for r in records(run, "train")] == [1, 2, 3, 4]
    # After epoch 0 (3 steps) and at the end; pairs 0 and 2 on rank 0, pair 1 on rank 1.
    assert [(r["step"], r["val_count"]) for r in records(run, "val")] == [(3, 3), (4, 3)]
    end = records(run, "end")
    assert end == [dict(end[0], world_size=2, ranks_in_sync=True)]
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2
    assert info["threads_per_process"] == max(1, default_threads() // 2)      # cores shared out
    assert out.stderr.count("done at step 4") == 1                     # rank 1 says nothing
    # 12 training pairs over 2 processes x 2 crops: 3 steps make an epoch.
    payload = torch.load(run / "last.pth", weights_only=True)
    assert (payload["epoch"], payload["epoch_step"], payload["world_size"]) == (1, 1, 2)
    load_checkpoint(run / "best.pth")


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(vgg19_state_dict(), path)
    return path


def test_stage3_from_stage1_replaces_the_head_keeps_frozen_features_and_validates_full_size(
        ebb, stage1, vgg_file, tmp_path, capsys):
    run = tmp_path / "stage3"
    code, err = train(capsys, ebb, "--stage", "3", "--init", stage1 / "best.pth", "--out", run, *TINY[2:],
                      "--vgg19-weights", vgg_file, "--crop", "64", "--batch-size", "4", "--val-count", "4",
                      "--max-steps", "2", "--log-every", "1")
    assert code == 0, err
    assert "replaced the 6-channel defocus head by a fresh 1-channel head" in err
    info = json.loads((run / "run.json").read_text())
    assert info["init"]["replaced_keys"] == ["defocus_net.head.4.bias", "defocus_net.head.4.weight"]
    assert info["model"]["freeze"] == "features"
    assert info["model"]["backbone"] == "tiny"          # what --init built, though no --backbone was given
    model, before = load_checkpoint(run / "best.pth"), load_checkpoint(stage1 / "best.pth")
    assert model.config.name == "stage3" and model.config.defocus_channels == 1
    after, start = model.state_dict(), before.state_dict()
    assert torch.equal(after["defocus_net.encoder.conv1.weight"], start["defocus_net.encoder.conv1.weight"])
    assert torch.equal(after["defocus_net.fusions.0.rcu_out.conv1.weight"],
                       start["defocus_net.fusions.0.rcu_out.conv1.weight"])
    assert after["defocus_net.head.4.weight"].abs().sum() > 0           # the new head, from zero
    assert not torch.equal(after["radiance.conv1.weight"], start["radiance.conv1.weight"])
    assert "vgg" in records(run, "train")[0]
    assert torch.load(run / "last.pth", weights_only=True)["losses"]["perceptual"].startswith("on: VGG19")
    (val,) = records(run, "val")
    assert {"val_psnr_full", "val_ssim_full", "identity_psnr_full"} <= set(val)


def test_cpu_track_from_stage1_exports_and_renders(ebb, stage1, tmp_path, capsys):
    run = tmp_path / "cpu"
    code, err = train(capsys, ebb, "--stage", "cpu-track", "--init", stage1 / "best.pth", "--out", run,
                      *TINY[2:], "--no-vgg", "--crop", "64", "--batch-size", "4", "--val-count", "4",
                      "--max-steps", "3", "--lr", "1e-3")
    assert code == 0, err
    model, start = load_checkpoint(run / "best.pth"), load_checkpoint(stage1 / "best.pth").state_dict()
    assert model.config.name == "cpu-track"
    assert model.config.residual_design == "low-res"        # a stage-1 --init gets today's module
    for key, value in model.state_dict().items():        # --freeze base: only the residual trains
        if not key.startswith("residual."):
            assert torch.equal(value, start[key]), key
    assert model.residual.last.weight.abs().sum() > 0      # it starts at zero (the identity)

    exported = subprocess.run([str(BIN / "export-tflite"), "--track", "cpu", "--checkpoint", str(run / "best.pth"),
                               "--input-size", "128x256", "-o", str(tmp_path / "art"), "--json"],
                              capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    report = json.loads(exported.stdout)
    assert report["weights"] == "trained" and report["checkpoint"] == str(run / "best.pth")
    photo = ebb / "original" / "15.jpg"
    rendered = subprocess.run([str(BIN / "bokeh-render"), str(photo), "-m", str(tmp_path / "art" / "bokeh_cpu_128x256.tflite"),
                               "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    result, original = cv2.imread(str(tmp_path / "out" / "15.jpg")), cv2.imread(str(photo))
    assert result.shape == original.shape
    assert np.abs(result.astype(float) - original).mean() > 1.0

    # Untrained weights flatter quantization: the int8 gate must hold for trained ones too.
    exported = subprocess.run([str(BIN / "export-tflite"), "--track", "cpu", "--precision", "int8",
                               "--checkpoint", str(run / "best.pth"), "--input-size", "128x256",
                               "-o", str(tmp_path / "art"), "--json"], capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    report = json.loads(exported.stdout)
    assert report["weights"] == "trained" and report["precision"] == "int8"
    worst = report["parity"]["real_photos"]["worst"]
    assert worst["bokeh_psnr"] >= 30.0 and worst["defocus_mae"] <= 0.02


def photo_folder(root: Path, stems, size=(64, 96)) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("original", "bokeh"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in stems:
            cv2.imwrite(str(root / sub / f"{i}.jpg"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def test_unpaired_and_unreadable_files_are_named_and_skipped(tmp_path, capsys):
    root = photo_folder(tmp_path / "data", range(7))
    cv2.imwrite(str(root / "original" / "9.jpg"), np.zeros((64, 96, 3), np.uint8))     # unpaired
    (root / "bokeh" / "2.jpg").write_bytes(b"not an image")                          # unreadable
    data = (root / "original" / "3.jpg").read_bytes()
    (root / "original" / "3.jpg").write_bytes(data[:40])                             # cut short: truncated
    (root / "original" / "4.jpg").write_bytes(data[:40] + b"\xff\xd9")             # cut inside: cannot be decoded
    code, err = train(capsys, root, "--stage", "1", "--out", tmp_path / "run", *S1[:-1], "1", "--max-steps", "1")
    assert code == 0, err
    assert f"skipping {root / 'original' / '9.jpg'}: no bokeh/9.* to pair it with" in err
    assert f"skipping {root / 'bokeh' / '2.jpg'}" in err
    assert f"skipping {root / 'original' / '3.jpg'}: truncated file" in err
    assert f"cannot decode {root / 'original' / '4.jpg'}" in err
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["data"]["train_pairs"] == 4 and info["data"]["val_pairs"] == 1
    assert len(info["data"]["skipped"]) == 3


def test_cpu_track_trains_the_full_res_design_on_request_and_continues_it_from_its_checkpoint(
        ebb, stage1, tmp_path, capsys):
    args = [*TINY[2:], "--no-vgg", "--crop", "64", "--batch-size", "4", "--val-count", "4", "--max-steps", "1",
            "--lr", "1e-3"]
    code, err = train(capsys, ebb, "--stage", "cpu-track", "--init", stage1 / "best.pth", "--out", tmp_path / "a",
                      "--residual-design", "full-res", *args)
    assert code == 0, err
    first = load_checkpoint(tmp_path / "a" / "last.pth")
    assert first.config.residual_design == "full-res" and first.config.residual_features == 8
    assert {k for k in first.state_dict() if k.startswith("residual.")} == {
        f"residual.conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    # Without the flag, a cpu-track --init keeps its own module.
    code, err = train(capsys, ebb, "--stage", "cpu-track", "--init", tmp_path / "a" / "last.pth",
                      "--out", tmp_path / "b", *args[:-2])     # one step, the preset's own learning rate
    assert code == 0, err
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["init"]["from_preset"] == "cpu-track"
    second = load_checkpoint(tmp_path / "b" / "last.pth")
    assert second.config.residual_design == "full-res"


def stage3_checkpoint(path: Path) -> Path:
    save_checkpoint(BokehNet(stage_config("stage3", backbone=BackboneConfig.tiny())), path)
    return path


BAD = [
    ("empty", lambda d: [d / "nothing", "--stage", "1", "--no-vgg"], "data folder not found"),
    ("no layout", lambda d: [d, "--stage", "1", "--no-vgg"], "not in the EBB! layout: no original/"),
    ("no pairs", lambda d: [photo_folder(d / "p", []), "--stage", "1", "--no-vgg"], "no usable training pairs"),
    ("no vgg", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1"], "pass --vgg19-weights FILE"),
    ("missing vgg file", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--vgg19-weights", d / "v.pth"],
     "--vgg19-weights: no such file"),
    ("val too big", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--no-vgg", "--val-count", "3"],
     "leaves none to train on"),
    ("amp on cpu", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--no-vgg", "--amp", "--device", "cpu"],
     "--amp needs CUDA"),
    ("cpu-track alone", lambda d: [photo_folder(d / "p", range(3)), "--stage", "cpu-track", "--no-vgg"],
     "pass --init CKPT"),
    ("nothing to resume", lambda d: ["--resume"], "nothing to resume"),
    ("residual design off the cpu track", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--no-vgg",
                                                     "--residual-design", "full-res"], "cpu-track only"),
    ("fewer than a batch", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--no-vgg", "--val-count", "1",
                                      "--batch-size", "4", "--crop", "32"], "fewer than one batch"),
    ("stage 2 from stage 3", lambda d: [photo_folder(d / "p", range(3)), "--stage", "2", "--no-vgg", "--val-count", "1",
                                        "--init", stage3_checkpoint(d / "s3.pth")], "has a 1-channel head"),
    ("bad crop", lambda d: [photo_folder(d / "p", range(3)), "--stage", "1", "--no-vgg", "--crop", "100"],
     "multiple of 32"),
]


@pytest.mark.parametrize("make_args, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs_get_one_line_and_exit_2(make_args, message, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    args = make_args(tmp_path / "d")
    code, err = train(capsys, *args, "--out", tmp_path / "run", *TINY)
    assert code == 2
    assert message in err.strip().splitlines()[-1]
    assert err.strip().splitlines()[-1].startswith("train-bokeh: error:")


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pth").write_bytes(b"x")
    code, err = train(capsys, photo_folder(tmp_path / "p", range(3)), "--stage", "1", "--no-vgg",
                      "--out", tmp_path / "run")
    assert code == 2 and "already holds a run" in err


def test_cpu_track_training_judges_what_the_runtime_ships():
    """train-bokeh --stage cpu-track scores the Eq. 9 blend of the residual's output with the
    photo, the very pixels runtime/blend.py writes for a photo of the model's size."""
    from bokehlite.model.train import compared
    from bokehlite.runtime.blend import blend_full_resolution
    from bokehlite.runtime.fit import Letterbox

    config = stage_config("cpu-track")
    g = torch.Generator().manual_seed(0)
    image, bokeh, defocus = (torch.rand(1, c, 16, 24, generator=g) for c in (3, 3, 1))
    judged, _, _ = compared({"bokeh": bokeh, "defocus_map": defocus}, image, image, config)
    hwc = lambda t: t[0].permute(1, 2, 0).numpy().copy()      # noqa: E731
    shipped = np.empty((16, 24, 3), np.float32)
    blend_full_resolution(hwc(image), 1.0, hwc(bokeh), defocus[0, 0].numpy(), Letterbox.fit((16, 24), (16, 24)),
                          config.eta, config.tau, shipped)
    np.testing.assert_allclose(hwc(judged), shipped, atol=1e-5)
    assert float((judged - bokeh).abs().max()) > 0.1        # the blend is really in the judged output


def test_photos_smaller_than_the_crop_window_are_reported_once_and_in_run_json(ebb, tmp_path, capsys):
    run = tmp_path / "big_crop"         # --crop 96 at stage 1's scale 1/4: a 384 px window on 256x384 photos
    code, err = train(capsys, ebb, "--stage", "1", "--out", run, *TINY, "--no-vgg", "--crop", "96",
                      "--batch-size", "4", "--val-count", "4", "--max-steps", "1")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "upscaled" in line]
    assert len(warnings) == 1, err
    assert "12 of 12 training photos" in warnings[0] and "1.5x" in warnings[0] and "--crop 64 fits" in warnings[0]
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["upscaled"] == {"count": 12, "of": 12, "window": 384, "largest_factor": 1.5,
                                        "largest_window_that_fits": 256}
