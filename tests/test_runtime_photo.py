"""Photo files: formats, bit depths, channels, colour order, EXIF orientation, bad files."""
from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from bokehlite.runtime import BadImageError, Photo, read_photo, write_photo
from bokehlite.runtime.errors import OutputError
from bokehlite.runtime.header import exif_orientation, exif_upright, sniff
from bokehlite.runtime.photo import apply_orientation, decode_photo, encode_photo, write_all

FORMATS = ["jpeg", "png", "tiff", "webp", "bmp"]
EXT = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp"}


def stripes_bgr(h=30, w=45):
    """Red, green, blue vertical thirds, in OpenCV's BGR order."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3] = (0, 0, 255)
    img[:, w // 3: 2 * w // 3] = (0, 255, 0)
    img[:, 2 * w // 3:] = (255, 0, 0)
    return img


def exif_block(orientation: int) -> bytes:
    """A minimal big-endian TIFF-structured EXIF block holding only the orientation tag."""
    return (b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming a size, with no pixel data: only a header reader sees a size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_photo_returns_rgb_order_and_header_size_matches(tmp_path, fmt):
    path = tmp_path / f"stripes{EXT[fmt]}"
    assert cv2.imwrite(str(path), stripes_bgr())
    photo = read_photo(path)
    assert photo.format == fmt
    assert photo.pixels.shape == (30, 45, 3) and photo.pixels.dtype == np.uint8
    red, green, blue = photo.pixels[15, 5], photo.pixels[15, 22], photo.pixels[15, 40]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert green[1] > 200 and green[0] < 60 and green[2] < 60
    assert blue[2] > 200 and blue[0] < 60 and blue[1] < 60
    assert sniff(path.read_bytes()).size == (30, 45)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_then_read_keeps_colours_and_format(tmp_path, fmt):
    rgb = cv2.cvtColor(stripes_bgr(), cv2.COLOR_BGR2RGB)
    path = tmp_path / f"out{EXT[fmt]}"
    write_photo(path, Photo(rgb, fmt, lossless=True))
    assert sniff(path.read_bytes()).format == fmt
    back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    if fmt == "jpeg":     # lossy with chroma subsampling: compare the stripes' interiors
        for col in (5, 22, 40):
            assert np.abs(back[:, col].astype(int) - rgb[:, col]).max() <= 12
    else:
        np.testing.assert_array_equal(back, rgb)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_sixteen_bit_photos_stay_sixteen_bit(tmp_path, fmt):
    rgb16 = (np.random.default_rng(0).random((20, 31, 3)) * 65535).astype(np.uint16)
    path = tmp_path / f"deep{EXT[fmt]}"
    write_photo(path, Photo(rgb16, fmt))
    photo = read_photo(path)
    assert photo.pixels.dtype == np.uint16
    np.testing.assert_array_equal(photo.pixels, rgb16)


def test_grey_and_rgba_keep_their_channels(tmp_path):
    grey = np.arange(12 * 9, dtype=np.uint8).reshape(12, 9)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert read_photo(tmp_path / "g.png").pixels.shape == (12, 9)
    rgba = np.dstack([cv2.cvtColor(stripes_bgr(), cv2.COLOR_BGR2RGB),
                      np.linspace(0, 255, 30 * 45).reshape(30, 45).astype(np.uint8)])
    write_photo(tmp_path / "a.png", Photo(rgba, "png"))
    np.testing.assert_array_equal(read_photo(tmp_path / "a.png").pixels, rgba)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_opencv_does(fmt, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if fmt == "webp" else []
    ok, buf = cv2.imencodeWithMetadata(EXT[fmt], pixels, [cv2.IMAGE_METADATA_EXIF],
                                       [np.frombuffer(exif_block(orientation), np.uint8)], params)
    assert ok
    upright = cv2.imdecode(buf, cv2.IMREAD_COLOR)        # OpenCV's own EXIF handling, BGR
    photo = decode_photo(buf.tobytes())
    assert photo.pixels.shape[:2] == ((24, 16) if orientation >= 5 else (16, 24))
    np.testing.assert_array_equal(photo.pixels, cv2.cvtColor(upright, cv2.COLOR_BGR2RGB))


def test_exif_orientation_turns_rgba_without_touching_alpha():
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :5] = (255, 0, 0, 77)                  # a red, translucent left edge
    ok, buf = cv2.imencodeWithMetadata(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA),
                                       [cv2.IMAGE_METADATA_EXIF], [np.frombuffer(exif_block(6), np.uint8)])
    pixels = decode_photo(buf.tobytes()).pixels
    assert pixels.shape == (20, 10, 4)
    np.testing.assert_array_equal(pixels[:5], np.broadcast_to([255, 0, 0, 77], (5, 10, 4)))  # now on top


def test_orientation_reader_and_transforms_agree_with_definition():
    assert exif_orientation(exif_block(6)) == 6
    assert exif_orientation(b"Exif\x00\x00" + exif_block(8)) == 8
    assert exif_orientation(b"garbage") == 1
    a = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(apply_orientation(a, 6), np.rot90(a, -1))
    np.testing.assert_array_equal(apply_orientation(a, 8), np.rot90(a, 1))
    np.testing.assert_array_equal(apply_orientation(a, 3), np.rot90(a, 2))


# --- bad input: each gives one clear BadImageError -------------------------------------------

def test_missing_file_is_reported(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        read_photo(tmp_path / "nope.jpg")


def test_empty_file_is_reported(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(BadImageError, match="empty"):
        read_photo(tmp_path / "e.jpg")


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_jpeg_is_reported(tmp_path, keep):
    data = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))[1].tobytes()
    cut = data[:int(len(data) * keep)] if keep > 0 else data[:keep]
    (tmp_path / "t.jpg").write_bytes(cut)
    with pytest.raises(BadImageError, match="truncated or corrupt JPEG"):
        read_photo(tmp_path / "t.jpg")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    with pytest.raises(BadImageError, match="not an image"):
        read_photo(tmp_path / "notes.png")


def test_zero_by_zero_and_one_by_one_images_are_refused(tmp_path):
    with pytest.raises(BadImageError, match="0x0"):
        decode_photo(png_header_only(0, 0))
    one = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()
    with pytest.raises(BadImageError, match="1x1"):
        decode_photo(one)


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    # 50000 x 50000 claimed, no pixel data: refused for its size, not as corrupt.
    with pytest.raises(BadImageError, match=r"2500\.0 MP\), over the 100 MP limit"):
        decode_photo(png_header_only(50000, 50000))
    small = cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1].tobytes()
    assert decode_photo(small, max_pixels=10_000).pixels.shape == (100, 100, 3)
    with pytest.raises(BadImageError, match="over the 0.005 MP limit"):
        decode_photo(small, max_pixels=5_000)


def test_a_write_that_fails_after_it_started_leaves_no_file_behind(tmp_path):
    """The photo's bytes are already in a temporary file when its depth map's write fails:
    neither file, nor any temporary file, is left."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    data = encode_photo(Photo(rgb, "png"))
    with pytest.raises(OutputError, match="cannot write"):
        write_all({tmp_path / "x.png": data, tmp_path / "missing" / "x_depth.png": data})
    assert list(tmp_path.iterdir()) == []


