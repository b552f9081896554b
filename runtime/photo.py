"""Photo files in and out: JPEG, PNG, TIFF, WebP, BMP; 8/16-bit; grey, RGB, RGBA.

Pixels leave this module upright (EXIF orientation applied) and in RGB(A) order; OpenCV
works in BGR(A), so the swap happens here and nowhere else. Files are written
atomically: a temporary file in the target folder, renamed into place.

A photo's colour profile (ICC) and its EXIF block go back into the file written from
it, where the format holds them (JPEG, PNG, WebP): without its profile a Display P3 or
Adobe RGB photo is shown with shifted colours. The EXIF orientation is reset to upright,
since the pixels have been turned already.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import files
from .errors import BadImageError, OutputError
from .header import EXTENSIONS, FORMATS, exif_orientation, exif_upright, sniff

DEFAULT_MAX_PIXELS = 100_000_000
MIN_SIDE = 2            # a 1-pixel-wide photo has no focus structure to render
JPEG_QUALITY = 95
WEBP_LOSSY_QUALITY = 95
_NAMES = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WebP", "bmp": "BMP"}
# The metadata that OpenCV reads and writes for these formats, and that is carried through.
METADATA_FORMATS = ("jpeg", "png", "webp")
KEPT_METADATA = (cv2.IMAGE_METADATA_ICCP, cv2.IMAGE_METADATA_EXIF)


@dataclass
class Photo:
    pixels: np.ndarray      # (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16
    format: str             # one of header.FORMATS
    lossless: bool = True   # how to write it back (WebP: VP8L vs VP8)
    # cv2.IMAGE_METADATA_ICCP / _EXIF -> the raw block, written back with the pixels
    metadata: dict[int, bytes] = field(default_factory=dict)


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; BadImageError with a one-line reason when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImageError("no such file") from None
    except IsADirectoryError:
        raise BadImageError("is a directory, not an image file") from None
    except OSError as exc:
        raise BadImageError(f"cannot read it ({exc.strerror or exc})") from None


def read_photo(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a photo file; BadImageError with a one-line reason when it is unusable."""
    return decode_photo(read_bytes(path), max_pixels)


