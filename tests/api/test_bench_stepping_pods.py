"""``bench.stepping_pods``: its client notes every push ``PushClient.run`` makes, the timings
the freshness figure is made of (``bench.freshness.trial``)."""

from __future__ import annotations

import asyncio
import contextlib

from adapter.client import LatencyRecorder, PodIdentity
from bench.stepping_pods import TimedPushClient
from tests.api.conftest import TOKEN, RunningAdapter
from tests.conftest import Pki


async def test_the_timed_client_notes_the_pushes_run_makes(
    adapter_server: RunningAdapter, pki: Pki
) -> None:
    recorder = LatencyRecorder()
    client = TimedPushClient(
        [adapter_server.url],
        PodIdentity("fresh", "fresh-00"),
        TOKEN,
        recorder,
        dict,
        ca_file=pki.ca_cert,
        interval_seconds=0.05,
    )
    loop = asyncio.get_running_loop()
    async with client:
        running = asyncio.ensure_future(client.run())
        deadline = loop.time() + 30
        while client.pushers[0].stats.delivered < 3:
            assert loop.time() < deadline, "run() delivered nothing"
            recorder.observe(0.05)
            await asyncio.sleep(0.02)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert len(client.pushes) >= 3
    assert all(collected <= answered for collected, answered in client.pushes)
