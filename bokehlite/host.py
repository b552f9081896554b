"""Facts about this machine and installation that every stage reports: cores and versions."""
from __future__ import annotations

import importlib.metadata
import os


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