def decode_photo(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    if not data:
        raise BadImageError("file is empty")
    header = sniff(data)
    if header is None:
        raise BadImageError("not an image (expected JPEG, PNG, TIFF, WebP or BMP)")
    name = _NAMES[header.format]
    if header.size is not None:
        check_size(*header.size, max_pixels)
    decoded = cv2.imdecodeWithMetadata(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    pixels, kinds, blobs = decoded
    if pixels is None or pixels.size == 0:
        raise BadImageError(f"truncated or corrupt {name} file (cannot decode it)")
    check_size(pixels.shape[0], pixels.shape[1], max_pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise BadImageError(f"{pixels.dtype} samples are not supported (expected 8- or 16-bit)")
    pixels = _to_rgb(pixels)
    # OpenCV's IMREAD_UNCHANGED keeps the stored orientation (it applies EXIF only when it
    # may also drop alpha and depth), so we apply it ourselves. TIFF files are the
    # exception: OpenCV orients those itself and returns no EXIF block for them.
    metadata = {int(kind): np.asarray(blob, np.uint8).tobytes()
                for kind, blob in zip(np.ravel(kinds) if kinds is not None else (), blobs or ())
                if int(kind) in KEPT_METADATA}
    if cv2.IMAGE_METADATA_EXIF in metadata:
        exif = metadata[cv2.IMAGE_METADATA_EXIF]
        pixels = apply_orientation(pixels, exif_orientation(exif))
        metadata[cv2.IMAGE_METADATA_EXIF] = exif_upright(exif)
    return Photo(np.ascontiguousarray(pixels), header.format, header.lossless, metadata)


def check_size(height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise BadImageError(f"image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels")
    if height * width > max_pixels:
        raise BadImageError(f"image is {width}x{height} ({height * width / 1e6:.1f} MP), over the "
                            f"{max_pixels / 1e6:g} MP limit (raise it with --max-pixels)")


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for an EXIF orientation value (1-8), as OpenCV does."""
    if orientation in (5, 6, 7, 8):
        pixels = pixels.swapaxes(0, 1)
    if orientation in (2, 6):
        return pixels[:, ::-1]
    if orientation in (3, 7):
        return pixels[::-1, ::-1]
    if orientation in (4, 8):
        return pixels[::-1]
    return pixels


def format_for_path(path: str | os.PathLike) -> str | None:
    suffix = Path(path).suffix.lower()
    return next((f for f, exts in EXTENSIONS.items() if suffix in exts), None)


def encode_photo(photo: Photo, in_place: bool = False) -> bytes:
    """The file's bytes. in_place: reorder the channels to OpenCV's BGR in the pixels
    themselves instead of a copy (a full-size array less; the caller's pixels are spent)."""
    pixels = photo.pixels
    if photo.format not in FORMATS:
        raise ValueError(f"unknown format {photo.format!r}; expected one of {', '.join(FORMATS)}")
    if pixels.dtype == np.uint16 and photo.format not in ("png", "tiff"):
        raise OutputError(f"{_NAMES[photo.format]} cannot hold 16-bit samples")
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):     # OpenCV writes BGR(A)
        pixels = swap_red_blue(pixels if in_place and pixels.flags.writeable else pixels.copy())
    params = []
    if photo.format == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif photo.format == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 101 if photo.lossless else WEBP_LOSSY_QUALITY]
    ok, buf = _encode(EXTENSIONS[photo.format][0], pixels, params,
                      photo.metadata if photo.format in METADATA_FORMATS else {})
    if not ok:
        raise OutputError(f"OpenCV could not encode a {_NAMES[photo.format]} image")
    return buf.tobytes()


def _encode(ext: str, pixels: np.ndarray, params: list, metadata: dict[int, bytes]):
    """cv2.imencode with the metadata blocks; a profile the encoder refuses (libpng checks
    that an ICC profile's colour space fits the image) is dropped rather than the photo."""
    for kinds in (list(metadata), [k for k in metadata if k != cv2.IMAGE_METADATA_ICCP]):
        if not kinds:
            break
        try:
            ok, buf = cv2.imencodeWithMetadata(ext, pixels, kinds,
                                               [np.frombuffer(metadata[k], np.uint8) for k in kinds], params)
        except cv2.error:
            ok = False
        if ok:
            return ok, buf
    return cv2.imencode(ext, pixels, params)


def write_photo(path: str | os.PathLike, photo: Photo, in_place: bool = False) -> None:
    """Encode and write atomically; the target is either the old file or the whole new one.
    in_place: as for `encode_photo`."""
    atomic_write(Path(path), encode_photo(photo, in_place))


def atomic_write(path: Path, data: bytes) -> None:
    """files.atomic_write, with a failure as one OutputError line."""
    write_all({path: data})


def write_all(contents: dict[Path, bytes]) -> None:
    """Write several files atomically and together: if any write fails, none of them is
    renamed into place (a photo and its depth map), and the failure is one OutputError line."""
    with contextlib.ExitStack() as stack:
        for path, data in contents.items():
            try:
                stack.enter_context(files.atomic_open(path, "wb")).write(data)
            except OSError as exc:
                raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
        try:
            stack.close()            # the renames, last file first
        except OSError as exc:
            raise OutputError(f"cannot write {exc.filename or next(iter(contents))} "
                              f"({exc.strerror or exc})") from None


def swap_red_blue(pixels: np.ndarray, rows: int = 256) -> np.ndarray:
    """BGR(A) <-> RGB(A) in the array itself, a band of rows at a time: a converted copy
    (cv2.cvtColor) is the size of the photo, 144 MB at 48 megapixels."""
    for r in range(0, pixels.shape[0], rows):
        band = pixels[r:r + rows]
        band[..., [0, 2]] = band[..., [2, 0]]
    return pixels


def _to_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return pixels
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[:, :, 0]
    if channels in (3, 4):
        return swap_red_blue(pixels)       # in place: the decoder's array is ours
    raise BadImageError(f"images with {channels} channels are not supported")

