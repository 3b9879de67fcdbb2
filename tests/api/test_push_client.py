"""``adapter.client`` against the real application: retries deliver everything exactly once."""

from __future__ import annotations

import numpy as np

from adapter.client import LatencyRecorder, PodIdentity, PushClient
from adapter.report import PodRef
from tests.api.conftest import TOKEN, RunningAdapter
from tests.conftest import Pki

POD = PodIdentity("ml", "model-7d4b9c-x2k8p", "uid-1", {"app": "model"}, "model")


def observe(recorder: LatencyRecorder, count: int, seed: int) -> None:
    for value in np.random.default_rng(seed).lognormal(np.log(0.05), 0.5, count):
        recorder.observe(float(value))


def stored_requests(server: RunningAdapter) -> int:
    record = server.state.store.get(PodRef(POD.namespace, POD.name))
    assert record is not None
    return record.completed_requests()


async def test_refused_pushes_are_merged_and_delivered_once(
    adapter_server: RunningAdapter, pki: Pki
) -> None:
    recorder = LatencyRecorder()
    depth = {"inference_queue_depth": 1.0}
    async with PushClient(
        [adapter_server.url], POD, TOKEN, recorder, lambda: depth, ca_file=pki.ca_cert
    ) as client:
        pusher = client.pushers[0]
        observe(recorder, 100, 1)
        await client.push_now(force=True)
        assert stored_requests(adapter_server) == 100

        adapter_server.faults.mode = "refuse"
        for seed in (2, 3, 4):
            observe(recorder, 50, seed)
            depth = {"inference_queue_depth": float(seed)}
            await client.push_now(force=True)
        assert pusher.stats.failed_attempts == 3
        assert pusher.pending_requests == 150
        assert stored_requests(adapter_server) == 100

        adapter_server.faults.mode = None
        await client.push_now(force=True)
        assert pusher.pending_requests == 0
    assert stored_requests(adapter_server) == 250
    record = adapter_server.state.store.get(PodRef(POD.namespace, POD.name))
    assert record is not None
    assert record.gauges == {"inference_queue_depth": 4.0}


async def test_a_lost_answer_is_resent_unchanged_and_not_double_counted(
    adapter_server: RunningAdapter, pki: Pki
) -> None:
    recorder = LatencyRecorder()
    async with PushClient(
        [adapter_server.url], POD, TOKEN, recorder, dict, ca_file=pki.ca_cert
    ) as client:
        pusher = client.pushers[0]
        adapter_server.faults.mode = "lose_answer"
        observe(recorder, 80, 1)
        await client.push_now(force=True)
        # The adapter applied it, but the client cannot know: the report stays in flight.
        assert stored_requests(adapter_server) == 80
        assert pusher.pending_requests == 80

        adapter_server.faults.mode = None
        observe(recorder, 20, 2)
        await client.push_now(force=True)
        assert pusher.stats.duplicates == 1
        assert pusher.pending_requests == 0
    assert stored_requests(adapter_server) == 100


async def test_backoff_skips_attempts_until_due(adapter_server: RunningAdapter, pki: Pki) -> None:
    recorder = LatencyRecorder()
    async with PushClient(
        [adapter_server.url], POD, TOKEN, recorder, dict, ca_file=pki.ca_cert
    ) as client:
        pusher = client.pushers[0]
        adapter_server.faults.mode = "refuse"
        observe(recorder, 10, 1)
        await client.push_now()
        assert pusher.stats.failed_attempts == 1
        adapter_server.faults.mode = None
        observe(recorder, 10, 2)
        await client.push_now()  # not due yet: backing off for at least one interval
        assert pusher.stats.failed_attempts == 1
        assert pusher.stats.delivered == 0
        assert pusher.pending_requests == 20
