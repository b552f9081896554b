"""bokeh-native's files against bokeh-render's: what it reads, what it writes, what it refuses.

Every case runs both commands on the same input, as a user runs them, and asks for the same
answer: the same pixels (PSNR >= 50 dB, <= 0.5% of the values off by more than 1), the same
metadata carried through, or the same refusal (exit 2, nothing written; bokeh-native says it
in one line). The build, the photos and the tiny exports are conftest.py's session fixtures.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from native_support import OFF_GATE, PSNR_GATE, agreement, asan_env, assert_clean, native, one_line, read

EXIF, ICC = cv2.IMAGE_METADATA_EXIF, cv2.IMAGE_METADATA_ICCP
NATIVE_CPU = ("--accelerator", "cpu", "--threads", "2", "--runs", "1")
PYTHON_CPU = ("--backend", "litert", "--threads", "2")


# --- running both ---------------------------------------------------------------------------

def bokeh_render(*args, out: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    """bokeh-render as a user runs it, whatever its exit code."""
    return subprocess.run([sys.executable, "-m", "bokehlite.runtime.cli", *map(str, args), "-o", str(out)],
                          capture_output=True, text=True, timeout=600,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def bokeh_native(build: Path, *args, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(build / "bokeh-native"), *map(str, args)], capture_output=True, text=True,
                          timeout=600, preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def rendered(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-2000:]


def refused(proc: subprocess.CompletedProcess, out: Path, *expected: str) -> str:
    """bokeh-native's refusal: exit 2, one line, nothing at OUT and no temporary file beside it."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    line = one_line(proc)
    assert line.startswith("bokeh-native: error: ") and all(e in line for e in expected), line
    assert not out.exists() and not list(out.parent.glob(out.name + ".tmp*")), line
    return line


