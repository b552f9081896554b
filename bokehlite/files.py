"""File helpers shared by every stage (no heavy imports).

Writes are atomic: a temporary file beside the target, renamed over it once complete, so
a crash or Ctrl-C leaves the old file or the whole new one, never half of one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
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
    The data is flushed to the disk before the rename and the folder after it, so after a
    power loss `path` holds the old file or the new one, never an empty one.
    On any exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file that is complete to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# Work folders: `.bokehlite-work.<stem>.<pid>.<random>` inside the output folder, each with
# a marker file that says which process made it: its host, PID namespace, pid and start
# time. A later run removes a folder only when the marker proves it is ours and its process
# is gone; anything else in the output folder, a user's dot-folder or the live work folder
# of an export on another host or in another container, is never touched.
WORK_PREFIX = ".bokehlite-work."
WORK_MARKER = "bokehlite-work.json"
_WORK_DIR = re.compile(r"^\.bokehlite-work\.(?P<stem>[^/]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+$")


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid_namespace": _pid_namespace(), "pid": os.getpid(),
            "start_time": _start_time(os.getpid())}


class work_dir(tempfile.TemporaryDirectory):
    """A temporary folder in `parent` (so the final rename stays on one file system), removed
    on exit, on an exception, and on Ctrl-C or SIGTERM (see interrupt.py); its marker file
    lets a later run remove it if this process is killed (SIGKILL, power loss)."""

    def __init__(self, parent: str | os.PathLike, stem: str):
        super().__init__(dir=parent, prefix=f"{WORK_PREFIX}{stem}.{os.getpid()}.")
        (Path(self.name) / WORK_MARKER).write_text(json.dumps(_owner()) + "\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # another user's live process
        return True
    return True


def _is_stale(entry: Path) -> bool:
    """True only for a work folder of ours, made on this host and in this PID namespace,
    whose process has ended (or whose pid now belongs to a process started later)."""
    match = _WORK_DIR.match(entry.name)
    if not match or entry.is_symlink() or not entry.is_dir():
        return False
    try:
        owner = json.loads((entry / WORK_MARKER).read_text())
    except (OSError, ValueError):
        return False                       # no marker of ours: not provably ours
    here = _owner()
    if not isinstance(owner, dict) or owner.get("pid") != int(match["pid"]):
        return False
    if owner.get("host") != here["host"] or owner.get("pid_namespace") != here["pid_namespace"]:
        return False                       # another machine's or container's: its pid means nothing here
    pid = owner["pid"]
    if not _alive(pid):
        return True
    start = _start_time(pid)
    return start is not None and owner.get("start_time") is not None and start != owner["start_time"]


def remove_stale_work_dirs(parent: str | os.PathLike) -> tuple[int, int]:
    """Remove work folders in `parent` whose process is gone: (how many, bytes freed)."""
    count = freed = 0
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return 0, 0
    for entry in entries:
        if not _is_stale(entry):
            continue
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            count, freed = count + 1, freed + size
    return count, freed
