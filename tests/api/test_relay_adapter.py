"""Every preset on its server's fixtures, through the relay into a real adapter.

The six scrapes of each server (``tests/fixtures/servers``: its exact exposition format, counters
rising, a family missing from scrape 4, a restart before scrape 5) are served over HTTP 15 s
apart on the adapter's hand-moved clock; the relay scrapes each, and its push client delivers
the report over TLS to the real application. What the adapter then serves is compared with what
the fixtures imply, computed here from the story and from the text parsed on its own: the
gauges, the rate, the quantiles (``histogram_quantile`` of the buckets the scrapes added, within
the sketch's 1 %), the mean, and the 404s of what each server lacks, naming the preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from kubernetes.utils import parse_quantity
from prometheus_client.parser import text_string_to_metric_families

from adapter import catalog
from adapter.catalog import Signal
from adapter.client import relay
from adapter.client.flags import PushSettings
from adapter.client.pusher import PodIdentity, PushClient
from adapter.prometheus.histogram import bucket_quantile
from adapter.prometheus.presets import PRESETS
from adapter.prometheus.sources import Histogram
from tests.api.conftest import TOKEN, FakeClock, serve_adapter
from tests.api.test_relay import metrics_server
from tests.conftest import Pki
from tests.fixtures.servers import SERVERS, Scrape, load

NAMESPACE = "llm"
WINDOW_SECONDS = 120
"""Long enough to hold all six scrapes (75 s)."""
COUNTS_FAILURES = {"tgi", "triton", "torchserve", "tfserving"}
SCRAPE_SECONDS = 15.0


def pod_path(pod: str, metric: str) -> str:
    return f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/{pod}/{metric}"


def samples(scrape: Scrape, name: str) -> list[tuple[Mapping[str, str], float]]:
    """The samples named ``name`` in the scrape (prometheus-client's parser on its own)."""
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
        if s.name == name
    ]


def bucket_totals(scrape: Scrape, name: str) -> dict[float, float]:
    totals: dict[float, float] = {}
    for labels, value in samples(scrape, f"{name}_bucket"):
        totals[float(labels["le"])] = totals.get(float(labels["le"]), 0.0) + value
    return totals


def added(scrapes: list[Scrape], name: str) -> dict[float, float]:
    """The bucket counts the scrapes after the first added (a restart starts over; a scrape
    without the family adds to the next one)."""
    total: dict[float, float] = {}
    before: dict[float, float] | None = None
    for scrape in scrapes:
        now = bucket_totals(scrape, name)
        if not now:
            continue
        if before is not None or scrape.story.index > 1:
            base = {} if scrape.story.restarted or before is None else before
            for le, count in now.items():
                total[le] = total.get(le, 0.0) + count - base.get(le, 0.0)
        before = now
    return total


@pytest.mark.parametrize("server", SERVERS)
async def test_each_preset_through_the_relay_into_a_real_adapter(pki: Pki, server: str) -> None:
    preset = PRESETS[server]
    scrapes = load(server)
    clock = FakeClock()
    pod = f"{server}-0"
    identity = PodIdentity(NAMESPACE, pod, f"uid-{pod}", {"app": server}, server)
    async with (
        serve_adapter(pki, clock=clock, window_seconds=WINDOW_SECONDS) as adapter,
        metrics_server() as fake,
        PushClient([adapter.url], identity, TOKEN, ca_file=pki.ca_cert, clock=clock) as client,
        aiohttp.ClientSession() as scraping,
    ):
        config = relay.RelayConfig(fake.url, preset, PushSettings(identity))
        relaying = relay.Relay(config, scraping, clock=clock)

        async def get(metric: str) -> tuple[int, dict[str, Any]]:
            status, body, _ = await adapter.get(pod_path(pod, metric))
            return status, body

        def value(body: dict[str, Any]) -> float:
            return float(parse_quantity(body["items"][0]["value"]))

        for scrape in scrapes:
            if scrape.story.index > 1:
                clock.advance(SCRAPE_SECONDS)
            fake.text = scrape.text
            contents = await relaying.step()
            assert contents is not None
            client.add(contents)
            await client.push_now(force=True)
            story = scrape.story
            # gauges are the scrape's
            for signal, expected in (
                (Signal.QUEUE_DEPTH, story.waiting),
                (Signal.CONCURRENCY, story.waiting + story.running),
            ):
                if signal not in preset.inputs:
                    continue
                status, body = await get(signal.value)
                if story.index == 1 and server in {"sglang", "tgi"}:
                    assert status == 404  # not written before the first request
                    assert "not in the server's metrics" in body["message"]
                    continue
                assert status == 200, body
                assert value(body) == expected
            # a family missing from the scrape: its metrics are 404s saying so, for now
            if story.missing in {
                h.name for h in preset.inputs.values() if isinstance(h, Histogram)
            }:
                signal = next(
                    s
                    for s, h in preset.inputs.items()
                    if isinstance(h, Histogram) and h.name == story.missing
                )
                stem = "latency" if signal is Signal.LATENCY else "time_to_first_token"
                status, body = await get(f"inference_{stem}_p99_seconds")
                assert status == 404
                assert f"{story.missing}_bucket is not in the server's metrics" in body["message"]

        # after the six scrapes: the window (120 s) holds all of them
        served = sum(s.story.served for s in scrapes[1:])
        shed = sum(s.story.shed for s in scrapes[1:])
        expected_requests = served + (shed if server in COUNTS_FAILURES else 0)
        status, body = await get("inference_requests_per_second")
        assert status == 200, body
        covered = 5 * SCRAPE_SECONDS + 1  # since the first report, and the slice it covers
        assert value(body) == pytest.approx(expected_requests / covered, rel=1e-6)

        for signal, source in preset.inputs.items():
            if not isinstance(source, Histogram):
                continue
            stem = "latency" if signal is Signal.LATENCY else "time_to_first_token"
            buckets = added(scrapes, source.name)
            for percent in (50, 90, 99):
                status, body = await get(f"inference_{stem}_p{percent}_seconds")
                assert status == 200, body
                exact = bucket_quantile(percent / 100, buckets) * source.unit_seconds
                assert value(body) == pytest.approx(exact, rel=0.01), (stem, percent)

        for signal, reason in preset.lacks.items():
            for metric in (m.name for m in catalog.METRICS if m.signal is signal):
                status, body = await get(metric)
                assert status == 404, (metric, body)
                assert f"the relay's {server} preset" in body["message"], body["message"]
                assert reason in body["message"]