def gate(what: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    psnr, off = agreement(ours, theirs)
    assert psnr >= PSNR_GATE and off <= OFF_GATE, f"{what}: {psnr:.1f} dB, {off:.3%} of values off by > 1"


# --- files with metadata ------------------------------------------------------------------------

def exif_block(orientation: int, big_endian: bool = False) -> bytes:
    """A TIFF-structured EXIF block (as OpenCV hands it over): orientation and resolution unit."""
    e = ">" if big_endian else "<"
    entries = [(0x0112, orientation), (0x0128, 2)]
    ifd = struct.pack(e + "H", len(entries)) + b"".join(struct.pack(e + "HHIHH", tag, 3, 1, value, 0)
                                                         for tag, value in entries)
    return (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8) + ifd + struct.pack(e + "I", 0)


def srgb_profile() -> bytes:
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode(ext: str, pixels: np.ndarray, metadata: dict[int, bytes] | None = None) -> bytes:
    """pixels (OpenCV's BGR order) as a file, with metadata blocks, as OpenCV writes them."""
    metadata = metadata or {}
    if metadata:
        ok, buf = cv2.imencodeWithMetadata(ext, pixels, list(metadata),
                                           [np.frombuffer(v, np.uint8) for v in metadata.values()], [])
    else:
        ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the scan."""
    found, at = [], 2
    while data[at + 1] != 0xDA:
        end = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        found.append((data[at + 1], at, end))
        at = end
    return found


def with_xmp(jpeg: bytes, after_exif: bool = True) -> bytes:
    """An XMP APP1 segment beside the EXIF one, as phones and Lightroom write it."""
    body = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    _, start, end = next(s for s in jpeg_segments(jpeg) if s[0] == 0xE1 and jpeg[s[1] + 4:s[1] + 10] == b"Exif\0\0")
    at = end if after_exif else start
    return jpeg[:at] + segment + jpeg[at:]


def without_segment(jpeg: bytes, marker: int) -> bytes:
    _, start, end = next(s for s in jpeg_segments(jpeg) if s[0] == marker)
    return jpeg[:start] + jpeg[end:]


def metadata_of(path: Path) -> dict[int, bytes]:
    """The EXIF and ICC blocks that bokeh-render reads from a file (OpenCV's)."""
    _, kinds, blobs = cv2.imdecodeWithMetadata(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
    kinds = np.ravel(kinds) if kinds is not None else ()
    return {int(k): np.asarray(b, np.uint8).tobytes() for k, b in zip(kinds, blobs or ()) if int(k) in (EXIF, ICC)}


def orientation_of(path: Path) -> int | None:
    from bokehlite.runtime.header import exif_orientation
    exif = metadata_of(path).get(EXIF)
    return None if exif is None else exif_orientation(exif)


def folder(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


# --- 1. the output never replaces an input ---------------------------------------------------

def test_an_out_that_is_the_photo_or_the_depth_map_by_any_path_is_refused_and_both_are_left_alone(
        build, models, photos, depth_maps, tmp_path):
    here = folder(tmp_path, "photos")
    photo, depth = here / "p.png", here / "d.png"
    shutil.copy(photos["odd"], photo)
    shutil.copy(depth_maps["odd8"], depth)
    (here / "sub").mkdir()
    os.symlink(photo, here / "link.png")
    os.link(photo, here / "hard.png")
    original, depth_bytes = photo.read_bytes(), depth.read_bytes()
    # bokeh-render refuses to write a photo over itself
    proc = bokeh_render(photo, "-m", models["gpu"], *PYTHON_CPU, out=here)
    assert proc.returncode == 2 and "would overwrite an input" in proc.stderr, proc.stderr
    for out in (photo, here / "sub" / ".." / "p.png", Path(os.path.relpath(photo)), here / "link.png",
                here / "hard.png"):
        proc = native(build, "-m", models["gpu"], *NATIVE_CPU, photo, out)
        assert proc.returncode == 2, (out, proc.returncode, proc.stderr)
        assert "would overwrite an input" in one_line(proc), out
    proc = native(build, "-m", models["render"], "--depth", depth, *NATIVE_CPU, photo, depth)
    assert proc.returncode == 2 and "would overwrite an input" in one_line(proc)
    assert photo.read_bytes() == original and depth.read_bytes() == depth_bytes
    assert (here / "link.png").is_symlink() and sorted(p.name for p in here.iterdir()) == [
        "d.png", "hard.png", "link.png", "p.png", "sub"]


# --- 5. EXIF orientation: beside XMP, and in a PNG's eXIf chunk ----------------------------------

def test_exif_orientation_beside_xmp_and_in_a_png_exif_chunk_is_applied_as_bokeh_render_applies_it(
        build, models, photos, tmp_path):
    src = folder(tmp_path, "src")
    bgr = read(photos["odd"])                          # 451x300: a turned photo has another shape
    files = {"xmp_after.jpg": with_xmp(encode(".jpg", bgr, {EXIF: exif_block(6)})),
             "xmp_before.jpg": with_xmp(encode(".jpg", bgr, {EXIF: exif_block(8, big_endian=True)}), False),
             "exif6.png": encode(".png", bgr, {EXIF: exif_block(6)}),
             "exif3.png": encode(".png", bgr, {EXIF: exif_block(3, big_endian=True)})}
    for name, data in files.items():
        (src / name).write_bytes(data)
    py = tmp_path / "py"
    rendered(bokeh_render(*(src / n for n in files), "-m", models["gpu"], *PYTHON_CPU, out=py))
    for name in files:
        ours = tmp_path / name
        rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / name, ours))
        gate(name, read(ours), read(py / name))
        assert orientation_of(ours) == orientation_of(py / name) == 1, name
    assert read(tmp_path / "xmp_after.jpg").shape[:2] == (451, 300)
    assert read(tmp_path / "exif3.png").shape[:2] == (300, 451)


# --- 6. a file cut short is refused, as a photo and as a depth map -------------------------------

def test_truncated_photos_and_depth_maps_are_refused_as_bokeh_render_refuses_them(build, models, photos,
                                                                                   depth_maps, tmp_path):
    src = folder(tmp_path, "src")
    jpeg = encode(".jpg", read(photos["astronaut"]))
    grey = encode(".jpg", read(photos["odd"])[..., 1])
    files = {"half.jpg": jpeg[:len(jpeg) // 2], "no_eoi.jpg": jpeg[:-2], "header.jpg": jpeg[:300],
             "grey_half.jpg": grey[:len(grey) // 2]}
    for name, data in files.items():
        (src / name).write_bytes(data)
    for name in files:
        out = tmp_path / name
        proc = bokeh_render(src / name, "-m", models["gpu"], *PYTHON_CPU, out=tmp_path / "py")
        assert proc.returncode == 2 and not (tmp_path / "py" / name).exists(), (name, proc.stderr)
        refused(native(build, "-m", models["gpu"], *NATIVE_CPU, src / name, out), out, "truncated or corrupt JPEG")
        # as a depth map: the same refusal, not "a colour image" from the grey fill
        proc = bokeh_render(photos["odd"], "-m", models["render"], "--depth", src / name, out=tmp_path / "pyd")
        assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr, (name, proc.stderr)
        out = tmp_path / f"depth_{name}.png"
        refused(native(build, "-m", models["render"], "--depth", src / name, *NATIVE_CPU, photos["odd"], out),
                out, "depth map", "truncated or corrupt JPEG")
    # Data damaged in the middle but all there: libjpeg resyncs, and both render it alike.
    damaged = bytearray(jpeg)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 200, 7):
        damaged[i] = 0xFF if damaged[i] != 0xFF else 0
    (src / "damaged.jpg").write_bytes(bytes(damaged))
    rendered(bokeh_render(src / "damaged.jpg", "-m", models["gpu"], *PYTHON_CPU, out=tmp_path / "py"))
    rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / "damaged.jpg", tmp_path / "damaged.jpg"))
    gate("damaged.jpg", read(tmp_path / "damaged.jpg"), read(tmp_path / "py" / "damaged.jpg"))


# --- 7. the colour profile and EXIF go into the output ------------------------------------------

def test_icc_profile_and_exif_are_carried_into_the_output_as_bokeh_render_carries_them(build, models, photos,
                                                                                       tmp_path):
    from PIL import Image

    from bokehlite.runtime.photo import Photo, encode_photo, read_photo
    src = folder(tmp_path, "src")
    bgr, profile = read(photos["odd"]), srgb_profile()
    files = {"photo.jpg": encode(".jpg", bgr, {EXIF: exif_block(6), ICC: profile}),
             "photo.png": encode(".png", bgr, {EXIF: exif_block(8), ICC: profile}),
             "grey.jpg": encode(".jpg", bgr[..., 0], {EXIF: exif_block(1), ICC: profile})}
    for name, data in files.items():
        (src / name).write_bytes(data)
    py = tmp_path / "py"
    rendered(bokeh_render(*(src / n for n in files), "-m", models["gpu"], *PYTHON_CPU, out=py))
    for name in files:
        theirs = metadata_of(py / name)
        assert theirs.get(ICC) == profile and EXIF in theirs, (name, "bokeh-render keeps both")
        ours = tmp_path / name
        rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / name, ours))
        assert metadata_of(ours) == theirs, name
        gate(name, read(ours), read(py / name))
    assert orientation_of(py / "photo.jpg") == orientation_of(py / "photo.png") == 1
    # Across formats (bokeh-render always keeps the input's): what its encoder writes into the
    # other format from the photo it read, the profile and the upright EXIF where that format
    # holds them, and a profile that PNG refuses for a grey image left out.
    for name, out in (("photo.jpg", "jpeg_to.png"), ("photo.png", "png_to.jpg"), ("grey.jpg", "grey_to.png")):
        ours = tmp_path / out
        rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / name, ours))
        photo = read_photo(src / name)
        expected = tmp_path / f"expected_{out}"
        expected.write_bytes(encode_photo(Photo(photo.pixels, "png" if out.endswith(".png") else "jpeg",
                                                metadata=photo.metadata)))
        assert metadata_of(ours) == metadata_of(expected), out
    assert ICC not in metadata_of(tmp_path / "grey_to.png") and EXIF in metadata_of(tmp_path / "grey_to.png")
    # A profile too big for one JPEG marker (77 kB, in two APP2 markers) comes through whole and
    # reads back as bokeh-render reads it. (OpenCV's encoder cannot split one: bokeh-render
    # writes such a photo without its profile.)
    big = bytearray(profile + bytes(range(256)) * 300)
    big[:4] = len(big).to_bytes(4, "big")
    Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).save(src / "big.jpg", quality=95, icc_profile=bytes(big))
    assert read_photo(src / "big.jpg").metadata[ICC] == bytes(big)
    rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / "big.jpg", tmp_path / "big.jpg"))
    assert read_photo(tmp_path / "big.jpg").metadata[ICC] == bytes(big)


