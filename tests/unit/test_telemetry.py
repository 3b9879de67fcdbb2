"""``adapter.telemetry``: the cached children count into the same labelled series."""

from __future__ import annotations

import pytest

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
