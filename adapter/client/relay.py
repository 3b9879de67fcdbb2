"""``inference-adapter relay``: a sidecar that pushes for a real model server, read from its
``/metrics``.

Every push interval the relay scrapes the server beside it in the pod, reads the text through a
preset (``adapter.client.reading``: gauges now, and what the counters and histograms gained
since the last scrape) and pushes one report to every adapter replica with the client the
model server embeds (``adapter.client.pusher``), under the same identity and push flags.

- A scrape that fails (refused, an error status, text that is not exposition) or times out
  pushes nothing for that interval: the pod goes stale at the adapter's ``--max-age``, as a
  dead pod should. The outage is logged once when it starts and once when it ends.
- A server restart (its counters went down) is logged and counted; what the new counters count
  is pushed (``reading``). A family the server stops writing is left out of the reports, and
  the change is logged once.
- ``/metrics``: the relay's own metrics (scrapes, restarts, what is missing, its pushes);
  ``/healthz``: 200 while the relay's loop runs (a server outage is the server's problem, and
  restarting the relay would not help it), 503 if the loop stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from adapter import durations
from adapter.catalog import Signal
from adapter.client import flags
from adapter.client.pusher import Contents
from adapter.client.reading import ExpositionError, Reader, parse
from adapter.client.telemetry import PushCollector
from adapter.prometheus import preset_flags
from adapter.prometheus.sources import Preset

logger = logging.getLogger(__name__)

PORT = 9095
ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"
"""The classic text format: what every server in the presets writes."""
MAX_BODY_BYTES = 32 * 1024 * 1024
STALLED_INTERVALS = 5
"""``/healthz`` fails when the loop has not started a scrape for this many intervals (plus the
scrape timeout)."""


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay needs; built by ``config_from_args``."""

    scrape_url: str
    preset: Preset
    push: flags.PushSettings
    host: str = "0.0.0.0"  # noqa: S104 - a sidecar serves its metrics on the pod's interfaces
    port: int = PORT
    scrape_timeout_seconds: float = 1.0
    """A scrape not answered within this fails (default: the push interval)."""


class ScrapeFailed(Exception):
    """The server did not give exposition text this time."""


