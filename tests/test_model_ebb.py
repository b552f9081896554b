"""EBB! folders (pairing, skipping, the validation split, crops) and the synthetic generator."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from bokehlite.model.ebb import EbbError, TrainCrops, ValPairs, scan_ebb, split_val
from bokehlite.model.synthetic_ebb import ebb_scene, render_bokeh, write_synthetic_ebb


def write_jpg(path, height=40, width=60, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def ebb_folder(root, stems=range(12), size=(40, 60)):
    for i in stems:
        write_jpg(root / "original" / f"{i}.jpg", *size, seed=i)
        write_jpg(root / "bokeh" / f"{i}.jpg", *size, seed=100 + i)
    return root


def test_pairs_by_stem_and_lists_unpaired_and_unreadable_files(tmp_path):
    root = ebb_folder(tmp_path, range(5))
    write_jpg(root / "original" / "7.jpg")                       # no bokeh/7
    write_jpg(root / "bokeh" / "8.jpg")                          # no original/8
    (root / "original" / "3.jpg").write_bytes(b"not a jpeg")     # unreadable: pair 3 goes
    (root / "bokeh" / "4.jpg").write_bytes(b"")                  # empty: pair 4 goes
    (root / "original" / "notes.txt").write_text("ignored")
    scan = scan_ebb(root)
    assert [p.stem for p in scan.pairs] == ["0", "1", "2"]
    why = {path.relative_to(root).as_posix(): reason for path, reason in scan.skipped}
    assert set(why) == {"original/7.jpg", "bokeh/8.jpg", "original/3.jpg", "bokeh/4.jpg"}
    assert "no bokeh/7" in why["original/7.jpg"] and "empty" in why["bokeh/4.jpg"]


def test_a_folder_not_in_the_ebb_layout_is_refused_with_a_reason(tmp_path):
    with pytest.raises(EbbError, match="not found"):
        scan_ebb(tmp_path / "missing")
    (tmp_path / "original").mkdir()
    with pytest.raises(EbbError, match="no bokeh/ folder"):
        scan_ebb(tmp_path)


def test_validation_takes_the_highest_numbered_pairs_in_numeric_order(tmp_path):
    scan = scan_ebb(ebb_folder(tmp_path, range(12)))
    train, val = split_val(scan.pairs, 3)
    assert [p.stem for p in val] == ["9", "10", "11"]                 # numeric: 10 > 9
    assert [p.stem for p in train] == [str(i) for i in range(9)]
    assert split_val(scan.pairs, 0) == (train + val, [])
    with pytest.raises(EbbError, match="leaves none to train"):
        split_val(scan.pairs, 12)


def test_crops_are_at_network_resolution_repeatable_per_epoch_and_cover_small_photos(tmp_path):
    pairs = scan_ebb(ebb_folder(tmp_path, range(3), size=(40, 60))).pairs
    crops = TrainCrops(pairs, crop=32, scale=0.25, seed=1)       # 128 px of photo, photo is 40x60
    a, b = crops[0]
    assert a.shape == b.shape == (128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(crops[0][0], a)                         # same (seed, epoch, index)
    crops.epoch = 1
    big = TrainCrops(scan_ebb(ebb_folder(tmp_path / "big", range(1), size=(200, 300))).pairs, 32, 0.5)
    windows = set()
    for epoch in range(6):
        big.epoch = epoch
        windows.add(big[0][0].tobytes())
    assert len(windows) > 1                                        # the window moves between epochs
    original, bokeh, ok = ValPairs(pairs)[1]
    assert ok and original.shape == (40, 60, 3)


def test_an_undecodable_pair_is_named_and_replaced_in_training_and_left_out_of_validation(tmp_path, capsys):
    root = ebb_folder(tmp_path, range(3))
    data = (root / "original" / "1.jpg").read_bytes()
    (root / "original" / "1.jpg").write_bytes(data[:40] + b"\xff\xd9")   # cut inside, its end marker kept
    pairs = scan_ebb(root).pairs
    assert [p.stem for p in pairs] == ["0", "1", "2"]
    assert TrainCrops(pairs, 32, 0.25)[1][0].shape == (128, 128, 3)     # pair 2 stands in
    assert "original/1.jpg" in capsys.readouterr().err
    assert ValPairs(pairs)[1][2] is False


def test_synthetic_bokeh_keeps_the_subject_sharp_and_blurs_the_far_wall():
    image, disparity, focus = ebb_scene(128, 192, seed=3)
    bokeh = render_bokeh(image, disparity, focus, aperture=0.12 * 128)
    err = np.abs(bokeh - image).mean(-1)
    subject, far = disparity == focus, disparity == disparity.min()
    assert subject.sum() > 500 and far.sum() > 2000
    assert err[subject].mean() < 0.02
    assert err[far].mean() > 2 * err[subject].mean()


def test_synthetic_set_has_the_ebb_layout_and_scans_clean(tmp_path):
    write_synthetic_ebb(tmp_path, 3, (64, 96), seed=5)
    scan = scan_ebb(tmp_path)
    assert [p.stem for p in scan.pairs] == ["0", "1", "2"] and not scan.skipped
    assert cv2.imread(str(tmp_path / "bokeh" / "2.jpg")).shape == (64, 96, 3)
    assert cv2.imread(str(tmp_path / "disparity" / "0.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_data_and_cli_modules_import_without_torch():
    code = ("import sys, bokehlite.model.ebb, bokehlite.model.train_cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'kornia')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_training_file_is_named_and_skipped_at_scan_time(tmp_path, suffix):
    root = ebb_folder(tmp_path, range(4), size=(120, 160))
    cut = root / "bokeh" / f"2{suffix}"
    (root / "bokeh" / "2.jpg").unlink()
    data = cv2.imencode(suffix, np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8))[1]
    cut.write_bytes(data.tobytes()[:3000])                      # as a download cut short leaves it
    scan = scan_ebb(root)
    assert [p.stem for p in scan.pairs] == ["0", "1", "3"]
    assert [(p.name, "truncated" in why) for p, why in scan.skipped] == [(cut.name, True)]


def test_synthetic_ebb_writes_no_carriage_returns_into_a_log(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bokehlite.model.synthetic_ebb", str(tmp_path / "ebb"),
                           "--count", "2", "--size", "64x96"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and proc.stderr.strip().splitlines() == [f"wrote 2 pairs to {tmp_path / 'ebb'}"]
