"""How much memory this process may use: its container's limit, read from the cgroup files.

Kubernetes applies a container's ``resources.limits.memory`` as a cgroup limit, and the kernel's
OOM killer ends the process that passes it. ``memory_limit_bytes`` reads it:

- cgroup v2 (``0::<path>`` in ``/proc/self/cgroup``): ``memory.max`` of the process's cgroup and
  of each ancestor up to the mount point, the smallest number (``max`` means none);
- cgroup v1 (a ``memory`` hierarchy): ``hierarchical_memory_limit`` in ``memory.stat`` (the
  smallest limit on the way up), else ``memory.limit_in_bytes``; a value near 2^63 means none.

Inside a container the cgroup path in ``/proc/self/cgroup`` may not exist under the mount (the
mount is the container's own cgroup), so the mount's root files count then. Without a limit, the
machine's memory is what the process may use. I/O only; ``adapter.__main__`` turns the answer
into the store's budget.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
UNLIMITED_V1 = 2**60
"""cgroup v1 writes "no limit" as the largest page-aligned 64-bit count, 9223372036854771712."""


def memory_limit_bytes(
    root: Path = CGROUP_ROOT, self_cgroup: Path = PROC_SELF_CGROUP
) -> int | None:
    """The memory limit of this process's cgroup in bytes; None when there is none or the files
    cannot be read."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        return None
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    for _, controllers, path in entries:
        if "memory" in controllers.split(","):
            return _v1_limit(root / "memory", path)
    for hierarchy, _, path in entries:
        if hierarchy == "0":
            return _v2_limit(root, path)
    return None


def machine_memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _own_directory(mount: Path, path: str) -> Path:
    """The process's cgroup directory under ``mount``, or the mount itself when the path is not
    there (a container sees its own cgroup as the mount's root)."""
    directory = mount / path.lstrip("/")
    return directory if directory.is_dir() else mount


def _v2_limit(root: Path, path: str) -> int | None:
    directory = _own_directory(root, path)
    limits = []
    while True:
        value = _read(directory / "memory.max")
        if value is not None and value.isdigit():
            limits.append(int(value))
        if directory == root or root not in directory.parents:
            break
        directory = directory.parent
    return min(limits, default=None)


def _v1_limit(mount: Path, path: str) -> int | None:
    directory = _own_directory(mount, path)
    limit = None
    for line in (_read(directory / "memory.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "hierarchical_memory_limit" and value.isdigit():
            limit = int(value)
    if limit is None:
        value = _read(directory / "memory.limit_in_bytes")
        limit = int(value) if value is not None and value.isdigit() else None
    return limit if limit is not None and limit < UNLIMITED_V1 else None


def _read(file: Path) -> str | None:
    try:
        return file.read_text().strip()
    except OSError:
        return None
