"""What a benchmark ran on: cores, CPU model, Python, aiohttp, load at the time, and which code
(the commit, and the files that differed from it: others may be editing the same tree)."""

from __future__ import annotations

import os
import platform
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np


def cpu_model() -> str:
    """The ``model name`` line of /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine shows here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def code() -> dict[str, Any]:
    """The git commit of the working tree and the tracked files changed from it, if git knows."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "uncommitted": [line[3:] for line in status.splitlines()]}


def describe() -> dict[str, Any]:
    """The machine and software versions, as recorded in the result file."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "numpy": np.__version__,
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
        "code": code(),
    }
