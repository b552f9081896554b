"""Facts about this machine and installation that every stage reports: cores and versions."""
from __future__ import annotations

import importlib.metadata
import os
import resource
from pathlib import Path


def default_threads() -> int:
    """All cores this process may run on: its CPU affinity where the OS has one
    (a container's CPU limit), else the machine's core count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def tool_versions(names) -> dict[str, str]:
    """Installed version of each distribution in `names` ("not installed" if absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (10^6 bytes).

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a
    child would report its parent's peak (the benchmark parent holds torch).
    VmHWM belongs to this process's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def source_commit() -> str:
    """The git commit this code runs from ("<sha>", "<sha>-dirty" with local changes), or
    "unknown" outside a git checkout (an installed wheel): for reports that must say what
    made their figures."""
    import subprocess
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty else "")
