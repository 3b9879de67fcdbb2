"""``adapter.client`` pushing to every replica behind one host name, against real applications.

The replicas are real adapter applications on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all on the
loopback interface), on one port, as a headless Service's pods are. What the name resolves to
comes from ``adapter.resolver.StaticResolver``, changed between lookups as a headless Service's
DNS records change when replicas come and go; everything after the lookup is the production path:
a connection per address, TLS verified against the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from prometheus_client import generate_latest

from adapter import certs
from adapter.client import Contents, LatencyRecorder, PodIdentity, PushClient, Pusher
from adapter.resolver import StaticResolver
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
from model_server.metrics import ServerMetrics
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.conftest import Pki, exposition_sample, free_port, make_pki

NAME = "adapter-push.test"
"""The host name of the pushes (a headless Service's, in a cluster)."""
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
POD = PodIdentity("ml", "model-7d4b9c-x2k8p", "uid-1", {"app": "model"}, "model")
REF = PodRef(POD.namespace, POD.name)


@pytest.fixture(scope="module")
def named_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA whose serving certificate names only ``NAME``: no address at all."""
    return make_pki(tmp_path_factory.mktemp("named-pki"), [NAME])


def other_serving_cert(pki: Pki, directory: Path) -> Pki:
    """The same CA, serving a certificate for every replica address but not for ``NAME``."""
    ca = certs.KeyPair(pki.ca_cert.read_bytes(), (pki.directory / certs.CA_KEY_FILE).read_bytes())
    pair = certs.make_serving_cert(
        ca, ["other.test", *ADDRESSES], datetime.datetime.now(datetime.UTC)
    )
    (directory / "other.crt").write_bytes(pair.cert_pem)
    (directory / "other.key").write_bytes(pair.key_pem)
    return dataclasses.replace(
        pki, serving_cert=directory / "other.crt", serving_key=directory / "other.key"
    )


@contextlib.asynccontextmanager
async def replicas(*served: tuple[str, Pki]) -> AsyncIterator[list[RunningAdapter]]:
    """Adapter applications on the given addresses, all on one free port."""
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(serve_adapter(pki, port=port, host=address))
            for address, pki in served
        ]


def stored(replica: RunningAdapter) -> int:
    """The requests the replica holds for ``POD`` (0 if it never heard of it)."""
    record = replica.state.store.get(REF)
    return record.completed_requests() if record else 0


def observe(recorder: LatencyRecorder, count: int) -> None:
    for value in np.random.default_rng(count).lognormal(np.log(0.05), 0.5, count):
        recorder.observe(float(value))


def client_for(
    pki: Pki, port: int, resolver: StaticResolver, recorder: LatencyRecorder
) -> PushClient:
    """The client a pod runs, pushing to ``https://NAME:port``."""
    return PushClient(
        [f"https://{NAME}:{port}"],
        POD,
        TOKEN,
        recorder,
        lambda: {"inference_queue_depth": 2.0},
        ca_file=pki.ca_cert,
        resolver=resolver,
        resolve_interval_seconds=0,  # look the name up before every push
    )


def port_of(replica: RunningAdapter) -> int:
    return int(replica.url.rsplit(":", 1)[1])


def resolve_to(resolver: StaticResolver, *addresses: str) -> None:
    """Change the records, as replicas coming and going change a headless Service's."""
    resolver.addresses[NAME] = sorted(addresses)


async def test_every_address_of_the_name_gets_every_report_and_changes_are_followed(
    named_pki: Pki,
) -> None:
    first, second, third = ADDRESSES
    async with replicas((first, named_pki), (second, named_pki)) as (one, two):
        resolver = StaticResolver({NAME: (first, second)})
        recorder = LatencyRecorder()
        async with client_for(named_pki, port_of(one), resolver, recorder) as client:
            adapter = client.adapters[0]
            assert sorted(adapter.pushers) == [first, second]
            observe(recorder, 100)
            await client.push_now()
            assert (stored(one), stored(two)) == (100, 100)

            resolve_to(resolver, second)  # the first replica went away
            observe(recorder, 50)
            await client.push_now()
            assert sorted(adapter.pushers) == [second]
            assert (stored(one), stored(two)) == (100, 150)

            # The first one is back, and a third appears that does not answer (yet).
            resolve_to(resolver, first, second, third)
            observe(recorder, 30)
            await client.push_now()
            assert sorted(adapter.pushers) == [first, second, third]
            assert (stored(one), stored(two)) == (130, 180), "only data from after it came back"
            dead = adapter.pushers[third]
            assert (dead.stats.failed_attempts, dead.pending_requests) == (1, 30)
            assert dead.unreachable
            assert adapter.resolution_due(), "a replica stopped answering: look the name up"
            for address in (first, second):
                assert adapter.pushers[address].pending_requests == 0

            exposition = generate_latest(
                ServerMetrics(lambda: None, lambda: client).registry
            ).decode()
            url = adapter.url
            assert (
                exposition_sample(exposition, f'model_server_push_replicas{{adapter="{url}"}}') == 3
            )
            for address, delivered in ((first, 1), (second, 3), (third, 0)):
                labels = f'adapter="{url}",address="{address}"'
                pushes = f"model_server_replica_pushes_total{{{labels},result="
                assert exposition_sample(exposition, f'{pushes}"delivered"}}') == delivered
                assert exposition_sample(exposition, f'{pushes}"failed"}}') == (address == third)
                backlog = f"model_server_push_backlog_requests{{{labels}}}"
                assert exposition_sample(exposition, backlog) == (30 if address == third else 0)
            # The totals keep what the pusher of the address that went away had delivered.
            assert (
                exposition_sample(exposition, 'model_server_pushes_total{result="delivered"}') == 5
            )
            assert exposition_sample(exposition, 'model_server_pushes_total{result="failed"}') == 1
        # One keep-alive connection per replica: every push to the second came on one.
        assert len(two.faults.push_peers) == 3
        assert len(set(two.faults.push_peers)) == 1


async def test_tls_is_verified_against_the_name_never_the_address(
    named_pki: Pki, tmp_path: Path
) -> None:
    """The second replica's certificate comes from the trusted CA and names its own address,
    but not the name the pod connects by: it is refused, and nothing reaches it."""
    first, second, _ = ADDRESSES
    unnamed = other_serving_cert(named_pki, tmp_path)
    async with replicas((first, named_pki), (second, unnamed)) as (one, two):
        resolver = StaticResolver({NAME: (first, second)})
        recorder = LatencyRecorder()
        async with client_for(named_pki, port_of(one), resolver, recorder) as client:
            observe(recorder, 40)
            await client.push_now()
            refused = client.adapters[0].pushers[second]
            assert refused.stats.failed_attempts == 1
            assert refused.pending_requests == 40
            assert client.adapters[0].pushers[first].stats.delivered == 1
        assert (stored(one), stored(two)) == (40, 0)
        assert two.faults.push_peers == [], "no request went past the handshake"


async def test_a_connection_verified_for_one_name_is_not_reused_for_another(
    named_pki: Pki,
) -> None:
    """Two adapter URLs whose names resolve to one address: the certificate names only the
    first, so pushes by the second name are refused every time, also once the first name's
    verified connection waits idle in the pool (aiohttp before 3.14.1 reused it)."""
    first = ADDRESSES[0]
    async with replicas((first, named_pki)) as (one,):
        port = port_of(one)
        resolver = StaticResolver({NAME: (first,), "other.test": (first,)})
        client = PushClient(
            [f"https://{NAME}:{port}", f"https://other.test:{port}"],
            POD,
            TOKEN,
            LatencyRecorder(),
            lambda: {"inference_queue_depth": 2.0},
            ca_file=named_pki.ca_cert,
            resolver=resolver,
        )
        async with client:
            named, other = (adapter.pushers[first] for adapter in client.adapters)
            session = client._open_session()
            for _ in range(3):  # one after the other: the first's connection is idle in the pool
                client.collect()
                await named.deliver(session, force=True)
                await other.deliver(session, force=True)
            assert (named.stats.delivered, named.stats.failed_attempts) == (3, 0)
            assert (other.stats.delivered, other.stats.failed_attempts) == (0, 3)


@dataclasses.dataclass
class Pushing:
    """A pod's client running (a push every 0.05 s) to two replicas, the second one stalled."""

    one: RunningAdapter
    two: RunningAdapter
    resolver: StaticResolver
    client: PushClient
    running: asyncio.Future[None]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Poll ``condition``; fail if ``run`` ended or 30 s went by."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not condition():
            assert not self.running.done(), self.running.exception()
            assert loop.time() < deadline, f"not within 30 s: {what}"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.running


@contextlib.asynccontextmanager
async def pushing_with_the_second_stalled(pki: Pki, requests: int = 0) -> AsyncIterator[Pushing]:
    """``requests`` recorded before the first push; the stall released at the end."""
    first, second, _ = ADDRESSES
    async with replicas((first, pki), (second, pki)) as (one, two):
        two.faults.mode = "stall"
        resolver = StaticResolver({NAME: (first, second)})
        recorder = LatencyRecorder()
        client = client_for(pki, port_of(one), resolver, recorder)
        client.interval_seconds = 0.05
        async with client:
            observe(recorder, requests)
            pushing = Pushing(one, two, resolver, client, asyncio.ensure_future(client.run()))
            try:
                yield pushing
            finally:
                await pushing.stop()
                two.faults.mode = None
                two.faults.released.set()


async def test_a_stalled_replica_delays_no_other(named_pki: Pki) -> None:
    """Each replica has its own delivery: while one holds a push unanswered, the other keeps
    receiving one report per interval."""
    second = ADDRESSES[1]
    async with pushing_with_the_second_stalled(named_pki) as pushing:
        one, two = pushing.one, pushing.two
        await pushing.until(lambda: len(one.faults.push_peers) >= 5, "the first replica starved")
        assert len(two.faults.push_peers) == 1, "one push, still unanswered"
        stalled = pushing.client.adapters[0].pushers[second]
        assert stalled.busy
        await pushing.stop()
        # Cut off on its way, the stalled report stays in flight for the next delivery.
        assert stalled._in_flight is not None


async def test_an_address_that_goes_away_mid_delivery_stops_no_other(named_pki: Pki) -> None:
    """The lookup that drops a replica's address can land while a push to it is under way: that
    push's late failure leaves the other replicas' deliveries running (it once ended them all),
    and its data is counted as dropped once."""
    first, second, _ = ADDRESSES
    async with pushing_with_the_second_stalled(named_pki, requests=20) as pushing:
        one, two, adapter = pushing.one, pushing.two, pushing.client.adapters[0]
        await pushing.until(lambda: len(two.faults.push_peers) == 1, "a push to the second")
        resolve_to(pushing.resolver, first)
        await pushing.until(lambda: second not in adapter.pushers, "the second one dropped")
        two.faults.mode = "refuse"  # the push under way fails late: certainly undelivered
        two.faults.released.set()
        pushes = len(one.faults.push_peers)
        await pushing.until(lambda: len(one.faults.push_peers) >= pushes + 5, "pushes go on")
    assert pushing.client.totals().dropped_requests == 20
    assert (stored(one), stored(two)) == (20, 0)


async def test_a_backlog_older_than_the_max_age_is_dropped_and_counted(pki: Pki) -> None:
    """A replica that cannot take reports for longer than the adapter's max age gets none of
    that data later (it would land in one burst): pending and in-flight data is dropped."""
    clock = [1_800_000_000.0]
    dead = f"https://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    pusher = Pusher(dead, POD, TOKEN, max_backlog_age_seconds=10.0, clock=lambda: clock[0])
    connector = aiohttp.TCPConnector(ssl=pki.client_context(with_client_cert=False))
    async with aiohttp.ClientSession(connector=connector) as session:
        for second in range(10):
            clock[0] += 1
            pusher.add(
                Contents.of(
                    LatencySketch.from_values([0.01] * 10), {"inference_queue_depth": second}
                )
            )
            await pusher.deliver(session, force=True)
        assert pusher.pending_requests == 100
        assert pusher.stats.dropped_requests == 0
        clock[0] += 1.5  # the oldest data is now 10.5 s old
        pusher.add(Contents.of(LatencySketch.from_values([0.01] * 7), {}))
        assert (pusher.pending_requests, pusher.stats.dropped_requests) == (7, 100)

        pusher._in_flight = pusher._take_pending()  # sent, fate unknown: resent unchanged...
        clock[0] += 11  # ...but not once it is older than the max age
        await pusher.deliver(session, force=True)
        assert (pusher.pending_requests, pusher.stats.dropped_requests) == (0, 107)

        pusher.add(Contents.of(LatencySketch.from_values([0.01] * 3), {}))
        pusher.discard()  # the replica's address went away
        assert (pusher.pending_requests, pusher.stats.dropped_requests) == (0, 110)


async def test_a_retry_starts_on_the_tick_nearest_the_end_of_its_backoff(pki: Pki) -> None:
    """``run`` tries on ticks one interval apart and lets a retry start half a tick early, so a
    replica that comes back hears from the pod within two intervals (the adapter's warm-up),
    not three; a ``Retry-After`` is never cut short (``test_push_client``)."""
    clock = [1_800_000_000.0]
    dead = f"https://127.0.0.1:{free_port()}"
    pusher = Pusher(dead, POD, TOKEN, interval_seconds=1.0, clock=lambda: clock[0])
    connector = aiohttp.TCPConnector(ssl=pki.client_context(with_client_cert=False))
    async with aiohttp.ClientSession(connector=connector) as session:
        pusher.add(Contents.of(LatencySketch.from_values([0.01]), {}))
        await pusher.deliver(session, force=True)
        due = pusher._next_attempt
        assert 1.0 <= due - clock[0] <= 2.0
        clock[0] = due - 0.6
        await pusher.deliver(session, early_seconds=0.5)
        assert pusher.stats.failed_attempts == 1, "too early even for the nearest tick"
        clock[0] = due - 0.4
        await pusher.deliver(session, early_seconds=0.5)
        assert pusher.stats.failed_attempts == 2
