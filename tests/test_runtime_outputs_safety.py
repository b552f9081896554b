"""bokeh-render replaces only files it wrote, and the EXIF it writes says the pixels are upright.

A user's photo that merely has an output's name (x_edit.jpg beside x.jpg with --suffix _edit,
or a file already in -o) is never overwritten: the run stops before rendering anything. An
orientation stored as LONG is reset as one stored as SHORT is, so no viewer turns twice.
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bokehlite.runtime.errors import OutputError
from bokehlite.runtime.header import exif_orientation, exif_upright
from bokehlite.runtime.photo import decode_photo, encode_photo


@pytest.fixture(scope="session")
def model(tiny_export) -> Path:
    return tiny_export("gpu")[0]


def render(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def photo(path: Path, seed: int, size=(36, 52)) -> bytes:
    assert cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))
    return path.read_bytes()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- defect 16: a user's file with an output's name ------------------------------------------

def test_collect_jobs_refuses_a_users_photo_that_merely_has_the_suffix(tmp_path):
    photo(tmp_path / "x.jpg", 0)
    photo(tmp_path / "x_edit.jpg", 1)                  # the user's own edit, not ours
    from bokehlite.runtime.cli import collect_jobs
    with pytest.raises(OutputError) as caught:
        collect_jobs([str(tmp_path)], tmp_path, "_edit")
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "x_edit.jpg") in message
    assert "-o" in message and "--suffix" in message


def test_a_users_photo_with_the_suffix_beside_its_original_is_never_overwritten(model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "x.jpg", 0)
    photo(folder / "x_edit.jpg", 1)
    before = snapshot(folder)
    proc = render(folder, "-o", folder, "--suffix", "_edit", "-m", model)
    err = lines(proc.stderr)
    assert proc.returncode == 2 and proc.stdout == "" and len(err) == 1, proc.stderr
    assert err[0].startswith("bokeh-render: error: ") and str(folder / "x_edit.jpg") in err[0]
    assert "--suffix" in err[0] and "Traceback" not in proc.stderr
    assert snapshot(folder) == before                   # nothing rendered, nothing replaced


def test_a_users_file_already_in_the_output_folder_is_never_overwritten(model, tmp_path):
    photo(tmp_path / "a.png", 0)
    out = tmp_path / "out"
    out.mkdir()
    photo(out / "a.png", 2)                             # the user's, with the output's name
    before = snapshot(out)
    proc = render(tmp_path / "a.png", "-o", out, "-m", model)
    err = lines(proc.stderr)
    assert proc.returncode == 2 and len(err) == 1 and str(out / "a.png") in err[0], proc.stderr
    assert snapshot(out) == before


def test_our_earlier_output_is_rendered_over_until_someone_edits_it(model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "x.jpg", 0)
    for _ in range(2):                                  # a second run replaces the first one's output
        proc = render(folder, "-o", folder, "--suffix", "_b", "-m", model)
        assert proc.returncode == 0 and "rendered 1 of 1" in proc.stderr, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["x.jpg", "x_b.jpg"]
    edited = bytearray((folder / "x_b.jpg").read_bytes())
    edited[-10] ^= 0xFF                                 # an edit that kept the output's note
    (folder / "x_b.jpg").write_bytes(edited)
    proc = render(folder, "-o", folder, "--suffix", "_b", "-m", model)
    assert proc.returncode == 2 and str(folder / "x_b.jpg") in proc.stderr, proc.stderr
    assert (folder / "x_b.jpg").read_bytes() == edited


def test_a_users_photo_with_the_suffix_and_no_original_is_a_photo_to_render(model, tmp_path):
    photo(tmp_path / "y_edit.png", 3)
    proc = render(tmp_path, "-o", tmp_path, "--suffix", "_edit", "-m", model)
    assert proc.returncode == 0 and "rendered 1 of 1" in proc.stderr, proc.stderr
    assert (tmp_path / "y_edit_edit.png").is_file()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff", "bmp"])
def test_the_output_note_is_recognised_only_while_the_file_is_unchanged(fmt, tmp_path):
    from bokehlite.runtime.cli import replaceable
    from bokehlite.runtime.header import is_output, note_output
    from bokehlite.runtime.photo import Photo
    pixels = np.random.default_rng(4).integers(0, 255, (30, 20, 3), dtype=np.uint8)
    plain = encode_photo(Photo(pixels, fmt))
    noted = note_output(plain, fmt)
    assert is_output(noted) and not is_output(plain)
    np.testing.assert_array_equal(decode_photo(noted).pixels, decode_photo(plain).pixels)
    changed = bytearray(noted)
    changed[len(changed) // 2] ^= 1
    assert not is_output(bytes(changed))
    (tmp_path / "source").write_bytes(plain)
    (tmp_path / "copy").write_bytes(plain)              # a byte-for-byte copy of its photo: nothing lost
    assert replaceable(tmp_path / "copy", tmp_path / "source") and not replaceable(tmp_path / "copy")


# --- defect 17: an EXIF orientation stored as LONG ----------------------------------------------

def exif_block(end: str, kind: int, orientation: int = 6) -> bytes:
    """An EXIF APP1 payload by hand: a TIFF header and one IFD entry, 0x0112 of type `kind`."""
    magic = b"II*\x00" if end == "<" else b"MM\x00*"
    value = struct.pack(end + ("H" if kind == 3 else "I"), orientation).ljust(4, b"\x00")
    entry = struct.pack(end + "HHI", 0x0112, kind, 1) + value
    return b"Exif\x00\x00" + magic + struct.pack(end + "I", 8) + struct.pack(end + "H", 1) + entry + b"\x00" * 4


def oriented_jpeg(end: str, kind: int) -> bytes:
    """A 40x20 (w x h) JPEG stored sideways, with orientation 6: upright, it is 20x40."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = 255
    jpeg = cv2.imencode(".jpg", stored)[1].tobytes()
    app1 = exif_block(end, kind)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", 2 + len(app1)) + app1 + jpeg[2:]


