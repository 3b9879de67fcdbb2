"""The push client that model servers embed: a latency recorder and a pusher per adapter URL.

A server calls ``LatencyRecorder.observe(seconds)`` for every completed request and runs a
``PushClient``, which every interval drains the recorder into a sketch and delivers one report to
each adapter (docs/push-protocol.md). Delivery never blocks the server's requests, and retries
never double count:

- data that was certainly not delivered (connection refused, 429/503) stays *pending*, merged with
  newer data bin-wise, and goes out under a new ``seq`` later;
- a report whose fate is unknown (timeout or a connection lost after sending) is *in flight*: it is
  sent again unchanged, same ``seq``, until the adapter acknowledges it (``accepted`` or
  ``duplicate``), so the adapter's de-duplication makes the retry harmless.

Memory is bounded: one pending sketch and at most one in-flight report per adapter. Failed
attempts back off exponentially with jitter, up to ``max_backoff_seconds`` (two push intervals by
default, so an adapter restarted after a crash hears from every pod again within two intervals);
an adapter that sheds load with 429/503 and ``Retry-After`` is left alone that long (at most
``MAX_RETRY_AFTER_SECONDS``).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from adapter.sketch import RELATIVE_ACCURACY, LatencySketch

logger = logging.getLogger(__name__)

PUSH_PATH = "/push/v1"
MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class PodIdentity:
    """Who the reports are about; ``uid`` marks this incarnation of the pod."""

    namespace: str
    name: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    deployment: str | None = None

    def as_wire(self) -> dict[str, Any]:
        pod: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "labels": dict(self.labels),
        }
        if self.uid:
            pod["uid"] = self.uid
        if self.deployment:
            pod["owner"] = {"kind": "Deployment", "name": self.deployment}
        return pod


class LatencyRecorder:
    """Collects request latencies (seconds) between pushes. Event-loop use only."""

    def __init__(self) -> None:
        self._values: list[float] = []

    def observe(self, seconds: float) -> None:
        """Record one completed request."""
        self._values.append(seconds)

    def drain(self) -> LatencySketch:
        """Everything observed since the last drain, as a sketch; the recorder starts empty."""
        values, self._values = self._values, []
        if not values:
            return LatencySketch.empty()
        return LatencySketch.from_values(np.asarray(values, dtype=np.float64))


def encode_report(
    identity: PodIdentity,
    seq: int,
    gauges: Mapping[str, float],
    latency: LatencySketch,
    unix_time: float,
) -> dict[str, Any]:
    """The JSON body of one push."""
    stamp = datetime.datetime.fromtimestamp(unix_time, datetime.UTC)
    return {
        "pod": identity.as_wire(),
        "seq": seq,
        "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "gauges": dict(gauges),
        "latency": {
            "relative_accuracy": RELATIVE_ACCURACY,
            "zero_count": latency.zero_count,
            "bins": latency.to_bins(),
        },
    }


class _Undelivered(Exception):
    """The report certainly did not reach the adapter's store."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the delta-seconds form), bounded; None if absent or odd."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, MAX_RETRY_AFTER_SECONDS)


class _Unknown(Exception):
    """The report may or may not have been applied."""


@dataclass
class PushStats:
    """Counters a server may export about its pushing."""

    delivered: int = 0
    duplicates: int = 0
    failed_attempts: int = 0
    rejected: int = 0


Token = str | Callable[[], str]
"""A bearer token, or a function returning the current one (a projected service-account token
is rotated on disk by the kubelet, so it is read again for every push)."""


