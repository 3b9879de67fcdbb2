"""The relay against a server over real HTTP: failing scrapes push nothing and are logged once
per outage, a restart is counted, and the relay's own ``/metrics`` and ``/healthz`` say so.
(Its reports through a real adapter: ``test_relay_adapter.py``.)"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from adapter.client import relay
from adapter.client.flags import PushSettings
from adapter.client.pusher import PodIdentity
from adapter.prometheus import presets
from tests.fixtures.servers import load


@dataclass
class FakeServer:
    """A server's ``/metrics`` whose answer the test sets (real HTTP on 127.0.0.1)."""

    url: str
    text: str = ""
    status: int = 200


@contextlib.asynccontextmanager
async def metrics_server() -> AsyncIterator[FakeServer]:
    server = FakeServer("")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=server.text, status=server.status)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    try:
        yield server
    finally:
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def relaying(server: FakeServer, clock: Clock) -> AsyncIterator[relay.Relay]:
    config = relay.RelayConfig(
        server.url,
        presets.VLLM,
        PushSettings(PodIdentity("llm", "vllm-0")),
        scrape_timeout_seconds=2.0,
    )
    async with aiohttp.ClientSession() as session:
        yield relay.Relay(config, session, clock=clock)


async def get(app: web.Application, path: str) -> tuple[int, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{runner.addresses[0][1]}{path}") as answer,
        ):
            return answer.status, await answer.text()
    finally:
        await runner.cleanup()


async def test_failed_scrapes_push_nothing_and_are_logged_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scrapes = load("vllm")
    clock = Clock()
    caplog.set_level(logging.INFO, logger="adapter.client.relay")
    async with metrics_server() as server, relaying(server, clock) as rel:
        server.text = scrapes[1].text
        assert (await rel.step()) is not None
        server.status = 503
        for _ in range(3):
            clock.now += 1
            assert await rel.step() is None
        server.status, server.text = 200, "<html>not metrics</html>\n"
        assert await rel.step() is None
        server.text = scrapes[2].text
        clock.now += 1
        contents = await rel.step()
    assert contents is not None and contents.requests == scrapes[2].story.served
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "cannot scrape" in line] == [
        f"cannot scrape {server.url}: the server answered 503; pushing nothing until it"
        " answers, so the pod goes stale at the adapter's --max-age (logged once per outage)"
    ]
    assert f"scraping {server.url} works again after 3s and 4 failed scrapes" in lines
    _, metrics = await get(relay.make_app(rel, 1.0), "/metrics")
    assert 'relay_scrapes_total{result="failed"} 4.0' in metrics
    assert 'relay_scrapes_total{result="ok"} 2.0' in metrics


async def test_a_restart_and_a_missing_family_are_said_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, logger="adapter.client.relay")
    async with metrics_server() as server, relaying(server, clock) as rel:
        for scrape in load("vllm"):
            server.text = scrape.text
            assert await rel.step() is not None
        app = relay.make_app(rel, 1.0)
        _, metrics = await get(app, "/metrics")
        healthy = await get(app, "/healthz")
        clock.now += 60
        stalled = await get(app, "/healthz")
    assert "relay_server_restarts_total 1.0" in metrics
    assert 'relay_signal_missing{signal="latency"} 0.0' in metrics
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("the report lacks latency: vllm:e2e_request_latency_seconds_bucket")
        for line in lines
    )
    assert "the report carries latency again" in lines
    assert any("restarted (its counters went down)" in line for line in lines)
    assert healthy == (200, '{"ok": true, "server_reachable": true}')
    assert stalled[0] == 503


async def test_an_unforeseen_error_reading_a_scrape_is_a_failed_scrape_not_the_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # an exception out of step() ends PushClient.run's task group: the relay would serve its
    # /metrics and never push again
    scrapes = load("vllm")
    async with metrics_server() as server, relaying(server, Clock()) as rel:
        server.text = scrapes[1].text
        with monkeypatch.context() as patched:
            patched.setattr(rel.reader, "read", lambda scrape: 1 / 0)
            assert await rel.step() is None
        assert await rel.step() is not None
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)
