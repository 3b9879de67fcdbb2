"""A pod past its memory budget is told so over HTTP: 429 with ``Retry-After``, counted, and its
data unchanged; ``/metrics`` shows what the pods' data holds."""

from __future__ import annotations

import json

from adapter import sketch
from adapter.client import PodIdentity, encode_report
from adapter.config import PushConfig
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
from tests.api.conftest import TOKEN, serve_adapter
from tests.conftest import Pki

POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
EVERY_BIN = {str(i): 1 for i in range(sketch.MIN_INDEX, sketch.MAX_INDEX + 1)}


def every_bin_report(seq: int) -> bytes:
    document = encode_report(POD, seq, {}, LatencySketch.empty(), 1_800_000_000.0)
    document["latency"]["bins"] = EVERY_BIN
    return json.dumps(document).encode()


async def test_a_pod_past_its_budget_gets_a_429_with_retry_after(pki: Pki) -> None:
    # 19 pushes back to back: no per-pod rate limit here, the budget is what refuses them
    unlimited = PushConfig(max_pod_push_rate=1000)
    async with serve_adapter(pki, pod_memory_budget_bytes=128 * 1024, push=unlimited) as server:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        statuses = []
        for seq in range(1, 20):  # ~12 KB each, all within one slice of the (fake) clock
            async with server.anonymous.post(
                f"{server.url}/push/v1", data=every_bin_report(seq), headers=headers
            ) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert response.headers["Retry-After"] == "1"
                    body = await response.json()
                    assert body["reason"] == "TooManyRequests"
                    assert "more than the 131,072 bytes a pod may hold" in body["message"]
        assert 200 in statuses and statuses[statuses.index(429) :] == [429] * statuses.count(429)
        record = server.state.store.get(PodRef(POD.namespace, POD.name))
        assert record is not None
        assert record.completed_requests() == statuses.count(200) * len(EVERY_BIN)
        async with server.reader.get(f"{server.url}/metrics") as response:
            metrics = await response.text()
        rejected = 'adapter_pushes_total{reason="TooManyRequests",result="rejected"}'
        assert f"{rejected} {float(statuses.count(429))}" in metrics
        assert f"adapter_pod_data_bytes {float(server.state.store.held_bytes)}" in metrics
