"""The server fixtures: parseable, headed by their source, and telling the story they claim.

What each scrape must show is computed from ``story.json`` (requests per interval, restarts,
gauges), not read back through the code that wrote it; the files themselves are pinned to what
``generate.py`` writes, so a format change is a reviewed regeneration.
"""

from __future__ import annotations

import json

import pytest

from model_server.mimic import surface
from tests.fixtures.servers import HERE, SERVERS, Scrape, generate, load

REQUEST_COUNTERS = {
    # server: (family as the parser names it, required labels, counts arrivals too)
    "vllm": ("vllm:request_success", {}, False),
    "sglang": ("sglang:num_requests", {}, False),
    "tgi": ("tgi_request_count", {}, True),
    "triton": ("nv_inference_request_success", {}, False),
    "torchserve": ("ts_inference_requests", {}, True),
    "tfserving": (":tensorflow:serving:request_count", {"status": "OK"}, False),
}
QUEUE_GAUGES = {
    "vllm": "vllm:num_requests_waiting",
    "sglang": "sglang:num_queue_reqs",
    "tgi": "tgi_queue_size",
    "triton": "nv_inference_pending_request_count",
}


def counter_value(scrape: Scrape, name: str, labels: dict[str, str]) -> float | None:
    family = scrape.families().get(name)
    if family is None:
        return None
    samples = [
        s for s in family.samples
        if not s.name.endswith("_created") and labels.items() <= s.labels.items()
    ]  # fmt: skip
    return sum(s.value for s in samples) if samples else None


@pytest.mark.parametrize("server", SERVERS)
def test_the_files_are_what_the_generator_writes(server: str) -> None:
    texts, stories = generate.story(server)
    assert [s.text for s in load(server)] == texts
    assert [s.story for s in load(server)] == stories
    document = json.loads((HERE / server / "story.json").read_text())
    assert document["scrapes"] == [vars(s) for s in stories]


@pytest.mark.parametrize("server", SERVERS)
def test_each_scrape_is_headed_by_its_source_and_parses(server: str) -> None:
    first_source = surface(server).sources[0]
    for scrape in load(server):
        assert scrape.text.startswith("# Fixture: ")
        assert f"# Source: {first_source.repo} {first_source.path} @ {first_source.version}\n" in (
            scrape.text
        )
        families = scrape.families()  # a fresh SGLang writes nothing: an empty scrape
        assert families or (server, scrape.story.index) == ("sglang", 1), (
            f"{server} {scrape.story.index}"
        )


@pytest.mark.parametrize("server", SERVERS)
def test_counters_rise_then_start_over_at_the_restart(server: str) -> None:
    name, labels, arrivals = REQUEST_COUNTERS[server]
    expected = 0
    seen = []
    for scrape in load(server):
        if scrape.story.restarted:
            expected = 0
        expected += scrape.story.served + (scrape.story.shed if arrivals else 0)
        value = counter_value(scrape, name, labels)
        seen.append(value)
        if expected:
            assert value == expected, f"{server} scrape {scrape.story.index}"
    restart = next(s.story.index for s in load(server) if s.story.restarted)
    assert seen[restart - 1] < seen[restart - 2]  # the reset is visible


@pytest.mark.parametrize("server", SERVERS)
def test_the_missing_family_is_missing_only_where_the_story_says(server: str) -> None:
    scrapes = load(server)
    (gap,) = [s for s in scrapes if s.story.missing]
    parsed = gap.story.missing.replace("/", ":").removesuffix("_total")
    assert parsed not in gap.families()
    for scrape in scrapes:
        if scrape.story.served and scrape is not gap:
            assert parsed in scrape.families(), f"{server} scrape {scrape.story.index}"


@pytest.mark.parametrize("server", sorted(QUEUE_GAUGES))
def test_the_queue_gauge_shows_the_story(server: str) -> None:
    for scrape in load(server):
        family = scrape.families().get(QUEUE_GAUGES[server])
        if family is None:
            assert scrape.story.index == 1  # a fresh SGLang or TGI has not set it yet
            continue
        assert [s.value for s in family.samples] == [scrape.story.waiting]
