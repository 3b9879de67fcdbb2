"""What machine a benchmark ran on: cores, CPU model, Python, aiohttp, load at the time."""

from __future__ import annotations

import os
import platform
import ssl
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
    }
