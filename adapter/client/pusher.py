"""The push client that model servers embed: a latency recorder and a pusher per adapter replica.

A server calls ``LatencyRecorder.observe(seconds)`` for every completed request and runs a
``PushClient``, which every interval drains the recorder into a sketch and delivers one report to
every adapter replica (docs/push-protocol.md). What a report carries is ``Contents``: gauges,
sketches by name (``latency``, ``time_to_first_token``, ``service_time``), and for a relay
(``adapter.client.relay``) the completed requests, the mean latency's sum and count, and where
the numbers come from (``adapter.report.Source``); contents merge, so undelivered ones join the
next.

An adapter URL stands for every address its host name resolves to (``adapter.resolver``; a
headless Service lists each replica): the client looks the name up again every
``resolve_interval_seconds`` and at once when a replica stops answering, keeps one keep-alive
connection per address, and verifies TLS against the URL's host name, never against an address.
Each replica has its own ``Pusher`` and its own delivery task, so a slow or dead replica never
delays another. Retries never double count:

- data that was certainly not delivered (connection refused, 429/503) stays *pending*, merged with
  newer data bin-wise, and goes out under a new ``seq`` later;
- a report whose fate is unknown (timeout or a connection lost after sending) is *in flight*: it is
  sent again unchanged, same ``seq``, until the adapter acknowledges it (``accepted`` or
  ``duplicate``), so the adapter's de-duplication makes the retry harmless.

Sequence numbers come from one counter per client, so they increase at every replica, also at
one whose address went away and came back. The counter starts at the client's start time in
microseconds, not at 1: a container that restarts keeps its pod's uid, so a new process counting
from 1 would have its reports ignored as duplicates for as long as the old one had pushed.

Memory is bounded: one pending sketch and at most one in-flight report per replica, and neither
older than ``max_backlog_age_seconds`` (set it to the adapter's ``--max-age``): an older backlog
is dropped, and counted, rather than delivered, because it would land in one burst in a window
that never saw it and inflate that replica's rate and quantiles. Failed attempts back off
exponentially with jitter, up to ``max_backoff_seconds`` (two push intervals by default, so an
adapter restarted after a crash hears from every pod again within two intervals); an adapter
that sheds load with 429/503 and ``Retry-After`` is left alone that long (at most
``MAX_RETRY_AFTER_SECONDS``).
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
import random
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiohttp
import numpy as np

from adapter.report import LATENCY, SERVICE_TIME, SKETCH_NAMES, Source
from adapter.resolver import DnsResolver, Resolver, is_address
from adapter.sketch import RELATIVE_ACCURACY, LatencySketch
from adapter.transport import bearer_token_problem

logger = logging.getLogger(__name__)

PUSH_PATH = "/push/v1"
MAX_RETRY_AFTER_SECONDS = 30.0
DEFAULT_MAX_BACKLOG_AGE_SECONDS = 10.0
"""The adapter's default ``--max-age``: undelivered data older than this is dropped."""
DEFAULT_RESOLVE_INTERVAL_SECONDS = 5.0
"""How often an adapter URL's host name is looked up again for replicas that came or went."""


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


def _no_gauges() -> Mapping[str, float]:
    return MappingProxyType({})


