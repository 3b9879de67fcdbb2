"""The adapter's PromQL string literals and regexes mean, to a real Prometheus, exactly the text
they were made from: whatever a name or a label value holds, it cannot end the literal, the
matcher or the query (no PromQL injection), nor make the query unparsable."""

from __future__ import annotations

import pytest

from adapter.prometheus import promql
from tests.prometheus.conftest import Fleet

pytestmark = pytest.mark.integration

TEXTS = [
    "model",
    'say "hi"',
    "back\\slash",
    "two\nlines",
    "carriage\rreturn\ttab",
    "nul\x00del\x7f",
    '"} or vector(1) or {x="',
    '\\"',
    "é ü",
    "\ufffd",  # Prometheus' lexer reads a raw U+FFFD as invalid UTF-8
    "\u2028",
    "\U0001f600",
    "a.b|c*(d)[e]{2}^$+?",
]


def label_of(fleet: Fleet, literal: str) -> str:
    """The value a literal gives a label, as Prometheus parses it."""
    (sample,) = fleet.prometheus.query(f'label_replace(vector(1), "x", {literal}, "", "")')
    return str(sample["metric"]["x"])


@pytest.mark.parametrize("text", TEXTS)
def test_a_literal_is_its_text(fleet: Fleet, text: str) -> None:
    assert label_of(fleet, promql.quote(text)) == text


def test_a_regex_of_names_matches_those_names_only(fleet: Fleet) -> None:
    matcher = promql.one_of("x", TEXTS[1:])
    for candidate in [*TEXTS, "a", "sayXhi", "a.b|c", "two"]:
        query = (
            f"label_replace(label_replace(vector(1), 'x', {promql.quote(candidate)}, '', ''),"
            f" 'hit', 'yes', 'x', {promql.quote(matcher.value)})"
        )
        (sample,) = fleet.prometheus.query(query)
        assert ("hit" in sample["metric"]) == (candidate in TEXTS[1:]), candidate
