"""A push storm from 1,000 distinct pods within one second, over 250 concurrent connections, from
a separate process.

Every answer must be a 200 or a shed (429/503 with ``Retry-After``), never another 5xx, and the
adapter must not crash: afterwards it answers health checks and queries, and serves exactly the
pods it accepted, with the values they pushed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.utils import parse_quantity

from tests.integration.conftest import AdapterProcess, start_adapter, stop
from tests.reliability import storm
from tests.reliability.conftest import CUSTOM_METRICS, ApiReader, log_problems

pytestmark = pytest.mark.integration

PODS = 1000
CONNECTIONS = 250
"""Concurrent connections of the storm (a handshake costs more than a push: one connection per
pod takes this 2-core machine about 3 s unloaded, which the suite's time budget cannot hold)."""
NAMESPACE = "storm"
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[AdapterProcess]:
    process = start_adapter(tmp_path, "--max-age=30s", "--window=5s")
    try:
        yield process
    finally:
        stop(process)


def peak_rss_kib(pid: int) -> tuple[int, int]:
    """Resident and peak resident memory of a process (KiB)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def test_push_storm_is_accepted_or_shed_and_the_adapter_keeps_serving(
    adapter: AdapterProcess,
) -> None:
    rss_before, _ = peak_rss_kib(adapter.process.pid)
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.storm",
            adapter.url,
            str(adapter.ca_file),
            str(adapter.cert_dir / "push-token"),
            f"--pods={PODS}",
            "--spread=1",
            f"--connections={CONNECTIONS}",
            f"--namespace={NAMESPACE}",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    _, peak = peak_rss_kib(adapter.process.pid)
    print(
        f"storm: {result['statuses']}, connection errors {result['errors']}, last push started"
        f" at {result['last_launched_seconds']:.2f}s, all answered at"
        f" {result['finished_seconds']:.2f}s ({time.monotonic() - started:.1f}s with the"
        f" client's start-up); adapter RSS {rss_before // 1024} MiB, peak {peak // 1024} MiB"
    )

    assert adapter.process.poll() is None, "the adapter died"
    assert set(result["statuses"]) <= {"200", "429", "503"}, result["statuses"]
    assert result["shed_without_retry_after"] == 0
    assert result["errors"] == {}, "connections failed instead of being answered"
    assert sum(result["statuses"].values()) == PODS

    with ApiReader(adapter) as reader:
        assert reader.get("/healthz")[0] == 200
        status, body = reader.get(
            f"{CUSTOM_METRICS}/namespaces/{NAMESPACE}/pods/*/inference_queue_depth"
            "?labelSelector=app%3Dstorm"
        )
    assert status == 200, body[:300]
    served = {
        item["describedObject"]["name"]: parse_quantity(item["value"])
        for item in json.loads(body)["items"]
    }
    assert served == {storm.pod_name(i): storm.queue_depth(i) for i in result["accepted"]}
    assert log_problems(adapter.log_file) == []