def _no_sketches() -> Mapping[str, LatencySketch]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Contents:
    """What one report carries besides who sends it: the gauges now, and what happened since the
    previous report. Contents merge (``merge``), so data that was not delivered joins the next
    report: sketches bin-wise, counts added, gauges and source the newer ones."""

    gauges: Mapping[str, float] = field(default_factory=_no_gauges)
    sketches: Mapping[str, LatencySketch] = field(default_factory=_no_sketches)
    """By field name (``adapter.report.SKETCH_NAMES``); a sketch not here is not reported."""
    units_per_request: int = 1
    """Counts each request makes in the sketches (a relay spreads a request into 1024)."""
    requests: int | None = None
    """Completed requests, when counted apart from the latency sketch."""
    latency_mean: tuple[float, int] | None = None
    """The latencies' sum (seconds) and how many requests it covers."""
    source: Source | None = None

    @classmethod
    def of(
        cls,
        latency: LatencySketch,
        gauges: Mapping[str, float],
        service_time: LatencySketch | None = None,
    ) -> Contents:
        """A model server's contents: its latencies and gauges, and the time each request
        held a worker slot when it measures that (sent even when empty: it says the pod does)."""
        sketches = {LATENCY: latency}
        if service_time is not None:
            sketches[SERVICE_TIME] = service_time
        return cls(gauges, MappingProxyType(sketches))

    @property
    def latency(self) -> LatencySketch:
        return self.sketches.get(LATENCY, _EMPTY)

    @property
    def request_count(self) -> int:
        """Requests these contents account for."""
        if self.requests is not None:
            return self.requests
        return self.latency.count // self.units_per_request

    def merge(self, newer: Contents) -> Contents:
        """These contents followed by ``newer``. ValueError if their sketches count requests
        differently (never within one pusher)."""
        if newer.units_per_request != self.units_per_request:
            raise ValueError("contents with different units per request do not merge")
        sketches = dict(self.sketches)
        for name, latencies in newer.sketches.items():
            sketches[name] = sketches[name].merge(latencies) if name in sketches else latencies
        mean = self.latency_mean
        if newer.latency_mean is not None:
            mean = newer.latency_mean
            if self.latency_mean is not None:
                mean = (mean[0] + self.latency_mean[0], mean[1] + self.latency_mean[1])
        requests = self.requests
        if newer.requests is not None:
            requests = newer.requests + (self.requests or 0)
        return Contents(
            newer.gauges,
            MappingProxyType(sketches),
            self.units_per_request,
            requests,
            mean,
            newer.source if newer.source is not None else self.source,
        )

    def as_wire(self) -> dict[str, Any]:
        """The report's fields after ``pod``, ``seq`` and ``timestamp``."""
        wire: dict[str, Any] = {"gauges": dict(self.gauges)}
        for name in SKETCH_NAMES:
            latencies = self.sketches.get(name)
            if latencies is None and name == LATENCY:
                latencies = _EMPTY  # the contract's original field: always sent
            if latencies is not None:
                wire[name] = {
                    "relative_accuracy": RELATIVE_ACCURACY,
                    "zero_count": latencies.zero_count,
                    "bins": latencies.to_bins(),
                }
                if self.units_per_request != 1:
                    wire[name]["counts_per_request"] = self.units_per_request
        if self.requests is not None:
            wire["requests"] = self.requests
        if self.latency_mean is not None:
            wire["latency_mean"] = {"sum": self.latency_mean[0], "count": self.latency_mean[1]}
        if self.source is not None:
            wire["source"] = self.source.as_wire()
        return wire


_EMPTY = LatencySketch.empty()
EMPTY_CONTENTS = Contents()


def encode(identity: PodIdentity, seq: int, contents: Contents, unix_time: float) -> dict[str, Any]:
    """The JSON body of one push."""
    stamp = datetime.datetime.fromtimestamp(unix_time, datetime.UTC)
    return {
        "pod": identity.as_wire(),
        "seq": seq,
        "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **contents.as_wire(),
    }


def encode_report(
    identity: PodIdentity,
    seq: int,
    gauges: Mapping[str, float],
    latency: LatencySketch,
    unix_time: float,
) -> dict[str, Any]:
    """The JSON body of a model server's push: its gauges and latencies."""
    return encode(identity, seq, Contents.of(latency, gauges), unix_time)


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
    """Counters a server may export about its pushing (to one replica, or summed)."""

    delivered: int = 0
    duplicates: int = 0
    failed_attempts: int = 0
    rejected: int = 0
    dropped_requests: int = 0
    """Requests whose latencies were dropped undelivered: older than the backlog's max age, or
    meant for a replica whose address went away."""

    def add(self, other: PushStats) -> None:
        """Add ``other``'s counts to these."""
        for counter in fields(self):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


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


@dataclass
class _Outgoing:
    """A report taken out of the pending data, with what it carries (to merge back)."""

    body: dict[str, Any]
    contents: Contents
    since: float
    """When its oldest data was collected (the client's clock)."""


