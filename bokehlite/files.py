"""File helpers shared by every stage (no heavy imports).

Writes are atomic: a temporary file beside the target, renamed over it once complete, so
a crash or Ctrl-C leaves the old file or the whole new one, never half of one.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path


class FolderNotWritable(ValueError):
    """An output folder that cannot be created or written to; the message says why."""


def sha256(path: str | os.PathLike) -> str:
    """Hex digest of a file, read in 1 MiB blocks (models are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    The result gets the permissions a plain open() would give under the umask (mkstemp's
    temporary files are private, 0600, which a web server or another user cannot read).
    On any exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` (bytes, or text as UTF-8) to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def ensure_writable_dir(folder: str | os.PathLike) -> Path:
    """Create `folder` if needed and prove we can write there; FolderNotWritable otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except FileExistsError:
        raise FolderNotWritable(f"cannot write to output folder {folder}: it exists and is not a folder") from None
    except OSError as exc:
        raise FolderNotWritable(f"cannot write to output folder {folder}: {exc.strerror or exc}") from None
    return folder


# Work folders: `.<stem>.<pid>.<random>` inside the output folder, so that a later run can
# tell the leftovers of a killed process (SIGKILL, power loss) from a live run's folder.
_WORK_DIR = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+$")


def work_dir(parent: str | os.PathLike, stem: str) -> tempfile.TemporaryDirectory:
    """A temporary folder in `parent` (so the final rename stays on one file system), removed
    on exit, on an exception, and on Ctrl-C or SIGTERM (see interrupt.py)."""
    return tempfile.TemporaryDirectory(dir=parent, prefix=f".{stem}.{os.getpid()}.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # another user's live process
        return True
    return True


def remove_stale_work_dirs(parent: str | os.PathLike) -> tuple[int, int]:
    """Remove work folders in `parent` whose process is gone: (how many, bytes freed)."""
    count = freed = 0
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return 0, 0
    for entry in entries:
        match = _WORK_DIR.match(entry.name)
        if not match or not entry.is_dir() or _alive(int(match["pid"])):
            continue
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            count, freed = count + 1, freed + size
    return count, freed
