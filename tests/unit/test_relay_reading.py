"""The relay's reading of six real servers' exposition, scrape after scrape, through the presets.

The fixtures (``tests/fixtures/servers``) are six scrapes of each server in its exact format,
with ``story.json`` saying what happened before each: requests served and shed, the gauges, a
restart, a missing family. What each report must carry is computed here from the story and
from the text parsed on its own, not through the relay's code.
"""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapter.catalog import Signal
from adapter.client import reading
from adapter.client.buckets import UNITS_PER_REQUEST
from adapter.prometheus.histogram import bucket_quantile
from adapter.prometheus.presets import PRESETS
from adapter.prometheus.sources import Histogram
from adapter.sketch import RELATIVE_ACCURACY
from tests.fixtures.servers import SERVERS, Scrape, load

COUNTS_FAILURES = {"tgi", "triton", "torchserve", "tfserving"}
"""Servers whose request counter counts failed and refused requests too (or arrivals)."""
FIRST_USE = {"sglang", "tgi", "torchserve", "tfserving"}
"""Servers that write a counter only once it has counted something."""


def readings(server: str) -> list[tuple[Scrape, reading.Reading]]:
    reader = reading.Reader(PRESETS[server])
    return [(scrape, reader.read(reading.parse(scrape.text))) for scrape in load(server)]


def bucket_totals(scrape: Scrape, name: str) -> dict[float, float]:
    """A histogram's cumulative counts by bound, all its series summed."""
    totals: dict[float, float] = {}
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                le = float(sample.labels["le"])
                totals[le] = totals.get(le, 0.0) + sample.value
    return totals


@pytest.mark.parametrize("server", SERVERS)
def test_requests_gauges_and_restarts_are_what_the_story_says(server: str) -> None:
    preset = PRESETS[server]
    for scrape, read in readings(server):
        story, contents = scrape.story, read.contents
        assert contents.source is not None and contents.source.preset == server
        assert read.restarted == story.restarted, story
        if story.index == 1 and server in FIRST_USE:
            assert contents.requests is None
            assert "not in the server's metrics" in contents.source.missing["requests"]
        else:
            served = story.served if story.index > 1 else 0
            expected = served + (story.shed if server in COUNTS_FAILURES else 0)
            assert contents.requests == expected, story
        if Signal.QUEUE_DEPTH in preset.inputs and (story.index > 1 or server == "vllm"):
            assert contents.gauges[Signal.QUEUE_DEPTH.value] == story.waiting
        if Signal.CONCURRENCY in preset.inputs and (story.index > 1 or server == "vllm"):
            assert contents.gauges[Signal.CONCURRENCY.value] == story.waiting + story.running
        if Signal.KV_CACHE_UTILIZATION in preset.inputs and story.index > 1:
            assert 0 < contents.gauges[Signal.KV_CACHE_UTILIZATION.value] < 1
        for signal, reason in preset.lacks.items():
            assert contents.source.missing[signal.value] == reason


@pytest.mark.parametrize("server", SERVERS)
def test_histograms_become_sketches_that_answer_histogram_quantile(server: str) -> None:
    preset = PRESETS[server]
    histograms = {s: h for s, h in preset.inputs.items() if isinstance(h, Histogram)}
    previous: dict[Signal, dict[float, float]] = {}
    for scrape, read in readings(server):
        story, contents = scrape.story, read.contents
        for signal, histogram in histograms.items():
            now = bucket_totals(scrape, histogram.name)
            if not now:  # the family missing from this scrape, or not written yet
                assert signal.value not in contents.sketches
                assert histogram.name in contents.source.missing[signal.value]
                continue
            before = {} if story.restarted else previous.get(signal, {})
            new = {le: count - before.get(le, 0.0) for le, count in now.items()}
            previous[signal] = now
            if story.index == 1:
                new = dict.fromkeys(now, 0.0)
            latencies = contents.sketches[signal.value]
            assert latencies.count == new[math.inf] * UNITS_PER_REQUEST
            assert contents.source.buckets[signal.value] == tuple(
                sorted(le * histogram.unit_seconds for le in now if math.isfinite(le))
            )
            if new[math.inf]:
                for q in (0.5, 0.99):
                    exact = bucket_quantile(q, new) * histogram.unit_seconds
                    assert latencies.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY)


@pytest.mark.parametrize("server", SERVERS)
def test_the_mean_latency_covers_the_requests_it_divides_by(server: str) -> None:
    for scrape, read in readings(server):
        story, mean = scrape.story, read.contents.latency_mean
        missing = read.contents.source.missing if read.contents.source else {}
        if mean is None:
            assert "latency_mean" in missing
            assert story.missing or (story.index == 1 and server in FIRST_USE)
            continue
        total, count = mean
        if story.index == 1:
            assert (total, count) == (0.0, 0)
        elif server == "torchserve":  # its counter counts arrivals
            assert count == story.served + story.shed
        else:
            assert count == story.served
        assert total >= 0 and (total > 0) == (count > 0 and story.served > 0)