class Pusher:
    """Delivery to one adapter replica: pending data, an in-flight report, backoff.

    ``url`` is where to connect (for a replica found by name, its address); ``server_hostname``
    is the name TLS verifies and the ``Host`` header carries (None: the URL's own host).
    """

    def __init__(
        self,
        url: str,
        identity: PodIdentity,
        token: Token,
        *,
        server_hostname: str | None = None,
        interval_seconds: float = 1.0,
        max_backoff_seconds: float | None = None,
        max_backlog_age_seconds: float = DEFAULT_MAX_BACKLOG_AGE_SECONDS,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        next_seq: Callable[[], int] | None = None,
    ) -> None:
        self.url = url.rstrip("/") + PUSH_PATH
        self.identity = identity
        self.server_hostname = server_hostname
        self._headers: dict[str, str] = {}
        if server_hostname is not None:
            port = urllib.parse.urlsplit(url).port
            self._headers["Host"] = server_hostname + (f":{port}" if port else "")
        self._token = token
        self._interval = interval_seconds
        self._max_backoff = (
            2 * interval_seconds if max_backoff_seconds is None else max_backoff_seconds
        )
        self._max_backlog_age = max_backlog_age_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._next_seq = next_seq or itertools.count(1).__next__
        self._pending = EMPTY_CONTENTS
        self._pending_since = 0.0
        self._has_pending = False
        self._in_flight: _Outgoing | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._not_before = 0.0
        """The end of a ``Retry-After``: no attempt before it (``_next_attempt`` may be later)."""
        self._lock = asyncio.Lock()
        self.unreachable = False
        """Whether the last attempt failed to connect (or timed out): the replica may be gone."""
        self.stats = PushStats()

    def add(self, contents: Contents) -> None:
        """Merge new data into what awaits delivery; gauges replace older gauges. A backlog
        older than the max age is dropped first."""
        now = self._clock()
        if self._has_pending and now - self._pending_since > self._max_backlog_age:
            self._drop(
                self._pending.request_count, f"undelivered for over {self._max_backlog_age:g}s"
            )
            self._has_pending = False
        if not self._has_pending:
            self._pending_since = now
            self._pending = contents
        else:
            self._pending = self._pending.merge(contents)
        self._has_pending = True

    @property
    def pending_requests(self) -> int:
        """Requests recorded but not yet acknowledged (pending plus in flight): the backlog."""
        in_flight = self._in_flight.contents.request_count if self._in_flight is not None else 0
        pending = self._pending.request_count if self._has_pending else 0
        return pending + in_flight

    @property
    def busy(self) -> bool:
        """Whether a delivery is under way."""
        return self._lock.locked()

    def discard(self) -> None:
        """Drop the whole backlog (the replica is gone), counting it."""
        self._drop(self.pending_requests, "the replica's address went away")
        self._pending, self._has_pending, self._in_flight = EMPTY_CONTENTS, False, None

    def _drop(self, requests: int, why: str) -> None:
        """Count (and log) requests whose latencies will never reach this replica."""
        self.stats.dropped_requests += requests
        if requests:
            logger.warning(
                "dropped the latencies of %d requests for %s: %s", requests, self.url, why
            )

    def _take_pending(self) -> _Outgoing:
        """The pending data as a new report under the next ``seq``; nothing is pending after."""
        body = encode(self.identity, self._next_seq(), self._pending, self._clock())
        outgoing = _Outgoing(body, self._pending, self._pending_since)
        self._pending, self._has_pending = EMPTY_CONTENTS, False
        return outgoing

    def _restore(self, outgoing: _Outgoing) -> None:
        """Merge a report that certainly was not delivered back into the pending data (newer
        gauges, if any arrived meanwhile, win)."""
        if self._has_pending:
            outgoing.since = min(outgoing.since, self._pending_since)
            self._pending = outgoing.contents.merge(self._pending)
        else:
            self._pending = outgoing.contents
        self._pending_since, self._has_pending = outgoing.since, True

    def _authorization(self) -> str:
        """The ``Authorization`` header; ``_Undelivered`` when the token cannot be read or sent
        (a projected token file missing or half-written during a rotation): the data waits for
        the next attempt, and the push loop goes on."""
        try:
            token = self._token() if callable(self._token) else self._token
        except (OSError, UnicodeError) as error:
            raise _Undelivered(f"the push token could not be read: {error}") from error
        problem = bearer_token_problem(token)
        if problem is not None:
            raise _Undelivered(f"the push token {problem}")
        return f"Bearer {token}"

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        authorization = self._authorization()
        try:
            async with session.post(
                self.url,
                json=body,
                headers={**self._headers, "Authorization": authorization},
                server_hostname=self.server_hostname,
                timeout=self._timeout,
            ) as response:
                answer = await response.read()
        except aiohttp.ClientSSLError as error:
            raise _Undelivered(str(error)) from error
        except aiohttp.ClientConnectorError as error:
            self.unreachable = True
            raise _Undelivered(str(error)) from error
        except TimeoutError as error:
            self.unreachable = True
            raise _Unknown(repr(error)) from error
        except aiohttp.ClientError as error:
            raise _Unknown(repr(error)) from error
        self.unreachable = False
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

    async def deliver(
        self, session: aiohttp.ClientSession, force: bool = False, early_seconds: float = 0.0
    ) -> None:
        """Send what is due: the in-flight report first, then pending data as a new report.

        After a failure, nothing is due until the backoff ends; ``early_seconds`` lets an
        attempt start that much sooner (a caller that tries on ticks passes half its tick, so a
        retry lands on the tick nearest the backoff's end, not the one after), but never before
        a ``Retry-After`` ends. ``force`` ignores both. One delivery at a time: a call while
        another runs waits for it. A report cancelled on its way stays in flight (it may have
        arrived), so the next delivery resends it.
        """
        async with self._lock:
            now = self._clock()
            if self._in_flight is not None and now - self._in_flight.since > self._max_backlog_age:
                self._drop(
                    self._in_flight.contents.request_count,
                    f"unacknowledged for over {self._max_backlog_age:g}s",
                )
                self._in_flight = None
            if not force and (now < self._not_before or now + early_seconds < self._next_attempt):
                return
            try:
                if self._in_flight is not None:
                    await self._post(session, self._in_flight.body)
                    self._in_flight = None
                if self._has_pending:
                    # Kept here, not read back from ``_in_flight``: ``discard`` may empty that
                    # while the post is under way (the address went away).
                    outgoing = self._in_flight = self._take_pending()
                    try:
                        await self._post(session, outgoing.body)
                    except _Undelivered:
                        self._in_flight = None
                        self._restore(outgoing)
                        raise
                    self._in_flight = None
            except (_Undelivered, _Unknown) as error:
                self._back_off(error)
                return
            self._failures = 0
            self._next_attempt = self._not_before = 0.0

    def _back_off(self, error: _Undelivered | _Unknown) -> None:
        self._failures += 1
        self.stats.failed_attempts += 1
        backoff = min(self._max_backoff, self._interval * 2 ** min(self._failures, 16))
        delay = random.uniform(min(self._interval, backoff), backoff)  # noqa: S311
        now = self._clock()
        if isinstance(error, _Undelivered) and error.retry_after_seconds is not None:
            delay = max(delay, error.retry_after_seconds)
            self._not_before = now + error.retry_after_seconds
        self._next_attempt = now + delay
        logger.warning(
            "push to %s failed (attempt %d, retry within %.1fs): %s",
            self.url,
            self._failures,
            self._next_attempt - self._clock(),
            error,
        )


