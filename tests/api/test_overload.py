"""Shedding pushes (``adapter.admission``) against the real application over TLS: beyond
``--max-inflight-pushes`` and ``--max-pod-push-rate`` a push gets 429 with ``Retry-After``,
queries keep being answered, and pods that push through ``adapter.client`` lose nothing.

The pushes in flight are held deterministically: raw connections send a push's head and all
of its body but the last byte, so each holds a place until the test sends that byte."""

from __future__ import annotations

import asyncio
import json
import ssl

from adapter.client import LatencyRecorder, PodIdentity, PushClient, encode_report
from adapter.config import PushConfig
from adapter.report import PodRef
from adapter.sketch import LatencySketch
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter, until
from tests.api.test_push_client import observe
from tests.conftest import Pki

QUERY = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/inference_queue_depth"
PODS = [PodIdentity("ml", f"model-{i}", f"uid-{i}", {"app": "model"}, "model") for i in range(4)]


class HeldPush:
    """A push whose last body byte is held back: it stays in flight until ``release``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, last: bytes):
        self.reader, self.writer, self.last = reader, writer, last

    @classmethod
    async def start(cls, pki: Pki, url: str, pod: PodIdentity, seq: int) -> HeldPush:
        body = json.dumps(encode_report(pod, seq, {}, LatencySketch.empty(), 0.0)).encode()
        host, port = url.removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        writer.write(
            b"POST /push/v1 HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
            % (TOKEN.encode(), len(body), body[:-1])
        )
        await writer.drain()
        return cls(reader, writer, body[-1:])

    async def release(self) -> bytes:
        """Send the last byte; the status line of the answer."""
        self.writer.write(self.last)
        await self.writer.drain()
        status = await asyncio.wait_for(self.reader.readline(), 10)
        self.writer.close()
        return status


def stored_requests(adapter: RunningAdapter, pod: PodIdentity) -> int:
    record = adapter.state.store.get(PodRef(pod.namespace, pod.name))
    return record.completed_requests() if record is not None else 0


async def test_pushes_beyond_the_in_flight_limit_are_shed_then_merged_and_queries_answer(
    pki: Pki,
) -> None:
    async with serve_adapter(pki, push=PushConfig(max_inflight_pushes=2)) as adapter:
        assert (await adapter.push(PODS[0], 1, gauges={"inference_queue_depth": 3})).status == 200
        held = [await HeldPush.start(pki, adapter.url, pod, 1) for pod in PODS[1:3]]
        in_flight = adapter.state.pushes_in_flight
        await until(lambda: in_flight.count == 2)

        # a raw push: 429, Retry-After, a Status naming the flag
        response = await adapter.push(PODS[3], 1)
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        # pods pushing through adapter.client keep what was shed
        recorders = [LatencyRecorder() for _ in PODS]
        clients = [
            PushClient([adapter.url], pod, TOKEN, recorder, dict, ca_file=pki.ca_cert)
            for pod, recorder in zip(PODS, recorders, strict=True)
        ]
        for client in clients:
            await client.__aenter__()
        try:
            for seed, recorder in enumerate(recorders):
                observe(recorder, 50, seed)
            await asyncio.gather(*(client.push_now(force=True) for client in clients))
            assert [c.pushers[0].pending_requests for c in clients] == [50] * 4
            # queries are answered while pushes are shed
            status, body, _ = await adapter.get(QUERY)
            assert status == 200
            assert [item["value"] for item in body["items"]] == ["3"]

            assert [await push.release() for push in held] == [b"HTTP/1.1 200 OK\r\n"] * 2
            await until(lambda: in_flight.count == 0)
            for seed, recorder in enumerate(recorders):
                observe(recorder, 30, seed + 10)
            for client in clients:  # one at a time: each finds a place free
                await client.push_now(force=True)
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)
        assert [c.pushers[0].pending_requests for c in clients] == [0] * 4
        assert [stored_requests(adapter, pod) for pod in PODS] == [80] * 4
        registry = adapter.state.telemetry.registry
        assert registry.get_sample_value("adapter_pushes_shed_total", {"cause": "in_flight"}) == 5
        refused = {"result": "rejected", "reason": "TooManyRequests"}
        assert registry.get_sample_value("adapter_pushes_total", refused) == 5


async def test_a_pod_pushing_beyond_its_rate_gets_429_until_its_tokens_come_back(
    pki: Pki,
) -> None:
    async with serve_adapter(pki, push=PushConfig(max_pod_push_rate=3)) as adapter:
        statuses = [(await adapter.push(PODS[0], seq)).status for seq in range(1, 5)]
        assert statuses == [200, 200, 200, 429]
        assert (await adapter.push(PODS[1], 1)).status == 200, "another pod has its own rate"
        response = await adapter.push(PODS[0], 5)
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
        await asyncio.sleep(0.4)  # a token comes back every 1/3 s
        assert (await adapter.push(PODS[0], 6)).status == 200
