"""What a photo file is, and how big, from its first bytes: before any pixel is decoded.

Knowing the size first lets us refuse a 0x0 image or one over the pixel limit without
letting the decoder allocate it. Also here: the EXIF orientation tag, read from the
TIFF-structured EXIF block that OpenCV hands back; and the note that bokeh-render puts in
each file it writes, so that a later run replaces its own outputs and nothing else.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

FORMATS = ("jpeg", "png", "tiff", "webp", "bmp")
EXTENSIONS = {"jpeg": (".jpg", ".jpeg", ".jpe"), "png": (".png",), "tiff": (".tif", ".tiff"),
              "webp": (".webp",), "bmp": (".bmp", ".dib")}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class Header:
    format: str                     # one of FORMATS
    size: tuple[int, int] | None    # (height, width), None when the header is cut short
    lossless: bool = True           # WebP only: VP8L (lossless) or VP8 (lossy)


def sniff(data: bytes) -> Header | None:
    """Format and size from the magic bytes; None if it is none of the supported formats."""
    if data[:3] == b"\xff\xd8\xff":
        return Header("jpeg", _jpeg_size(data), lossless=False)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        size = struct.unpack(">II", data[16:24])[::-1] if data[12:16] == b"IHDR" and len(data) >= 24 else None
        return Header("png", size)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        tags = tiff_tags(data, (256, 257))
        size = (tags[257], tags[256]) if 256 in tags and 257 in tags else None
        return Header("tiff", size)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data[:2] == b"BM" and len(data) >= 18:
        return Header("bmp", _bmp_size(data))
    return None


def exif_orientation(exif: bytes) -> int:
    """EXIF orientation (1-8) from a TIFF-structured EXIF block; 1 when absent or invalid."""
    if exif[:6] == b"Exif\x00\x00":
        exif = exif[6:]
    value = tiff_tags(exif, (0x0112,)).get(0x0112, 1)
    return value if 1 <= value <= 8 else 1


def exif_upright(exif: bytes) -> bytes:
    """The EXIF block with its orientation set to 1 (upright): for a photo whose pixels
    were turned upright on reading, so that no viewer turns them a second time."""
    prefix = b"Exif\x00\x00" if exif[:6] == b"Exif\x00\x00" else b""
    data = bytearray(exif[len(prefix):])
    end = {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(data[:4]))
    if end is None:
        return exif
    try:
        (offset,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[offset:offset + 2])
        for i in range(count):
            at = offset + 2 + 12 * i
            tag, kind, n = struct.unpack(end + "HHI", data[at:at + 8])
            if tag == 0x0112 and kind in (3, 4) and n == 1:      # SHORT or LONG, as tiff_tags reads it
                value = struct.pack(end + ("H" if kind == 3 else "I"), 1)
                data[at + 8:at + 8 + len(value)] = value
    except struct.error:            # cut short: leave it as it was
        return exif
    return prefix + bytes(data)


# The note in every file bokeh-render writes: what wrote it, and the sha256 of the file as
# encoded, before the note went in. A file whose note is missing, or whose digest no longer
# matches (edited since), is not ours to replace.
OUTPUT_NOTE = b"bokeh-render output; sha256 without this note: "
_NOTE_LENGTH = len(OUTPUT_NOTE) + 64
_PNG_KEYWORD = b"Comment\x00"


def note_output(data: bytes, fmt: str) -> bytes:
    """The encoded file with the note in it: a JPEG comment segment after the APPn segments, a
    PNG tEXt chunk before IEND; past the image data in TIFF, WebP and BMP, whose readers go by
    offsets and sizes and ignore it."""
    note = OUTPUT_NOTE + hashlib.sha256(data).hexdigest().encode()
    before, after = _note_frame(fmt, note)
    at = len(data)
    if fmt == "jpeg":
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF and 0xE0 <= data[at + 1] <= 0xEF:
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    elif fmt == "png" and data[-8:-4] == b"IEND":
        at -= 12
    return data[:at] + before + note + after + data[at:]


def is_output(data: bytes) -> bool:
    """Whether bokeh-render wrote these bytes and nothing has changed them since: the note is
    there and its digest matches the file without it."""
    header = sniff(data)
    at = data.rfind(OUTPUT_NOTE)
    if header is None or at < 0:
        return False
    note = data[at:at + _NOTE_LENGTH]
    before, after = (len(part) for part in _note_frame(header.format, note))
    if at < before:
        return False
    rest = data[:at - before] + data[at + _NOTE_LENGTH + after:]
    return hashlib.sha256(rest).hexdigest().encode() == note[len(OUTPUT_NOTE):]


def _note_frame(fmt: str, note: bytes) -> tuple[bytes, bytes]:
    """The bytes around the note that make it a JPEG segment or a PNG chunk."""
    if fmt == "jpeg":
        return b"\xff\xfe" + (2 + len(note)).to_bytes(2, "big"), b""
    if fmt == "png":
        body = _PNG_KEYWORD + note
        return len(body).to_bytes(4, "big") + b"tEXt" + _PNG_KEYWORD, zlib.crc32(b"tEXt" + body).to_bytes(4, "big")
    return b"", b""


def tiff_tags(data: bytes, wanted: tuple[int, ...]) -> dict[int, int]:
    """Integer tags (SHORT or LONG, count 1) of a TIFF structure's first directory."""
    if data[:4] == b"II*\x00":
        end = "<"
    elif data[:4] == b"MM\x00*":
        end = ">"
    else:
        return {}
    try:
        (offset,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[offset:offset + 2])
        found = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i: offset + 14 + 12 * i]
            tag, kind, n = struct.unpack(end + "HHI", entry[:8])
            if tag in wanted and n == 1 and kind in (3, 4):
                found[tag] = struct.unpack(end + ("H" if kind == 3 else "I"), entry[8:10 if kind == 3 else 12])[0]
        return found
    except struct.error:            # cut short: report what we have
        return {}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:                       # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):               # end of image / start of scan before a frame
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            return struct.unpack(">HH", data[i + 5:i + 9])
        i += 2 + length
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12 and len(data) >= 22:
        width, height = struct.unpack("<HH", data[18:22])
    elif dib >= 40 and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
    else:
        return None
    return abs(height), abs(width)


def _webp(data: bytes) -> Header:
    size, lossless, pos = None, False, 12
    while pos + 8 <= len(data):
        chunk, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + length]
        if chunk == b"VP8X" and len(body) >= 10:
            size = (1 + int.from_bytes(body[7:10], "little"), 1 + int.from_bytes(body[4:7], "little"))
        elif chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
            bits = int.from_bytes(body[1:5], "little")
            size = size or (((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1)
            lossless = True
            break
        elif chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", body[6:10])
            size = size or (height & 0x3FFF, width & 0x3FFF)
            break
        pos += 8 + length + (length & 1)
    return Header("webp", size, lossless)