# --- 8. depth options without a depth-guided model, and numbers that are none ------------------

def test_depth_options_for_an_image_model_and_malformed_numbers_are_refused_as_bokeh_render_refuses_them(
        build, models, photos, depth_maps, tmp_path):
    photo = photos["odd"]
    cases = [(track, [flag, value]) for track in ("gpu", "cpu")
             for flag, value in (("--aperture", "10"), ("--focus", "5,5"), ("--focus-disparity", "0.5"))]
    depth = ["--depth", depth_maps["odd8"]]
    cases += [("render", depth + ["--focus", v]) for v in ("5,", ",5", "5,5,5", "5;5", "a,b", "")]
    cases += [("render", depth + ["--aperture", v]) for v in ("inf", "nan", "-inf", "1e999", "-1", "ten")]
    cases += [("render", depth + ["--focus-disparity", v]) for v in ("nan", "inf", "1.5")]
    for i, (track, args) in enumerate(cases):
        proc = bokeh_render(photo, "-m", models[track], *args, out=tmp_path / f"py{i}")
        assert proc.returncode == 2 and not (tmp_path / f"py{i}" / photo.name).exists(), (track, args, proc.stderr)
        out = tmp_path / f"{i}.png"
        refused(native(build, "-m", models[track], *args, *NATIVE_CPU, photo, out), out, args[-2])


