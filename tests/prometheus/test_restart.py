"""Prometheus stopped, then erring, then back: 503s that name the backend and the cause, and
values again; the adapter stays ready and counts every outcome. Last of the Prometheus tests
(file order): it restarts the shared Prometheus."""

from __future__ import annotations

import re
import time

import pytest

from tests.prometheus.conftest import NAMESPACE, TIMEOUT_SECONDS, Fleet, fetch, read

BASE = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"


pytestmark = pytest.mark.integration


def test_prometheus_down_erring_and_back(fleet: Fleet) -> None:
    path = f"{BASE}/deployments.apps/model/inference_latency_p99_seconds"
    prometheus = fleet.prometheus
    try:
        prometheus.stop()
        started = time.monotonic()
        status, document = read(fleet.pulled, path)
        assert time.monotonic() - started < TIMEOUT_SECONDS + 5
        assert status == 503 and document["reason"] == "ServiceUnavailable", document
        assert f"Prometheus at {prometheus.url}" in document["message"]
        assert "cannot reach it" in document["message"]
        # The HPA's own "metrics unavailable" handling is the right reaction: stay ready.
        assert fetch(fleet.pulled, "/readyz") == (200, b"ok")
        assert fetch(fleet.pulled, "/livez") == (200, b"ok")

        prometheus.start("--query.max-samples=1")  # the engine answers, with an error
        status, document = read(fleet.pulled, path)
        assert status == 503, document
        assert "too many samples" in document["message"]
        prometheus.stop()
    finally:
        if prometheus.process is None:
            prometheus.start()
    deadline = time.monotonic() + 30
    while (status := read(fleet.pulled, path)[0]) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    metrics = fetch(fleet.pulled, "/metrics")[1].decode()
    for outcome in ("success", "unreachable", "error"):
        counted = re.search(
            rf'adapter_backend_queries_total{{backend="prometheus",outcome="{outcome}"}} (\S+)',
            metrics,
        )
        assert counted is not None and float(counted.group(1)) >= 1, outcome
    assert "adapter_backend_query_duration_seconds_bucket" in metrics
