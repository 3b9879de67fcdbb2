"""Choosing a preset on the command line: ``--preset NAME`` (the relay) or ``--prometheus-preset
NAME`` (``serve --source prometheus``), and for ``generic`` the names of the server's series.

``add_flags`` declares them with a prefix, ``chosen`` reads back what was given (plain strings,
so configuration can hold them), ``build`` makes the ``Preset``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from types import MappingProxyType

from adapter.prometheus import presets
from adapter.prometheus.sources import Preset

UNITS = MappingProxyType({"s": 1.0, "ms": 1e-3, "us": 1e-6})
"""The units a generic histogram may be in."""

GENERIC = MappingProxyType(
    {
        "queue_gauge": "the gauge of requests waiting",
        "running_gauge": "the gauge of requests running (concurrency is waiting + running)",
        "requests_counter": "the counter of completed requests (default: the latency"
        " histogram's _count)",
        "latency_histogram": "the end-to-end latency histogram",
        "ttft_histogram": "the time-to-first-token histogram",
        "kv_gauge": "the KV-cache utilization gauge, 0-1",
        "latency_unit": "the histograms' unit: s, ms or us (default s)",
    }
)
"""``generic``'s flags (as ``presets.generic`` keywords) and what each names, as exposed."""


def _flag(prefix: str, key: str) -> str:
    return f"--{prefix}{key.replace('_', '-')}"


def add_flags(add: Callable[..., None], prefix: str = "", default: str | None = None) -> None:
    """Declare ``--<prefix>preset`` (required unless ``default``) and ``generic``'s names."""
    add(
        f"--{prefix}preset",
        choices=presets.NAMES,
        default=default,
        required=default is None,
        help="the kind of server whose metrics are read: "
        + ", ".join(presets.NAMES)
        + (f" (default {default})" if default else ""),
    )
    for key, what in GENERIC.items():
        add(_flag(prefix, key), help=f"with --{prefix}preset generic: {what}")


def chosen(args: argparse.Namespace, prefix: str = "") -> tuple[str, Mapping[str, str]]:
    """The preset's name and the generic names given (flag key -> value)."""
    attribute = prefix.replace("-", "_")
    named = {key: getattr(args, attribute + key) for key in GENERIC}
    return getattr(args, attribute + "preset"), {k: v for k, v in named.items() if v}


def build(name: str, named: Mapping[str, str], prefix: str = "") -> Preset:
    """The preset ``name``, ``generic`` made of ``named``; ValueError saying what is wrong."""
    if name != presets.GENERIC:
        if named:
            flags = ", ".join(_flag(prefix, key) for key in named)
            raise ValueError(f"{flags}: only with --{prefix}preset generic")
        return presets.lookup(name)
    unit = named.get("latency_unit", "s")
    if unit not in UNITS:
        raise ValueError(f"{_flag(prefix, 'latency_unit')} {unit!r}: use s, ms or us")
    series = {key: value for key, value in named.items() if key != "latency_unit"}
    if not series:
        names = ", ".join(_flag(prefix, key) for key in GENERIC if key != "latency_unit")
        raise ValueError(f"--{prefix}preset generic needs the names of its series: {names}")
    return presets.generic(latency_unit_seconds=UNITS[unit], **series)