def test_a_family_missing_from_one_scrape_is_not_counted_twice_when_it_returns() -> None:
    """Scrape 3 of vLLM, then the same text without the latency histogram, then the whole text
    again: the family missing once is left out, and coming back it counts nothing twice."""
    scrapes = load("vllm")
    reader = reading.Reader(PRESETS["vllm"])
    for scrape in scrapes[:3]:
        reader.read(reading.parse(scrape.text))
    family = "vllm:e2e_request_latency_seconds"
    partial = "".join(
        line for line in scrapes[2].text.splitlines(keepends=True) if family not in line
    )
    lacking = reader.read(reading.parse(partial)).contents
    assert "latency" not in lacking.sketches and lacking.latency_mean is None
    assert lacking.source is not None and family in lacking.source.missing["latency"]
    assert lacking.requests == 0
    back = reader.read(reading.parse(scrapes[2].text))
    assert not back.restarted
    assert back.contents.latency.count == 0 and back.contents.latency_mean == (0.0, 0)
    assert back.contents.requests == 0


@pytest.mark.parametrize("server", SERVERS)
def test_parsing_only_the_families_a_preset_reads_reads_the_same(server: str) -> None:
    """The relay parses only the lines of the families its preset reads (a third of vLLM's
    time): the readings are those of the whole text."""
    whole, only = reading.Reader(PRESETS[server]), reading.Reader(PRESETS[server])
    for scrape in load(server):
        partial = reading._only(scrape.text, only.families)
        assert len(partial) < len(scrape.text)
        assert only.read(reading.parse(scrape.text, only.families)) == whole.read(
            reading.parse(scrape.text)
        )


def test_text_that_is_not_exposition_is_refused() -> None:
    for families in (None, reading.Reader(PRESETS["vllm"]).families):
        with pytest.raises(reading.ExpositionError, match="not Prometheus exposition"):
            reading.parse("<html>502 Bad Gateway</html>\n", families)


def test_a_fraction_outside_0_to_1_is_left_out_and_said_why() -> None:
    text = (
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{engine="0"} 0.5\n'
        'vllm:kv_cache_usage_perc{engine="1"} 1.7\n'
    )
    contents = reading.Reader(PRESETS["vllm"]).read(reading.parse(text)).contents
    assert Signal.KV_CACHE_UTILIZATION.value not in contents.gauges
    assert contents.source is not None
    assert contents.source.missing["inference_kv_cache_utilization"] == (
        "its value 1.1 is not a fraction from 0 to 1"
    )
    fine = text.replace(" 1.7", " 0.7")
    contents = reading.Reader(PRESETS["vllm"]).read(reading.parse(fine)).contents
    assert contents.gauges[Signal.KV_CACHE_UTILIZATION.value] == pytest.approx(0.6)


def _with_value(text: str, name: str, value: str) -> str:
    """``text`` with every sample of ``name`` set to ``value``."""
    lines = [
        f"{line.rsplit(' ', 1)[0]} {value}"
        if not line.startswith("#") and reading.family_of(line.split("{")[0].split()[0]) == name
        else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-1", "1e300"])
@pytest.mark.parametrize(
    ("family", "signal"),
    [
        ("vllm:request_success", Signal.REQUESTS),
        ("vllm:e2e_request_latency_seconds", Signal.LATENCY),
        ("vllm:time_to_first_token_seconds", Signal.TIME_TO_FIRST_TOKEN),
    ],
)
def test_a_strange_counter_or_bucket_value_is_missing_for_that_scrape(family, signal, value):
    # NaN or +Inf ended the relay's pushing for good (round() raised out of the push loop); a
    # negative or huge count made a report the adapter refuses whole, gauges and all
    reader = reading.Reader(PRESETS["vllm"])
    first, second, third = load("vllm")[:3]
    reader.read(reading.parse(first.text))
    strange = reader.read(reading.parse(_with_value(second.text, family, value))).contents
    assert strange.source is not None and signal.value in strange.source.missing
    assert "inference_queue_depth" in strange.gauges  # the rest of the report stands
    if signal is Signal.REQUESTS:
        assert strange.requests is None
    else:
        assert signal.value not in strange.sketches
    # the next scrape counts from the last one read
    later = reader.read(reading.parse(third.text)).contents
    assert later.source is not None and signal.value not in later.source.missing
    expected = reading.Reader(PRESETS["vllm"])
    expected.read(reading.parse(first.text))
    both = expected.read(reading.parse(third.text)).contents
    if value != "1e300":  # no count, not remembered: the next delta spans both scrapes
        if signal is Signal.REQUESTS:
            assert later.requests == both.requests
        else:
            assert later.sketches[signal.value] == both.sketches[signal.value]


@pytest.mark.parametrize("le", ["abc", "", "NaN"])
def test_a_bucket_bound_that_is_not_a_number_is_missing_for_that_scrape(le):
    # float(le) raised out of Reader.read: the relay's push loop ended for good
    reader = reading.Reader(PRESETS["vllm"])
    first, second = load("vllm")[:2]
    reader.read(reading.parse(first.text))
    name = "vllm:e2e_request_latency_seconds_bucket"
    text = second.text.replace(f"{name}{{", f'{name}{{x="1",le="{le}"}} 5\n{name}{{', 1)
    contents = reader.read(reading.parse(text)).contents
    assert contents.source is not None and "not a number" in contents.source.missing["latency"]
    assert Signal.TIME_TO_FIRST_TOKEN.value in contents.sketches
