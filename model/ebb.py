"""EBB! pairs on disk: scanning, the validation split, and the samples the trainer loads.

Layout (EBB!'s `Training/` folder as distributed): `DIR/original/N.jpg` (wide depth of
field) and `DIR/bokeh/N.jpg` (the Canon's shallow depth of field), paired by file stem.
No torch here: the samples are uint8 NumPy arrays (H, W, 3), which the DataLoader's
default collation turns into tensors, so the command line can check a data folder
before it loads torch.

Sizes are not assumed: EBB! photos are about 1024x1536 but vary. A training sample is
a random `crop / scale` square of the photo (the network sees `crop` pixels after its
own 1/scale pooling), upscaled first if the photo is smaller than that.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..runtime.errors import BadImageError
from ..runtime.header import sniff
from ..runtime.photo import read_photo

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class EbbError(ValueError):
    """A data folder that cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class Pair:
    stem: str
    original: Path
    bokeh: Path


@dataclass
class Scan:
    """What a folder holds: usable pairs (sorted by number) and what was skipped, and why."""

    folder: Path
    pairs: list[Pair]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def stem_key(stem: str) -> tuple:
    """Numeric stems in numeric order (9 before 10), then the others by name."""
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def _images(folder: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    by_stem, skipped = {}, []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in by_stem:
            skipped.append((path, f"another file has the stem {path.stem!r} ({by_stem[path.stem].name})"))
            continue
        by_stem[path.stem] = path
    return by_stem, skipped


# How a complete file of these formats ends: a JPEG with its EOI marker, a PNG with its
# IEND chunk. libjpeg decodes a cut JPEG with a bare warning and grey rows, so a cut file
# is caught here, at scan time, where it can be listed in run.json's `skipped`.
_ENDINGS = {b"\xff\xd8\xff": (b"\xff\xd9",), b"\x89PNG": (b"IEND\xaeB`\x82",)}


def readable(path: Path) -> str | None:
    """None if OpenCV recognises the file as an image it can decode, else why not.

    Reads the first and last bytes only; a file damaged inside is caught when it is loaded."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(max(0, size - 64))
            tail = f.read().rstrip(b"\x00\r\n ")        # some writers pad after the end marker
    except OSError as exc:
        return exc.strerror or str(exc)
    if not cv2.haveImageReader(str(path)):
        return "not an image OpenCV can read"
    for magic, endings in _ENDINGS.items():
        if head.startswith(magic) and not tail.endswith(endings):
            return "truncated file (it does not end as a complete image does)"
    return None


def scan_ebb(folder: str | Path) -> Scan:
    """Pairs of `folder`/original and `folder`/bokeh by stem. Unpaired and unreadable files
    are skipped and listed in `Scan.skipped`; a missing folder is an EbbError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EbbError(f"data folder not found: {folder}")
    subs = {}
    for name in ("original", "bokeh"):
        if not (folder / name).is_dir():
            raise EbbError(f"{folder} is not in the EBB! layout: no {name}/ folder "
                           f"(expected {folder}/original/N.jpg and {folder}/bokeh/N.jpg)")
        subs[name] = _images(folder / name)
    (originals, skipped), (bokehs, skipped_b) = subs["original"], subs["bokeh"]
    skipped += skipped_b
    pairs = []
    for stem in sorted(set(originals) | set(bokehs), key=stem_key):
        if stem not in bokehs:
            skipped.append((originals[stem], f"no bokeh/{stem}.* to pair it with"))
            continue
        if stem not in originals:
            skipped.append((bokehs[stem], f"no original/{stem}.* to pair it with"))
            continue
        problems = [(p, why) for p in (originals[stem], bokehs[stem]) if (why := readable(p))]
        if problems:
            skipped += problems
            continue
        pairs.append(Pair(stem, originals[stem], bokehs[stem]))
    return Scan(folder, pairs, skipped)


def split_val(pairs: list[Pair], count: int) -> tuple[list[Pair], list[Pair]]:
    """(train, val): the `count` highest-numbered pairs are held out.

    The paper's Val470 split is not published; the last 470 by number is our stand-in."""
    if count < 0:
        raise EbbError("--val-count must be 0 or more")
    if count >= len(pairs):
        raise EbbError(f"only {len(pairs)} usable pairs: holding out {count} for validation "
                       f"leaves none to train on; lower --val-count")
    ordered = sorted(pairs, key=lambda p: stem_key(p.stem))
    return (ordered[:len(ordered) - count], ordered[len(ordered) - count:]) if count else (ordered, [])


def read_rgb(path: Path) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, or None if the file cannot be decoded: bokeh-render's own
    decoder (runtime/photo.py), so training and the runtime refuse the same files."""
    try:
        pixels = read_photo(path, max_pixels=1 << 62).pixels
    except BadImageError:
        return None
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


class _PairLoader:
    """Loads pairs; a file that cannot be decoded is named on stderr (once per process)."""

    def __init__(self, pairs: list[Pair], what: str = "train-bokeh"):
        if not pairs:
            raise EbbError("no pairs to load")
        self.pairs = list(pairs)
        self.what = what
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.pairs)

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        if i in self._bad:
            return None
        pair = self.pairs[i]
        original, bokeh = read_rgb(pair.original), read_rgb(pair.bokeh)
        if original is None or bokeh is None:
            self._bad.add(i)
            bad = pair.original if original is None else pair.bokeh
            print(f"{self.what}: warning: cannot decode {bad}; skipping pair {pair.stem}",
                  file=sys.stderr, flush=True)
            return None
        if bokeh.shape != original.shape:
            # Aligned pairs, but a size off by a few pixels should not stop a run.
            bokeh = cv2.resize(bokeh, original.shape[1::-1], interpolation=cv2.INTER_AREA)
        return original, bokeh

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair `index`, or the next decodable one (training must get a sample)."""
        for attempt in range(len(self.pairs)):
            pair = self._read((index + attempt) % len(self.pairs))
            if pair is not None:
                return pair
        raise EbbError("none of the pairs could be decoded")


class TrainCrops(_PairLoader):
    """Random crops for training: item i -> (original, bokeh), each (C, C, 3) uint8 with
    C = crop / scale, from the same window, flipped left-right at random.

    The randomness is a function of (seed, epoch, index), so a resumed run sees the same
    crops as an uninterrupted one. Set `epoch` before iterating (the trainer does).
    """

    def __init__(self, pairs: list[Pair], crop: int, scale: float, seed: int = 0, flip: bool = True):
        super().__init__(pairs)
        self.size = int(round(crop / scale))
        self.seed, self.flip, self.epoch = seed, flip, 0

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        original, bokeh = self.load(index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        h, w = original.shape[:2]
        if min(h, w) < self.size:
            f = self.size / min(h, w)
            new = (max(self.size, round(w * f)), max(self.size, round(h * f)))
            original = cv2.resize(original, new, interpolation=cv2.INTER_LINEAR)
            bokeh = cv2.resize(bokeh, new, interpolation=cv2.INTER_LINEAR)
            h, w = original.shape[:2]
        y = int(rng.integers(0, h - self.size + 1))
        x = int(rng.integers(0, w - self.size + 1))
        window = (slice(y, y + self.size), slice(x, x + self.size))
        original, bokeh = original[window], bokeh[window]
        if self.flip and rng.random() < 0.5:
            original, bokeh = original[:, ::-1], bokeh[:, ::-1]
        return np.ascontiguousarray(original), np.ascontiguousarray(bokeh)


def photo_size(path: Path) -> tuple[int, int] | None:
    """(H, W) from the file's header, without decoding it; None if unknown. The first 64 KiB
    hold it for nearly every photo; only one with a larger EXIF block is read further (up
    to 1 MiB), so scanning EBB!'s thousands of pairs stays cheap."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
            header = sniff(data)
            if header is not None and header.size is None and len(data) == 1 << 16:
                header = sniff(data + f.read((1 << 20) - len(data)))
    except OSError:
        return None
    return tuple(header.size) if header is not None and header.size is not None else None


def upscaled(pairs: list[Pair], window: int) -> dict | None:
    """The training photos smaller than the crop window (TrainCrops upscales them to fit):
    how many, the largest factor, and the window that would fit them all; None if none."""
    sizes = [s for s in (photo_size(p.original) for p in pairs) if s is not None]
    small = [min(s) for s in sizes if min(s) < window]
    if not small:
        return None
    return {"count": len(small), "of": len(pairs), "window": window,
            "largest_factor": round(window / min(small), 2), "largest_window_that_fits": min(min(s) for s in sizes)}


class ValPairs(_PairLoader):
    """Whole photos for validation: item i -> (original, bokeh, ok), (H, W, 3) uint8 each.

    A pair that cannot be decoded gives ok = False (and 1x1 images): it is left out of
    the metrics rather than replaced, so no other pair counts twice."""

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, bool]:
        pair = self._read(index)
        if pair is None:
            empty = np.zeros((1, 1, 3), np.uint8)
            return empty, empty, False
        return pair[0], pair[1], True