def entry_of(exif: bytes, end: str) -> tuple[int, int, bytes]:
    """(type, count, value bytes) of the first IFD entry, as written."""
    tiff = exif[6:] if exif[:6] == b"Exif\x00\x00" else exif
    kind, count = struct.unpack(end + "HI", tiff[12:18])
    return kind, count, tiff[18:22]


@pytest.mark.parametrize("end", ["<", ">"])
@pytest.mark.parametrize("kind", [3, 4], ids=["SHORT", "LONG"])
def test_exif_upright_resets_orientation_stored_as_short_or_long(end, kind):
    upright = exif_upright(exif_block(end, kind))
    assert exif_orientation(upright) == 1
    assert entry_of(upright, end) == entry_of(exif_block(end, kind, orientation=1), end)   # same type, value 1


@pytest.mark.parametrize("end", ["<", ">"])
@pytest.mark.parametrize("kind", [3, 4], ids=["SHORT", "LONG"])
def test_the_written_exif_says_upright_after_the_pixels_are_turned(end, kind):
    read = decode_photo(oriented_jpeg(end, kind))
    assert read.pixels.shape == (40, 20, 3)                         # turned upright on reading
    written = encode_photo(read)
    _, kinds, blobs = cv2.imdecodeWithMetadata(np.frombuffer(written, np.uint8), cv2.IMREAD_UNCHANGED)
    exif = dict(zip(np.ravel(kinds).tolist(), (np.asarray(b, np.uint8).tobytes() for b in blobs)))
    assert exif_orientation(exif[cv2.IMAGE_METADATA_EXIF]) == 1
    assert entry_of(exif[cv2.IMAGE_METADATA_EXIF], end)[2] == entry_of(exif_block(end, kind, 1), end)[2]
    assert decode_photo(written).pixels.shape == (40, 20, 3)        # not turned a second time


def test_bokeh_render_writes_a_long_orientation_as_upright(model, tmp_path):
    (tmp_path / "side.jpg").write_bytes(oriented_jpeg("<", 4))
    proc = render(tmp_path / "side.jpg", "-o", tmp_path / "out", "-m", model)
    assert proc.returncode == 0, proc.stderr
    written = (tmp_path / "out" / "side.jpg").read_bytes()
    # A viewer applies the EXIF orientation (as OpenCV's default read does): upright once, not twice.
    assert cv2.imdecode(np.frombuffer(written, np.uint8), cv2.IMREAD_COLOR).shape == (40, 20, 3)
    _, kinds, blobs = cv2.imdecodeWithMetadata(np.frombuffer(written, np.uint8), cv2.IMREAD_UNCHANGED)
    exif = dict(zip(np.ravel(kinds).tolist(), (np.asarray(b, np.uint8).tobytes() for b in blobs)))
    assert exif_orientation(exif[cv2.IMAGE_METADATA_EXIF]) == 1