class Relay:
    """Scrape, read, and say what changed: the I/O around a ``reading.Reader``."""

    def __init__(
        self,
        config: RelayConfig,
        session: aiohttp.ClientSession,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.session = session
        self.reader = Reader(config.preset)
        self._families = self.reader.families
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        self._scrapes = Counter(
            "relay_scrapes", "Scrapes of the server by result", ["result"], registry=self.registry
        )
        for result in ("ok", "failed"):
            self._scrapes.labels(result)
        self._restarts = Counter(
            "relay_server_restarts",
            "Times the server's counters went down (a restart)",
            registry=self.registry,
        )
        self._missing = Gauge(
            "relay_signal_missing",
            "1 when the last report lacked the signal (the preset's server has none, or the"
            " scrape lacked its family)",
            ["signal"],
            registry=self.registry,
        )
        self._outage_since: float | None = None
        self._failed_in_outage = 0
        self._transient: Mapping[str, str] = {}
        self.last_attempt: float | None = None
        """When the loop last started a scrape (the clock's time)."""

    async def step(self) -> Contents | None:
        """One interval: scrape and read the server; None (nothing to push) when the scrape
        failed."""
        self.last_attempt = self.clock()
        try:
            text = await self._fetch()
            reading = self.reader.read(parse(text, self._families))
        except (ScrapeFailed, ExpositionError) as error:
            self._failed(str(error))
            return None
        except Exception as error:  # raised into the push loop, it would end the pushes for good
            logger.exception("reading the scrape of %s failed unexpectedly", self.config.scrape_url)
            self._failed(f"reading the scrape failed unexpectedly: {error!r}")
            return None
        self._scrapes.labels("ok").inc()
        if self._outage_since is not None:
            logger.info(
                "scraping %s works again after %.0fs and %d failed scrapes",
                self.config.scrape_url,
                self.clock() - self._outage_since,
                self._failed_in_outage,
            )
            self._outage_since = None
        if reading.restarted:
            self._restarts.inc()
            logger.info(
                "the server at %s restarted (its counters went down): counting from its new"
                " counters",
                self.config.scrape_url,
            )
        self._note_missing(reading.contents)
        return reading.contents

    async def _fetch(self) -> str:
        timeout = aiohttp.ClientTimeout(total=self.config.scrape_timeout_seconds)
        try:
            async with self.session.get(
                self.config.scrape_url, headers={"Accept": ACCEPT}, timeout=timeout
            ) as response:
                if response.status != 200:
                    raise ScrapeFailed(f"the server answered {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise ScrapeFailed(f"the answer is larger than {MAX_BODY_BYTES} bytes")
        except TimeoutError:
            raise ScrapeFailed(
                f"no answer within {self.config.scrape_timeout_seconds:g}s"
            ) from None
        except aiohttp.ClientError as error:
            raise ScrapeFailed(str(error) or type(error).__name__) from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ScrapeFailed(f"the answer is not UTF-8: {error}") from None

    def _failed(self, why: str) -> None:
        self._scrapes.labels("failed").inc()
        self._failed_in_outage += 1
        if self._outage_since is None:
            self._outage_since = self.clock()
            self._failed_in_outage = 1
            logger.warning(
                "cannot scrape %s: %s; pushing nothing until it answers, so the pod goes"
                " stale at the adapter's --max-age (logged once per outage)",
                self.config.scrape_url,
                why,
            )

    def _note_missing(self, contents: Contents) -> None:
        """Export what the report lacks, and log a change of what the server stopped (or
        started again) writing; what the preset's server never has is said once, at start."""
        missing = contents.source.missing if contents.source is not None else {}
        for name in (s.value for s in Signal):
            self._missing.labels(name).set(1 if name in missing else 0)
        lacks = {s.value for s in self.config.preset.lacks}
        transient = {k: v for k, v in missing.items() if k not in lacks}
        if transient != self._transient:
            for name in sorted(transient.keys() - self._transient.keys()):
                logger.warning("the report lacks %s: %s", name, transient[name])
            for name in sorted(self._transient.keys() - transient.keys()):
                logger.info("the report carries %s again", name)
            self._transient = transient

    @property
    def server_reachable(self) -> bool:
        """Whether the last scrape succeeded (or none was tried yet)."""
        return self._outage_since is None

    def healthy(self, interval_seconds: float) -> bool:
        """Whether the loop started a scrape recently."""
        if self.last_attempt is None:
            return True  # starting
        limit = STALLED_INTERVALS * interval_seconds + self.config.scrape_timeout_seconds
        return self.clock() - self.last_attempt <= limit


def make_app(relay: Relay, interval_seconds: float) -> web.Application:
    """The relay's own endpoints: ``/metrics`` and ``/healthz``."""

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(relay.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        healthy = relay.healthy(interval_seconds)
        document: dict[str, Any] = {"ok": healthy, "server_reachable": relay.server_reachable}
        return web.json_response(document, status=200 if healthy else 503, dumps=json.dumps)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def run(config: RelayConfig) -> None:
    """Relay until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    interval = config.push.push_interval_seconds
    async with aiohttp.ClientSession() as session, config.push.client() as client:
        relay = Relay(config, session)
        relay.registry.register(PushCollector(lambda: client, "relay"))
        async with _serving(make_app(relay, interval), config.host, config.port):
            logger.info(
                "relaying %s (preset %s) every %gs to %s",
                config.scrape_url,
                config.preset.name,
                interval,
                ", ".join(config.push.adapter_urls),
            )
            pushing = asyncio.create_task(client.run(relay.step))
            await stop.wait()
            pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushing


@contextlib.asynccontextmanager
async def _serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


# -- the command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The relay's flags: the server, the preset, its own port, and the push flags."""
    add = parser.add_argument
    add(
        "--scrape",
        required=True,
        help="the server's metrics URL, e.g. http://127.0.0.1:8000/metrics",
    )
    preset_flags.add_flags(add)
    add(
        "--scrape-timeout",
        type=durations.duration_arg,
        help="a scrape not answered within this fails (default: the push interval)",
    )
    add("--host", default="0.0.0.0", help="address of the relay's own /metrics and /healthz")  # noqa: S104
    add("--port", type=int, default=PORT, help=f"port of /metrics and /healthz (default {PORT})")
    flags.add_push_flags(add, environ)


def config_from_args(args: argparse.Namespace) -> RelayConfig:
    """The flags as configuration; ValueError (or OSError reading a file) with one line."""
    if not args.scrape.startswith(("http://", "https://")):
        raise ValueError(f"--scrape {args.scrape!r} must be an http:// or https:// URL")
    name, named = preset_flags.chosen(args)
    preset = preset_flags.build(name, named)
    push = flags.push_settings(args)
    if not push.adapter_urls:
        raise ValueError("the relay needs at least one --adapter-url")
    timeout = args.scrape_timeout if args.scrape_timeout is not None else push.push_interval_seconds
    if timeout <= 0:
        raise ValueError("--scrape-timeout must be positive")
    return RelayConfig(args.scrape, preset, push, args.host, args.port, timeout)