class TokenFile:
    """The token in a file, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp != self._stamp:
            self._token = self.path.read_text().strip()
            self._stamp = stamp
        return self._token


class Pusher:
    """Delivery to one adapter URL: pending data, an in-flight report, backoff."""

    def __init__(
        self,
        url: str,
        identity: PodIdentity,
        token: Token,
        *,
        interval_seconds: float = 1.0,
        max_backoff_seconds: float | None = None,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/") + PUSH_PATH
        self.identity = identity
        self._token = token
        self._interval = interval_seconds
        self._max_backoff = (
            2 * interval_seconds if max_backoff_seconds is None else max_backoff_seconds
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._seq = 0
        self._pending = LatencySketch.empty()
        self._pending_gauges: Mapping[str, float] = {}
        self._has_pending = False
        self._in_flight: dict[str, Any] | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self.stats = PushStats()

    def add(self, latency: LatencySketch, gauges: Mapping[str, float]) -> None:
        """Merge new data into what awaits delivery; gauges replace older gauges."""
        self._pending = self._pending.merge(latency)
        self._pending_gauges = gauges
        self._has_pending = True

    @property
    def pending_requests(self) -> int:
        """Requests recorded but not yet acknowledged (pending plus in flight)."""
        in_flight = 0
        if self._in_flight is not None:
            latency = self._in_flight["latency"]
            in_flight = latency["zero_count"] + sum(latency["bins"].values())
        return self._pending.count + in_flight

    def _new_report(self) -> dict[str, Any]:
        self._seq += 1
        return encode_report(
            self.identity, self._seq, self._pending_gauges, self._pending, self._clock()
        )

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        token = self._token() if callable(self._token) else self._token
        try:
            async with session.post(
                self.url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
            ) as response:
                answer = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as error:
            raise _Undelivered(str(error)) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _Unknown(repr(error)) from error
        if response.status == 401:
            # Most likely a token that rotated under us: keep the data, read the token again.
            raise _Undelivered("the adapter refused the token (401)")
        if response.status in (429, 503):
            raise _Undelivered(
                f"adapter shed the push with {response.status}",
                _retry_after(response.headers.get("Retry-After")),
            )
        if response.status >= 500:
            raise _Unknown(f"adapter answered {response.status}")
        if response.status != 200:
            self.stats.rejected += 1
            logger.error(
                "the adapter at %s rejected a push with %d: %s",
                self.url,
                response.status,
                answer[:300].decode(errors="replace"),
            )
            return
        if b'"duplicate"' in answer:
            self.stats.duplicates += 1
        self.stats.delivered += 1

    async def deliver(self, session: aiohttp.ClientSession, force: bool = False) -> None:
        """Send what is due: the in-flight report first, then pending data as a new report."""
        if not force and self._clock() < self._next_attempt:
            return
        try:
            if self._in_flight is not None:
                await self._post(session, self._in_flight)
                self._in_flight = None
            if self._has_pending:
                report, latency = self._new_report(), self._pending
                self._pending, self._has_pending = LatencySketch.empty(), False
                try:
                    await self._post(session, report)
                except _Unknown:
                    self._in_flight = report
                    raise
                except _Undelivered:
                    self.add(latency, report["gauges"])
                    raise
        except (_Undelivered, _Unknown) as error:
            self._failures += 1
            self.stats.failed_attempts += 1
            backoff = min(self._max_backoff, self._interval * 2 ** min(self._failures, 16))
            delay = random.uniform(min(self._interval, backoff), backoff)  # noqa: S311
            if isinstance(error, _Undelivered) and error.retry_after_seconds is not None:
                delay = max(delay, error.retry_after_seconds)
            self._next_attempt = self._clock() + delay
            logger.warning(
                "push to %s failed (attempt %d, retry within %.1fs): %s",
                self.url,
                self._failures,
                self._next_attempt - self._clock(),
                error,
            )
            return
        self._failures = 0
        self._next_attempt = 0.0


def client_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """TLS to the adapter, trusting ``ca_file`` (the adapter's CA) or the system roots."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class PushClient:
    """Pushes one pod's numbers to every adapter URL each interval."""

    def __init__(
        self,
        urls: list[str],
        identity: PodIdentity,
        token: Token,
        recorder: LatencyRecorder,
        gauges: Callable[[], Mapping[str, float]],
        *,
        ca_file: Path | None = None,
        interval_seconds: float = 1.0,
    ) -> None:
        self.recorder = recorder
        self.gauges = gauges
        self.interval_seconds = interval_seconds
        self.pushers = [
            Pusher(url, identity, token, interval_seconds=interval_seconds) for url in urls
        ]
        self._ssl = client_ssl_context(ca_file)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PushClient:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def collect(self) -> None:
        """Move what the recorder holds, and the current gauges, to every pusher."""
        latency, gauges = self.recorder.drain(), dict(self.gauges())
        for pusher in self.pushers:
            pusher.add(latency, gauges)

    async def push_now(self, force: bool = False) -> None:
        """Collect and deliver once to every adapter, concurrently."""
        if self._session is None:
            raise RuntimeError("use PushClient as an async context manager")
        self.collect()
        await asyncio.gather(*(p.deliver(self._session, force) for p in self.pushers))

    async def run(self) -> None:
        """Push every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.push_now()
