"""``adapter.slo``: the SLO of an ``inference_required_replicas`` query, from its metric label
selector; every problem a 400 that names the label."""

from __future__ import annotations

import pytest

from adapter import selectors, slo
from adapter.errors import ApiError

METRIC = "inference_required_replicas"


@pytest.mark.parametrize(
    ("text", "seconds", "quantile", "rest"),
    [
        ("slo=500ms", 0.5, 0.99, ""),
        ("slo==1.5s,quantile=0.95", 1.5, 0.95, ""),
        ("deployment=model,slo=250ms", 0.25, 0.99, "deployment=model"),
        ("slo in (2s),quantile=0.999,tier!=batch", 2.0, 0.999, "tier!=batch"),
        ("slo=1m", 60.0, 0.99, ""),
    ],
)
def test_the_slo_and_the_selector_that_picks_series(text, seconds, quantile, rest) -> None:
    asked, series = slo.split(selectors.parse(text), METRIC)
    assert asked == slo.Slo(seconds, quantile, lead_seconds=0.0)
    assert str(series) == rest
    assert series == slo.series_selector(selectors.parse(text))


@pytest.mark.parametrize(
    ("text", "label", "says"),
    [
        ("", "slo", "needs the latency SLO in the metric label selector"),
        ("deployment=model", "slo", "e.g. metricLabelSelector=slo%3D500ms"),
        ("slo=500", "slo", "slo=500"),
        ("slo=fast", "slo", "slo=fast"),
        ("slo=0s", "slo", "longer than 0s"),
        ("slo!=500ms", "slo", "must be given with ="),
        ("slo in (1s,2s)", "slo", "one value"),
        ("slo", "slo", "must be given with ="),
        ("slo=1s,slo==2s", "slo", "given twice"),
        ("slo=1s,quantile=1", "quantile", "a number in (0, 1)"),
        ("slo=1s,quantile=0", "quantile", "quantile=0"),
        ("slo=1s,quantile=p99", "quantile", "quantile=p99"),
        ("slo=1s,quantile=nan", "quantile", "quantile=nan"),
        ("slo=1s,!quantile", "quantile", "must be given with ="),
        ("slo=1s,lead=soon", "lead", "lead=soon"),
        ("slo=1s,lead=20", "lead", "lead=20"),
        ("slo=1s,lead=10m", "lead", "at most 5m"),
    ],
)
def test_an_invalid_slo_is_a_400_naming_the_label(text, label, says) -> None:
    with pytest.raises(ApiError) as raised:
        slo.split(selectors.parse(text), METRIC)
    error = raised.value
    assert error.code == 400
    assert says in error.message
    assert error.field_path == f"metricLabelSelector.{label}"
    assert error.message.startswith(label) or METRIC in error.message


def test_a_lead_sizes_for_the_load_ahead() -> None:
    asked, series = slo.split(selectors.parse("lead=20s,slo=500ms,deployment=model"), METRIC)
    assert asked == slo.Slo(0.5, 0.99, lead_seconds=20.0)
    assert str(series) == "deployment=model"


def test_an_slo_reads_as_a_quantile_bound() -> None:
    assert str(slo.Slo(0.5)) == "p99 <= 500ms"
    assert str(slo.Slo(2.0, 0.999)) == "p99.9 <= 2s"
