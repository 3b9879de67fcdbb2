"""Soak: a minute of mixed pushes and queries at 70 % of the measured capacity.

A real adapter process; the load (``tests.reliability.soak_load``) is a separate process on
127.0.0.1 that first measures the capacity (3 s flat out, the same mix), then runs open-loop at
``LOAD`` times it for ``SOAK_SECONDS``. What must hold:

- no errors: every push accepted, every query a 200 value list, no transport error, nothing
  logged as an error by the adapter;
- stable query latency: the p99 of the last ``COMPARED_SECONDS`` at most ``P99_GROWTH`` times
  the p99 of the first ``COMPARED_SECONDS`` after the warm-up (plus ``P99_SLACK_SECONDS``, the
  scheduling noise of a shared 2-core machine, which a ratio of millisecond figures magnifies);
- stable memory: the adapter's resident memory grows less than 5 % after the warm-up.

The adapter runs with a 10 s window instead of the default 30 s, so that every pod's window is
full within the ``WARMUP_SECONDS`` and memory has reached its steady state: a 30 s window would
need a warm-up longer than the soak leaves. What is soaked is every code path of a push and a
query, at a steady size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import start_adapter, stop
from tests.reliability.conftest import log_problems

pytestmark = pytest.mark.integration

LOAD = 0.7
SOAK_SECONDS = 60.0
WARMUP_SECONDS = 15.0
"""The 10 s window filled, plus a sweep of the adapter (every 5 s)."""
COMPARED_SECONDS = 20.0
P99_GROWTH = 1.5
P99_SLACK_SECONDS = 0.005
RSS_GROWTH = 0.05
PODS = 200
REPOSITORY = Path(__file__).resolve().parents[2]


def p99(latencies: list[float]) -> float:
    assert len(latencies) >= 100, f"only {len(latencies)} samples"
    return float(np.percentile(latencies, 99))


def test_soak_at_70_percent_of_capacity(tmp_path: Path) -> None:
    adapter = start_adapter(tmp_path, "--window=10s")
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.reliability.soak_load",
                adapter.url,
                f"--ca-file={adapter.ca_file}",
                f"--token-file={adapter.cert_dir / 'push-token'}",
                f"--client-cert={tmp_path / 'alice.crt'}",
                f"--client-key={tmp_path / 'alice.key'}",
                f"--server-pid={adapter.process.pid}",
                f"--pods={PODS}",
                f"--load={LOAD}",
                f"--soak-seconds={SOAK_SECONDS:g}",
            ],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=SOAK_SECONDS + 60,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert adapter.process.poll() is None, "the adapter died"
    finally:
        stop(adapter)
    result = json.loads(run.stdout)
    operations = result["operations"]
    first = [
        latency
        for t, kind, latency in operations
        if kind == "query" and WARMUP_SECONDS <= t < WARMUP_SECONDS + COMPARED_SECONDS
    ]
    last = [
        latency
        for t, kind, latency in operations
        if kind == "query" and t >= SOAK_SECONDS - COMPARED_SECONDS
    ]
    warm = [rss for t, rss in result["rss"] if t >= WARMUP_SECONDS]
    rss_growth = max(warm) / warm[0] - 1
    print(
        f"soak: capacity {result['capacity_per_second']:.0f} ops/s, ran at"
        f" {result['rate_per_second']:.0f} ops/s ({len(operations)} operations in"
        f" {result['soak_seconds']:.1f} s); CPU at capacity {result['capacity_cpu_utilisation']},"
        f" in the soak {result['soak_cpu_utilisation']};"
        f" query p99 {p99(first) * 1000:.1f} ms after warm-up, {p99(last) * 1000:.1f} ms at the"
        f" end; RSS {warm[0] / 2**20:.1f} MiB after warm-up, peak {max(warm) / 2**20:.1f} MiB"
        f" ({rss_growth:+.1%}); start lag p99 {result['start_lag_p99_seconds'] * 1000:.1f} ms;"
        f" {result['statuses']}"
    )
    assert not result["errors"], result["errors"]
    assert result["wrong"] == 0, result["wrong_answers"]
    assert len(operations) >= 0.99 * result["rate_per_second"] * SOAK_SECONDS
    assert not log_problems(adapter.log_file), log_problems(adapter.log_file)[:5]
    assert p99(last) <= P99_GROWTH * p99(first) + P99_SLACK_SECONDS
    assert rss_growth < RSS_GROWTH