def parse_adapter_url(url: str) -> urllib.parse.SplitResult:
    """An adapter base URL, ``https://HOST[:PORT][/PREFIX]``; ValueError naming what is wrong.

    >>> parse_adapter_url("https://inference-metrics-adapter-push.metrics.svc:6443").port
    6443
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ValueError(f"adapter URL {url!r}: {error}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"adapter URL {url!r}: expected https://HOST[:PORT] (TLS only)")
    if parts.query or parts.fragment:
        raise ValueError(f"adapter URL {url!r}: a base URL has no query or fragment")
    try:
        parts.hostname.encode("idna")  # what every lookup does first
    except UnicodeError:
        raise ValueError(f"adapter URL {url!r}: {parts.hostname!r} is not a host name") from None
    return parts


class AdapterReplicas:
    """One adapter URL: the replicas its host name resolves to, with a ``Pusher`` for each.

    An address that appears gets a new pusher; one that goes away takes its pusher with it (its
    backlog dropped and counted, its counts kept in ``retired``). A failed lookup changes nothing.
    """

    def __init__(
        self,
        url: str,
        make_pusher: Callable[[str, str | None], Pusher],
        resolver: Resolver,
        *,
        resolve_interval_seconds: float = DEFAULT_RESOLVE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = parse_adapter_url(url)
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 443
        self._parts = parts
        self._make_pusher = make_pusher
        self._resolver = resolver
        self._resolve_interval = resolve_interval_seconds
        self._clock = clock
        self._next_resolution = 0.0
        self._resolving = False
        self.pushers: dict[str, Pusher] = {}
        """The replicas' pushers by address."""
        self.retired = PushStats()
        """What the pushers of addresses that went away counted."""

    def resolution_due(self) -> bool:
        """Whether it is time to look the name up again (and no lookup is under way)."""
        return not self._resolving and self._clock() >= self._next_resolution

    def resolve_soon(self) -> None:
        """Look the name up again at the next occasion, not only after the usual interval."""
        self._next_resolution = 0.0

    async def resolve(self) -> None:
        """Look the host name up and follow the answer; a failure is logged and changes nothing."""
        self._resolving = True
        self._next_resolution = self._clock() + self._resolve_interval
        try:
            addresses = await self._resolver.resolve(self.host, self.port)
        except OSError as error:
            logger.warning(
                "cannot resolve %s (still pushing to the %d replicas known): %s",
                self.host,
                len(self.pushers),
                error,
            )
            return
        finally:
            self._resolving = False
        self._follow(addresses)

    def _follow(self, addresses: list[str]) -> None:
        gone = [a for a in self.pushers if a not in addresses]
        for address in gone:
            pusher = self.pushers.pop(address)
            pusher.discard()
            self.retired.add(pusher.stats)
        server_hostname = None if is_address(self.host) else self.host
        added = [a for a in addresses if a not in self.pushers]
        for address in added:
            self.pushers[address] = self._make_pusher(self._address_url(address), server_hostname)
        if gone or added:
            logger.info(
                "adapter %s: %d replicas (%s)",
                self.url,
                len(self.pushers),
                ", ".join(self.pushers) or "none",
            )

    def _address_url(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        netloc = f"{host}:{self._parts.port}" if self._parts.port else host
        return urllib.parse.urlunsplit(self._parts._replace(netloc=netloc))

    def totals(self) -> PushStats:
        """Every count of this URL's pushers, those of addresses that went away included."""
        totals = PushStats()
        totals.add(self.retired)
        for pusher in self.pushers.values():
            totals.add(pusher.stats)
        return totals


def first_seq(unix_time: float) -> int:
    """Where a client's ``seq`` starts: above every ``seq`` an earlier process of the same pod
    sent, as long as that one pushed less than once a microsecond (microseconds since the epoch
    stay far below the protocol's 2^63 - 1).

    >>> first_seq(1_800_000_000.25)
    1800000000250000
    """
    return int(unix_time * 1_000_000)


def client_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """TLS to the adapter, trusting ``ca_file`` (the adapter's CA) or the system roots."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class PushClient:
    """Pushes one pod's numbers to every replica of every adapter URL each interval.

    A model server gives a ``recorder`` and its ``gauges`` (and ``service_times``, a recorder
    of how long each request held a worker slot, for the required replicas); a relay gives
    neither and hands ``run`` a function that scrapes and reads its server.
    """

    def __init__(
        self,
        urls: list[str],
        identity: PodIdentity,
        token: Token,
        recorder: LatencyRecorder | None = None,
        gauges: Callable[[], Mapping[str, float]] | None = None,
        *,
        ca_file: Path | None = None,
        interval_seconds: float = 1.0,
        max_backlog_age_seconds: float = DEFAULT_MAX_BACKLOG_AGE_SECONDS,
        resolver: Resolver | None = None,
        resolve_interval_seconds: float = DEFAULT_RESOLVE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
        service_times: LatencyRecorder | None = None,
    ) -> None:
        self.recorder = recorder
        self.gauges = gauges
        self.service_times = service_times
        self.interval_seconds = interval_seconds
        next_seq = itertools.count(first_seq(clock())).__next__

        def make_pusher(url: str, server_hostname: str | None) -> Pusher:
            return Pusher(
                url,
                identity,
                token,
                server_hostname=server_hostname,
                interval_seconds=interval_seconds,
                max_backlog_age_seconds=max_backlog_age_seconds,
                clock=clock,
                next_seq=next_seq,
            )

        self.adapters = [
            AdapterReplicas(
                url,
                make_pusher,
                resolver or DnsResolver(),
                resolve_interval_seconds=resolve_interval_seconds,
                clock=clock,
            )
            for url in urls
        ]
        self._ssl = client_ssl_context(ca_file)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PushClient:
        """Open the connection pool and look every adapter's replicas up (for at most one
        interval: a name that does not resolve yet is looked up again later)."""
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
        lookups = asyncio.gather(*(adapter.resolve() for adapter in self.adapters))
        try:
            await asyncio.wait_for(lookups, self.interval_seconds)
        except TimeoutError:
            logger.warning("looking up the adapters took over %gs", self.interval_seconds)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def pushers(self) -> list[Pusher]:
        """The pusher of every replica known now."""
        return [p for adapter in self.adapters for p in adapter.pushers.values()]

    def totals(self) -> PushStats:
        """Every count of every pusher, those of replicas that went away included."""
        totals = PushStats()
        for adapter in self.adapters:
            totals.add(adapter.totals())
        return totals

    def collect(self) -> None:
        """Move what the recorders hold, and the current gauges, to every pusher."""
        if self.recorder is None or self.gauges is None:
            return
        held = self.service_times.drain() if self.service_times is not None else None
        self.add(Contents.of(self.recorder.drain(), dict(self.gauges()), held))

    def add(self, contents: Contents) -> None:
        """Give every pusher ``contents`` to deliver."""
        for pusher in self.pushers:
            pusher.add(contents)

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use PushClient as an async context manager")
        return self._session

    async def _deliver(
        self,
        adapter: AdapterReplicas,
        pusher: Pusher,
        force: bool = False,
        early_seconds: float = 0.0,
    ) -> None:
        """One delivery. A replica that just stopped answering (it may be gone) has the name
        looked up again with the next collection; one that keeps failing, at the usual interval."""
        was_unreachable = pusher.unreachable
        await pusher.deliver(self._open_session(), force, early_seconds)
        if pusher.unreachable and not was_unreachable:
            adapter.resolve_soon()

    async def _deliver_in_round(
        self, adapter: AdapterReplicas, pusher: Pusher, early_seconds: float
    ) -> None:
        """``_deliver`` as ``run`` starts it: an error nobody foresaw is logged, never raised
        into ``run``'s task group, where it would end this pod's pushes to every replica."""
        try:
            await self._deliver(adapter, pusher, early_seconds=early_seconds)
        except Exception:
            logger.exception(
                "push to %s failed unexpectedly; the next interval retries", pusher.url
            )

    async def push_now(self, force: bool = False) -> None:
        """Collect and deliver once to every replica, concurrently, and wait for all of them
        (the last push at shutdown; tests). Looks the replicas up first when that is due."""
        self._open_session()
        await asyncio.gather(*(a.resolve() for a in self.adapters if a.resolution_due()))
        self.collect()
        await asyncio.gather(
            *(
                self._deliver(adapter, pusher, force)
                for adapter in self.adapters
                for pusher in list(adapter.pushers.values())
            )
        )

    async def run(self, read: Callable[[], Awaitable[Contents | None]] | None = None) -> None:
        """Every interval until cancelled: look the replicas up when due, collect (or await
        ``read``: None adds nothing new that interval), and start a delivery to every replica
        not still busy with its last one. Lookups and deliveries run as tasks of their own, so
        neither a slow name server nor a slow replica delays the rest; cancelling ``run``
        cancels them (a report cut off on its way stays in flight). A retry goes on the tick
        nearest its backoff's end, so a replica that comes back hears from this pod within two
        intervals. The interval runs from tick to tick, however long ``read`` takes."""
        self._open_session()
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        async with asyncio.TaskGroup() as tasks:
            while True:
                next_tick = max(next_tick + self.interval_seconds, loop.time())
                await asyncio.sleep(next_tick - loop.time())
                contents = await read() if read is not None else None
                self._start_round(tasks, contents)

    def _start_round(self, tasks: asyncio.TaskGroup, contents: Contents | None) -> None:
        """One interval's work: the lookups due, the collection (``contents``, or the
        recorder's), a delivery per idle replica."""
        for adapter in self.adapters:
            if adapter.resolution_due():
                tasks.create_task(adapter.resolve())
        if contents is not None:
            self.add(contents)
        else:
            self.collect()
        early = self.interval_seconds / 2
        for adapter in self.adapters:
            for pusher in list(adapter.pushers.values()):
                if not pusher.busy:
                    tasks.create_task(self._deliver_in_round(adapter, pusher, early))
