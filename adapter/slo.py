"""The latency SLO a query for ``inference_required_replicas`` asks for, from its metric
label selector.

An HPA names the SLO where it names a metric's labels: ``metric.selector.matchLabels`` of an
Object or External metric becomes the ``metricLabelSelector`` (or the external
``labelSelector``) of the query, e.g. ``slo=500ms`` or ``slo=500ms,quantile=0.95``. ``slo`` is a
duration in the notation of Kubernetes flags (``adapter.durations``: ``250ms``, ``1.5s``), and
``quantile`` a decimal in (0, 1), 0.99 unless given. ``lead`` (a duration up to
``MAX_LEAD_SECONDS``, 0 unless given) asks for the count that meets the SLO that far ahead when
the rate is rising: how long a new pod takes from the HPA's decision to serving
(``adapter.required_replicas``). Any other requirement of the selector still picks series
(``deployment=model`` for an external metric).

Pure: a selector in, an ``Slo`` and the rest of the selector out; every problem is a 400
``ApiError`` that names the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapter import durations, errors, selectors

SLO_LABEL = "slo"
QUANTILE_LABEL = "quantile"
LEAD_LABEL = "lead"
DEFAULT_QUANTILE = 0.99
MAX_LEAD_SECONDS = 300.0
"""The longest ``lead``: a rising rate's trend carried further is a guess, not a measurement."""
EXAMPLE = "metricLabelSelector=slo%3D500ms"
_LABELS = (SLO_LABEL, QUANTILE_LABEL, LEAD_LABEL)


@dataclass(frozen=True)
class Slo:
    """Answer within ``seconds`` for a share ``quantile`` of the requests."""

    seconds: float
    quantile: float = DEFAULT_QUANTILE
    lead_seconds: float = 0.0
    """Size for the load this far ahead (a rising rate's trend carried on): how long a new
    pod takes to serve, from the HPA's decision."""

    def __str__(self) -> str:
        """``p99 <= 500ms``."""
        return f"p{self.quantile * 100:g} <= {durations.format_duration(self.seconds)}"


def split(selector: selectors.Selector, metric: str) -> tuple[Slo, selectors.Selector]:
    """The SLO that ``selector`` asks ``metric`` for, and the selector without it.

    >>> slo, rest = split(selectors.parse("deployment=model,slo=500ms"), "m")
    >>> slo, str(rest)
    (Slo(seconds=0.5, quantile=0.99, lead_seconds=0.0), 'deployment=model')

    Raises a 400 ``ApiError`` naming the label for a missing ``slo``, a label given twice or
    with another operator than ``=``, a duration that does not parse or is 0, a quantile
    that is not a number in (0, 1), and a lead that does not parse or is above 5m.
    """
    values: dict[str, str] = {}
    for requirement in selector.requirements:
        key = requirement.key
        if key not in _LABELS:
            continue
        if key in values:
            raise _invalid(key, f"{key} is given twice in the metric label selector")
        if requirement.operator not in ("=", "==", "in") or len(requirement.values) != 1:
            raise _invalid(key, f"{key} must be given with = and one value, not {requirement}")
        values[key] = requirement.values[0]
    if SLO_LABEL not in values:
        raise _invalid(
            SLO_LABEL,
            f"{metric} needs the latency SLO in the metric label selector: slo=<duration>"
            f" and optionally quantile=<0..1> (default {DEFAULT_QUANTILE:g}), e.g. {EXAMPLE}",
        )
    slo = Slo(
        _seconds(values[SLO_LABEL]),
        _quantile(values.get(QUANTILE_LABEL)),
        _lead(values.get(LEAD_LABEL)),
    )
    return slo, series_selector(selector)


def series_selector(selector: selectors.Selector) -> selectors.Selector:
    """``selector`` without its SLO labels: what picks series."""
    rest = tuple(r for r in selector.requirements if r.key not in _LABELS)
    if len(rest) == len(selector.requirements):
        return selector
    return selectors.Selector(rest) if rest else selectors.EVERYTHING


def _seconds(text: str) -> float:
    try:
        seconds = durations.parse_duration(text)
    except durations.InvalidDuration as error:
        raise _invalid(SLO_LABEL, f"slo={text}: {error}") from error
    if seconds <= 0:
        raise _invalid(SLO_LABEL, f"slo={text}: the SLO must be longer than 0s")
    return seconds


def _lead(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        seconds = durations.parse_duration(text)
    except durations.InvalidDuration as error:
        raise _invalid(LEAD_LABEL, f"lead={text}: {error}") from error
    if seconds > MAX_LEAD_SECONDS:
        limit = durations.format_duration(MAX_LEAD_SECONDS)
        raise _invalid(LEAD_LABEL, f"lead={text}: the lead must be at most {limit}")
    return seconds


def _quantile(text: str | None) -> float:
    if text is None:
        return DEFAULT_QUANTILE
    try:
        quantile = float(text)
    except ValueError:
        quantile = math.nan
    if not 0.0 < quantile < 1.0:
        raise _invalid(
            QUANTILE_LABEL, f"quantile={text}: the quantile must be a number in (0, 1), e.g. 0.99"
        )
    return quantile


def _invalid(label: str, message: str) -> errors.ApiError:
    return errors.bad_request(message, field_path=f"metricLabelSelector.{label}")
