"""``adapter.client`` against the real application: retries deliver everything exactly once."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np

from adapter.client import Contents, LatencyRecorder, PodIdentity, PushClient, Pusher, TokenFile
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
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


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_backoff_is_at_most_two_intervals_but_retry_after_is_honoured(
    adapter_server: RunningAdapter, pki: Pki
) -> None:
    clock = SteppedClock()
    pusher = Pusher(adapter_server.url, POD, TOKEN, interval_seconds=1.0, clock=clock)
    connector = aiohttp.TCPConnector(ssl=pki.client_context(with_client_cert=False))
    async with aiohttp.ClientSession(connector=connector) as session:
        adapter_server.faults.mode = "refuse"  # 503, Retry-After: 1
        for _ in range(12):  # a long outage: the backoff must not grow past two intervals
            pusher.add(Contents.of(LatencySketch.from_values([0.01]), {}))
            await pusher.deliver(session, force=True)
            assert pusher._next_attempt - clock.now <= 2.0
        adapter_server.faults.mode = "shed_for_10s"  # 429, Retry-After: 10
        await pusher.deliver(session, force=True)
        assert pusher._next_attempt - clock.now >= 10.0
        clock.now += 9.5
        adapter_server.faults.mode = None
        await pusher.deliver(session, early_seconds=0.5)  # as ``run`` calls it
        assert pusher.stats.delivered == 0, "it must wait as long as the adapter asked"
        clock.now += 1.0
        await pusher.deliver(session)
        assert pusher.stats.delivered == 1
        assert pusher.pending_requests == 0
    assert stored_requests(adapter_server) == 12


async def test_a_rotated_token_file_is_read_again(
    adapter_server: RunningAdapter, pki: Pki, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale-token\n")
    recorder = LatencyRecorder()
    async with PushClient(
        [adapter_server.url], POD, TokenFile(token_file), recorder, dict, ca_file=pki.ca_cert
    ) as client:
        pusher = client.pushers[0]
        observe(recorder, 5, 1)
        await client.push_now(force=True)
        assert pusher.stats.failed_attempts == 1  # 401: kept, to retry with the next token
        replacement = tmp_path / "token.new"
        replacement.write_text(TOKEN + "\n")
        replacement.replace(token_file)  # as the kubelet swaps a projected token
        observe(recorder, 5, 2)
        await client.push_now(force=True)
        assert pusher.stats.delivered == 1
    assert stored_requests(adapter_server) == 10


async def test_a_restarted_container_is_not_taken_for_duplicates(
    adapter_server: RunningAdapter, pki: Pki
) -> None:
    """A container that restarts keeps its pod's uid (the downward API's ``POD_UID``), so its
    new process must not count ``seq`` up from where the old one started: the adapter would
    acknowledge and ignore its reports as duplicates, no sign of life, for as long as the old
    process had pushed."""
    clock = [1_800_000_000.0]
    for restart, requests in enumerate((30, 20)):
        recorder = LatencyRecorder()
        async with PushClient(
            [adapter_server.url],
            POD,
            TOKEN,
            recorder,
            dict,
            ca_file=pki.ca_cert,
            clock=lambda: clock[0],
        ) as client:
            for _ in range(3 - restart):  # the old process pushed more often than the new one
                observe(recorder, requests // (3 - restart), restart)
                await client.push_now(force=True)
                clock[0] += 1
            assert client.totals().duplicates == 0
        clock[0] += 5  # the container restarts
    assert stored_requests(adapter_server) == 50