# --- 12. the output's mode is what a plain open() gives ----------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_mode_bokeh_render_gives_them_under_the_umask(build, models, photos, tmp_path, umask):
    py = tmp_path / "py"
    rendered(bokeh_render(photos["odd"], "-m", models["gpu"], *PYTHON_CPU, out=py, umask=umask))
    ours = tmp_path / "odd.png"
    rendered(bokeh_native(build, "-m", models["gpu"], *NATIVE_CPU, photos["odd"], ours, umask=umask))
    assert (ours.stat().st_mode & 0o777) == (py / "odd.png").stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.png", "py"]


# --- 13. bad files under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer ---------

def test_bad_photos_and_depth_maps_exit_2_and_metadata_cmyk_and_16_bit_render_under_sanitizers_without_a_leak(
        asan_build, models, photos, tmp_path):
    from PIL import Image
    src = folder(tmp_path, "src")
    png = photos["astronaut"].read_bytes()
    jpeg = encode(".jpg", read(photos["astronaut"]))
    mid = len(png) // 2
    bad = {"cut.png": png[:5000], "no_iend.png": png[:-12],
           "corrupt.png": png[:mid] + bytes(64) + png[mid + 64:],          # a bad filter byte, a CRC error
           "cut.jpg": jpeg[:len(jpeg) // 2], "no_eoi.jpg": jpeg[:-2], "header.jpg": jpeg[:200],
           "corrupt.jpg": jpeg[:20] + b"\xff\xc0\x00\x04\x08" + jpeg[25:]}
    damaged = bytearray(jpeg)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 200, 7):
        damaged[i] = 0xFF if damaged[i] != 0xFF else 0
    bgr, profile = read(photos["odd"]), srgb_profile()
    good = {"damaged.jpg": bytes(damaged),
            "metadata.jpg": with_xmp(encode(".jpg", bgr, {EXIF: exif_block(6), ICC: profile})),
            "metadata.png": encode(".png", bgr, {EXIF: exif_block(5), ICC: profile}),
            "rgba16.png": encode(".png", np.dstack([bgr, bgr[..., :1]]).astype(np.uint16) * 257)}
    for name, data in {**bad, **good}.items():
        (src / name).write_bytes(data)
    Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).convert("CMYK").save(src / "cmyk.jpg", quality=95)
    runs = {name: (["-m", models["gpu"], src / name], ".png") for name in bad}
    runs.update({f"depth {name}": (["-m", models["render"], "--depth", src / name, photos["odd"]], ".png")
                 for name in ("cut.jpg", "cut.png")})
    runs.update({f"good {name} to {ext}": (["-m", models["gpu"], src / name], ext)
                 for name in (*good, "cmyk.jpg") for ext in (".png", ".jpg")})
    for name, (args, ext) in runs.items():
        out = tmp_path / f"{name.replace(' ', '_')}{ext}"
        proc = native(asan_build, *args, "--accelerator", "cpu", "--runs", "1", out, env=asan_env())
        assert_clean(proc, name)
        assert proc.returncode == (0 if name.startswith("good") else 2), (name, proc.returncode, proc.stderr[-2000:])
        assert out.exists() == name.startswith("good"), name


