"""``adapter.telemetry``: the plain request and push counters count into the labelled series
that ``prometheus_client`` would expose."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from adapter import telemetry as telemetry_module
from adapter.telemetry import Telemetry


def test_requests_and_pushes_are_counted_per_label_set() -> None:
    telemetry = Telemetry(lambda: 7)
    telemetry.observe_request("push", 200, 0.0004)
    telemetry.observe_request("push", 200, 0.003)
    telemetry.observe_request("push", 401, 0.0001)
    telemetry.count_push("accepted", "created")
    telemetry.count_push("accepted", "created")
    telemetry.count_push("rejected", "Unauthorized")
    sample = telemetry.registry.get_sample_value
    assert sample("adapter_requests_total", {"route": "push", "code": "200"}) == 2
    assert sample("adapter_requests_total", {"route": "push", "code": "401"}) == 1
    assert sample("adapter_request_duration_seconds_count", {"route": "push"}) == 3
    assert sample("adapter_request_duration_seconds_bucket", {"route": "push", "le": "0.0005"}) == 2
    assert sample("adapter_request_duration_seconds_sum", {"route": "push"}) == pytest.approx(
        0.0035
    )
    assert sample("adapter_pushes_total", {"result": "accepted", "reason": "created"}) == 2
    assert sample("adapter_pushes_total", {"result": "rejected", "reason": "Unauthorized"}) == 1
    assert sample("adapter_tracked_pods", {}) == 7


def samples(registry: CollectorRegistry, prefix: str) -> set[tuple[str, tuple, float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in registry.collect()
        for s in family.samples
        if s.name.startswith(prefix) and not s.name.endswith("_created")
    }


def test_the_plain_counters_expose_what_prometheus_client_would() -> None:
    """The request and push counters are plain numbers (no lock per observation); their
    samples equal those of ``prometheus_client``'s own Counter and Histogram fed the same."""
    observations = [("push", 200, 0.0005), ("push", 200, 3.0), ("query", 404, 0.02)]
    observations += [("push", 429, 0.0001 * i) for i in range(30)]
    telemetry = Telemetry(lambda: 0)
    reference = CollectorRegistry()
    requests = Counter("adapter_requests", "", ["route", "code"], registry=reference)
    durations = Histogram(
        "adapter_request_duration_seconds",
        "",
        ["route"],
        buckets=telemetry_module._LATENCY_BUCKETS,
        registry=reference,
    )
    for route, code, seconds in observations:
        telemetry.observe_request(route, code, seconds)
        requests.labels(route, str(code)).inc()
        durations.labels(route).observe(seconds)
    for prefix in ("adapter_requests_total", "adapter_request_duration_seconds"):
        assert samples(telemetry.registry, prefix) == samples(reference, prefix)