def test_writes_reach_the_disk_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    write_photo(tmp_path / "x.png", Photo(np.zeros((4, 4, 3), np.uint8), "png"))
    assert synced[0].startswith(str(tmp_path / ".x.png.")) and synced[-1] == str(tmp_path)


def icc_profile() -> bytes:
    """A real ICC profile (LittleCMS's sRGB, through Pillow): libpng checks that a profile parses."""
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def tagged(fmt: str, rgb: np.ndarray, exif: bytes) -> bytes:
    ok, buf = cv2.imencodeWithMetadata(EXT[fmt], rgb[:, :, ::-1].copy(),
                                       [cv2.IMAGE_METADATA_ICCP, cv2.IMAGE_METADATA_EXIF],
                                       [np.frombuffer(icc_profile(), np.uint8), np.frombuffer(exif, np.uint8)], [])
    assert ok
    return buf.tobytes()


def metadata_of(data: bytes) -> dict[int, bytes]:
    _, kinds, blobs = cv2.imdecodeWithMetadata(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return {int(k): np.asarray(b).tobytes() for k, b in zip(np.ravel(kinds) if kinds is not None else (), blobs)}


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_colour_profile_and_exif_are_kept_with_the_orientation_made_upright(fmt):
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :5] = (255, 0, 0)
    photo = decode_photo(tagged(fmt, rgb, exif_block(6)))
    assert photo.pixels.shape == (20, 10, 3)                      # turned once, on reading
    written = metadata_of(encode_photo(photo))
    assert written[cv2.IMAGE_METADATA_ICCP] == icc_profile()
    assert written[cv2.IMAGE_METADATA_EXIF] == exif_block(1)      # the same block, upright
    assert decode_photo(encode_photo(photo)).pixels.shape == (20, 10, 3)    # not turned again


def test_exif_upright_changes_the_orientation_and_nothing_else():
    little = (b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 2) + struct.pack("<HHIHH", 0x010F, 2, 2, 0x41, 0)
              + struct.pack("<HHIHH", 0x0112, 3, 1, 8, 0) + struct.pack("<I", 0))
    assert exif_upright(b"Exif\x00\x00" + little) == b"Exif\x00\x00" + little[:-8] + struct.pack("<HH", 1, 0) + little[-4:]
    assert exif_upright(b"junk") == b"junk"


def test_encode_keeps_lossless_webp_lossless():
    rgb = np.random.default_rng(2).integers(0, 255, (20, 20, 3), np.uint8)
    data = encode_photo(Photo(rgb, "webp", lossless=True))
    assert sniff(data).lossless
    np.testing.assert_array_equal(decode_photo(data).pixels, rgb)
    assert not sniff(encode_photo(Photo(rgb, "webp", lossless=False))).lossless


def tiff_rgb(rgb: np.ndarray, orientation: int) -> bytes:
    """An uncompressed little-endian RGB TIFF with an Orientation tag, written by hand."""
    h, w, _ = rgb.shape
    pixels = rgb.tobytes()
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
            (273, 4, 1, None), (274, 3, 1, orientation), (277, 3, 1, 3), (278, 3, 1, h),
            (279, 4, 1, len(pixels))]
    bits_at = 8 + 2 + 12 * len(tags) + 4
    data_at = bits_at + 6
    out = b"II*\x00" + struct.pack("<IH", 8, len(tags))
    for tag, kind, count, value in tags:
        value = {258: bits_at, 273: data_at}.get(tag, value)
        out += (struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1
                else struct.pack("<HHII", tag, kind, count, value))
    return out + struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + pixels


def test_tiff_orientation_is_applied_once():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :5] = (255, 0, 0)                       # red left edge; orientation 6 puts it on top
    photo = decode_photo(tiff_rgb(rgb, 6))
    assert photo.pixels.shape == (20, 10, 3)
    np.testing.assert_array_equal(photo.pixels[:5], np.broadcast_to([255, 0, 0], (5, 10, 3)))
    np.testing.assert_array_equal(photo.pixels[5:], 0)