# --- 14. CMYK JPEGs and 16-bit PNGs ----------------------------------------------------------------

def to8(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.dtype == np.uint8 else ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def test_cmyk_jpegs_and_16_bit_pngs_render_as_bokeh_render_renders_them(build, models, photos, tmp_path):
    from PIL import Image
    src = folder(tmp_path, "src")
    bgr = read(photos["odd"])
    Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).convert("CMYK").save(src / "cmyk.jpg", quality=95)   # Adobe, inverted
    (src / "cmyk_no_adobe.jpg").write_bytes(without_segment((src / "cmyk.jpg").read_bytes(), 0xEE))
    rng = np.random.default_rng(0)
    wide = bgr.astype(np.uint16) * 257 + rng.integers(0, 257, bgr.shape, dtype=np.uint16)   # low bytes used
    alpha = np.tile(np.linspace(0, 65535, bgr.shape[1]).astype(np.uint16), (bgr.shape[0], 1))
    for name, pixels in {"rgb16.png": wide, "grey16.png": wide[..., 1], "rgba16.png": np.dstack([wide, alpha])}.items():
        cv2.imwrite(str(src / name), np.ascontiguousarray(pixels))
    names = sorted(p.name for p in src.iterdir())
    py = tmp_path / "py"
    rendered(bokeh_render(*(src / n for n in names), "-m", models["gpu"], *PYTHON_CPU, out=py))
    for name in names:
        ours = tmp_path / name
        rendered(native(build, "-m", models["gpu"], *NATIVE_CPU, src / name, ours))
        a, b = read(ours), read(py / name)
        assert a.dtype == b.dtype and a.shape == b.shape, (name, a.dtype, b.dtype, a.shape, b.shape)
        gate(name, to8(a), to8(b))
    assert read(tmp_path / "rgb16.png").dtype == np.uint16 and read(tmp_path / "cmyk.jpg").ndim == 3
    assert np.array_equal(read(tmp_path / "rgba16.png")[..., 3], alpha), "a 16-bit alpha is copied whole"
